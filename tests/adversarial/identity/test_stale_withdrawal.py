"""What a verdict that turns stale takes back: only a promoted copy, never anything else, and a stale
verdict without a copy is reported as stale, not as a failure. (Survivors of mutation testing in
domain/stale_promotion.py, docs/mutation-testing.md.)"""
from __future__ import annotations

import json

from cosguard.local.loader import load_handler
from cosguard.local.samples import clean_text
from helpers import write_around
from test_overwrite_race import _alerts, _infected_job_with_lost_callback, _overwrite_at_recheck


def test_a_stale_quarantine_is_not_taken_for_a_promotion(stack):
    """The quarantine copy was made, then the upload was overwritten: the verdict is stale, and what
    it reports names no promoted copy (there is none to check or withdraw)."""
    _infected_job_with_lost_callback(stack, "race.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    write_around(gateway, "copy", lambda: stack.put("race.exe", clean_text()), after=True)
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



def test_the_withdrawal_deletes_only_the_bytes_it_checked_and_says_so(deploy, capsys):
    """The withdrawal's DELETE carries the copy's ETag as If-Match: a write landing at the destination
    between its check and its DELETE is kept where COS honours If-Match (the emulator's switch); a
    withdrawal that happens is logged as a WARNING naming the copy."""
    for honoured in (True, False):
        stack = deploy(COSGUARD_CLEAN_DESTINATION="/released/")
        stack.cloud.cos.delete_honours_if_match = honoured
        stack.cloud.ci.faults.drop_callback_rate = 1.0
        stack.put("doc.txt", clean_text())
        stack.scan()
        stack.settle()
        gateway = stack.runtime(stack.sweep_handler).gateway
        head = gateway.head
        write_around(gateway, "copy", lambda: stack.put("doc.txt", b"the uploader's newer file"), after=True)

        def head_then_write_destination(bucket, key, version_id=None):
            found = head(bucket, key, version_id)
            if key == "released/doc.txt" and not honoured:
                return found
            if key == "released/doc.txt":
                stack.put("released/doc.txt", b"written after the check")
            return found
        gateway.head = head_then_write_destination
        capsys.readouterr()
        assert stack.sweep()["applied"] == {"stale": 1}
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        withdrawn = [r for r in logged if r["logger"] == "cosguard.domain.stale_promotion"]
        if honoured:
            assert stack.body("released/doc.txt") == b"written after the check" and withdrawn == []
            continue
        assert stack.body("released/doc.txt") is None
        assert [(r["level"], r["message"], r["bucket"], r["key"], r["reason"]) for r in withdrawn] == [
            ("WARNING", "stale promotion withdrawn", stack.intake, "released/doc.txt",
             "the intake object changed before its original was removed")]


def test_on_a_versioned_destination_bucket_exactly_the_copys_version_is_withdrawn(deploy):
    """Unversioned intake, clean destination in another bucket that keeps versions; something newer
    lands at the destination key after the copy. The copy's own version is found and deleted by its
    version id (where COS honours If-Match too); the newer object stays current, no delete marker."""
    stack = deploy()
    stack.env["COSGUARD_CLEAN_DESTINATION"] = f"{stack.jail}/released/"   # the jail, named once made
    stack.sweep_handler = load_handler("reconcile_pending", stack.env)
    stack.cos.put_bucket_versioning(Bucket=stack.jail, Status="Enabled")
    stack.cloud.cos.delete_honours_if_match = True
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put("doc.txt", clean_text())
    stack.scan()
    stack.settle()
    gateway = stack.runtime(stack.sweep_handler).gateway
    copy = gateway.copy
    made = []

    def copy_then_overwrite_both(*args, **kwargs):
        copied = copy(*args, **kwargs)
        gateway.copy = copy
        made.append(copied.version_id)
        stack.put("doc.txt", b"the uploader's newer file")
        stack.put("released/doc.txt", b"newer at the destination", bucket=stack.jail)
        return copied
    gateway.copy = copy_then_overwrite_both
    assert stack.sweep()["applied"] == {"stale": 1}
    listed = stack.cos.list_objects_versions(Bucket=stack.jail, Prefix="released/doc.txt")
    assert made[0] and made[0] not in [v["VersionId"] for v in listed.get("Version", [])]
    assert not listed.get("DeleteMarker")
    assert stack.body("released/doc.txt", bucket=stack.jail) == b"newer at the destination"
    assert any("was removed" in str(n) for n in stack.sink.received), stack.sink.received
