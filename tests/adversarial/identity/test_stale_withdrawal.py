"""What a verdict that turns stale takes back: only a promoted copy, never anything else, and a stale
verdict without a copy is reported as stale, not as a failure. (Survivors of mutation testing in
domain/stale_promotion.py, docs/mutation-testing.md.)"""
from __future__ import annotations

from cosguard.local.samples import clean_text

from test_overwrite_race import _alerts, _infected_job_with_lost_callback, _overwrite_at_recheck


def test_a_stale_quarantine_is_not_taken_for_a_promotion(stack):
    """The quarantine copy was made, then the upload was overwritten: the verdict is stale, and what
    it reports names no promoted copy (there is none to check or withdraw)."""
    _infected_job_with_lost_callback(stack, "race.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    copy = gateway.copy

    def copy_then_overwrite(*args, **kwargs):
        copied = copy(*args, **kwargs)
        stack.put("race.exe", clean_text())
        return copied
    gateway.copy = copy_then_overwrite
    assert stack.sweep()["applied"] == {"stale": 1}
    assert stack.body("race.exe") == clean_text()
    alerts = _alerts(stack, "race.exe")
    assert alerts and not any("promot" in str(n) for n in alerts), alerts


def test_a_delete_that_turns_stale_is_reported_stale_and_keeps_the_new_upload(deploy):
    """COSGUARD_INFECTED_ACTION=delete made no copy: the stale verdict has nothing to withdraw."""
    stack = deploy(COSGUARD_INFECTED_ACTION="delete")
    stack.cloud.cos.delete_honours_if_match = True
    _infected_job_with_lost_callback(stack, "gone.exe")
    _overwrite_at_recheck(stack, "gone.exe")
    assert stack.sweep()["applied"] == {"stale": 1}
    assert stack.body("gone.exe") == clean_text()


def test_a_stale_promotion_never_withdraws_a_newer_promoted_copy(deploy):
    """Between the promotion's copy and its withdrawal, the newer write was promoted to the same
    destination key (sealed for its own bytes): the withdrawal keeps it, as it keeps anything that is
    not exactly its own copy."""
    stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put("doc.txt", clean_text())
    stack.scan()
    stack.settle()
    runtime = stack.runtime(stack.sweep_handler)
    copy = runtime.gateway.copy
    newer = b"the uploader's newer file, promoted by its own verdict"

    def copy_then_newer_promotion(*args, **kwargs):
        copied = copy(*args, **kwargs)
        runtime.gateway.copy = copy
        stack.put("doc.txt", newer)
        stack.put("released/doc.txt", newer)
        found = stack.cos.head_object(Bucket=stack.intake, Key="released/doc.txt")
        marker = runtime.sealer.promotion_marker(stack.intake, "released/doc.txt", found["ETag"],
                                                 found.get("x-cos-hash-crc64ecma", ""))
        stack.put("released/doc.txt", newer, Metadata={"x-cos-meta-cosguard-promoted": marker})
        return copied
    runtime.gateway.copy = copy_then_newer_promotion
    assert stack.sweep()["applied"] == {"stale": 1}
    assert stack.body("released/doc.txt") == newer
    assert any("not this promotion's copy" in str(n) for n in stack.sink.received), stack.sink.received

