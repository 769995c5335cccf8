"""Issue 9, attack 9: a clean upload landing while an infected verdict is applied (unversioned
bucket) is never deleted silently: the window is re-checked and conditional, and a hit is reported."""
from __future__ import annotations

from cosguard.local.samples import clean_text, eicar


def _infected_job_with_lost_callback(stack, key):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put(key, eicar())
    stack.scan()
    stack.settle()


def _alerts(stack, key):
    return [n for n in stack.sink.received if key in str(n)]


def test_an_overwrite_after_the_copy_keeps_the_clean_upload_and_warns(stack):
    _infected_job_with_lost_callback(stack, "race.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    copy = gateway.copy

    def copy_then_overwrite(*args, **kwargs):
        copied = copy(*args, **kwargs)
        stack.put("race.exe", clean_text())  # the uploader's clean file lands mid-verdict
        return copied
    gateway.copy = copy_then_overwrite
    report = stack.sweep()
    assert report["applied"] == {"stale": 1}
    assert stack.body("race.exe") == clean_text()  # the clean upload is never deleted
    assert any("overwritten" in str(n) for n in _alerts(stack, "race.exe"))


def test_an_overwrite_between_the_recheck_and_the_delete_is_refused_by_if_match(stack):
    _infected_job_with_lost_callback(stack, "tight.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    head = gateway.head
    calls = []

    def head_then_overwrite(bucket, key, version_id=None):
        info = head(bucket, key, version_id)
        calls.append(key)
        if key == "tight.exe" and len(calls) == 2:  # the re-check just before the DELETE
            stack.put("tight.exe", clean_text())
        return info
    gateway.head = head_then_overwrite
    report = stack.sweep()
    assert report["applied"] == {"stale": 1}
    assert stack.body("tight.exe") == clean_text()
    assert any("If-Match" in str(n) for n in _alerts(stack, "tight.exe"))


def test_without_a_race_the_infected_upload_is_moved(stack):
    _infected_job_with_lost_callback(stack, "plain.exe")
    assert stack.sweep()["applied"] == {"quarantined": 1}
    assert stack.body("plain.exe") is None
