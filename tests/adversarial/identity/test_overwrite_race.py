"""Issue 9, attack 9 and issue 17: a clean upload landing while an infected verdict is applied
(unversioned bucket) is never deleted silently. The window is re-checked; what lands after the
re-check is protected by the DELETE's If-Match only where the DELETE honours it, which COS does
not document (doc 436/7743): every test runs under both positions of the local COS's switch, and
under COS's documented semantics the lost write is reported by name."""
from __future__ import annotations

import pytest

from cosguard.local.samples import clean_text, eicar


@pytest.fixture(params=[False, True], ids=["cos-delete-unconditional", "delete-honours-if-match"])
def if_match_honoured(request, stack) -> bool:
    stack.cloud.cos.delete_honours_if_match = request.param
    return request.param


def _infected_job_with_lost_callback(stack, key):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.put(key, eicar())
    stack.scan()
    stack.settle()


def _alerts(stack, key):
    return [n for n in stack.sink.received if key in str(n)]


def _overwrite_at_recheck(stack, key, then=lambda: None):
    """The uploader's clean file lands right after cosguard's re-check HEAD (its second HEAD of
    the key), before its DELETE: the window `_delete_original` cannot close on COS."""
    gateway = stack.runtime(stack.sweep_handler).gateway
    head = gateway.head
    calls = []

    def head_then_overwrite(bucket, key_, version_id=None):
        info = head(bucket, key_, version_id)
        calls.append(key_)
        if key_ == key and len(calls) == 2:
            stack.put(key, clean_text())
            then()
        return info
    gateway.head = head_then_overwrite


def test_an_overwrite_after_the_copy_keeps_the_clean_upload_and_warns(stack, if_match_honoured):
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


@pytest.mark.parametrize("key", ["tight.exe", "tight copy (1).exe"])   # the second is percent-encoded in events
def test_an_overwrite_between_the_recheck_and_the_delete_is_kept_or_reported(stack, if_match_honoured, key):
    _infected_job_with_lost_callback(stack, key)
    stack.take_events()
    _overwrite_at_recheck(stack, key)
    report = stack.sweep()
    if if_match_honoured:
        assert report["applied"] == {"stale": 1}
        assert stack.body(key) == clean_text()
        assert any("If-Match" in str(n) for n in _alerts(stack, key))
        return
    # COS: the DELETE took the clean write too. Its own upload event finds the key gone after
    # cosguard's removal, and says so, naming the key.
    assert report["applied"] == {"quarantined": 1}
    assert stack.body(key) is None
    assert not any(n.get("kind") == "possible_loss" for n in stack.sink.received)
    stack.scan()
    lost = [n for n in stack.sink.received if n.get("kind") == "possible_loss"]
    assert len(lost) == 1 and lost[0]["key"] == key and "re-upload" in lost[0]["detail"]


def test_a_lost_write_already_submitted_is_reported_by_its_verdict(stack, if_match_honoured):
    """The clean write's event is handled inside the window (its job is submitted, the key still
    holds it); the DELETE then takes it, and its own verdict finds it gone."""
    _infected_job_with_lost_callback(stack, "late.exe")
    stack.take_events()
    _overwrite_at_recheck(stack, "late.exe", then=lambda: stack.scan())
    report = stack.sweep()
    stack.settle()
    if if_match_honoured:
        assert report["applied"] == {"stale": 1}
        stack.sweep()   # the clean write's own job: tagged clean where it is
        assert stack.body("late.exe") == clean_text()
        assert not any(n.get("kind") == "possible_loss" or "may have been removed" in str(n)
                       for n in stack.sink.received)
        return
    assert report["applied"] == {"quarantined": 1}
    applied = stack.sweep()["applied"]
    assert applied == {"gone": 1}
    assert stack.body("late.exe") is None
    assert any("may have been removed by cosguard" in str(n) for n in _alerts(stack, "late.exe"))


def test_without_a_race_the_infected_upload_is_moved_and_nothing_is_reported_lost(stack, if_match_honoured):
    _infected_job_with_lost_callback(stack, "plain.exe")
    assert stack.sweep()["applied"] == {"quarantined": 1}
    assert stack.body("plain.exe") is None
    stack.put("plain.exe", clean_text())   # a later write of the key: it exists, nothing was lost
    stack.scan()
    assert stack.body("plain.exe") == clean_text()
    assert not any(n.get("kind") == "possible_loss" for n in stack.sink.received)


def test_a_gone_write_whose_removals_cannot_be_read_is_reported(stack):
    """The ledger listing fails: cosguard cannot rule out its own DELETE, so it says so."""
    stack.cloud.cos.delete_honours_if_match = False   # COS's documented DELETE
    _infected_job_with_lost_callback(stack, "blind.exe")
    stack.take_events()
    _overwrite_at_recheck(stack, "blind.exe")
    assert stack.sweep()["applied"] == {"quarantined": 1}
    stack.cloud.cos.faults.deny(stack.jail, ["GetBucket"])
    stack.scan()
    lost = [n for n in _alerts(stack, "blind.exe") if n.get("kind") == "possible_loss"]
    assert len(lost) == 1 and "could not read" in lost[0]["detail"]


def test_a_lost_write_replaced_before_its_event_is_handled_is_reported(stack):
    """The lost write's event is handled only after a newer write landed: the key holds that newer
    write, so the event's own write is gone. (Its time is moved back two seconds to stand for a late
    delivery: within COS's one-second resolution the two writes cannot be told apart.)"""
    stack.cloud.cos.delete_honours_if_match = False   # COS's documented DELETE
    _infected_job_with_lost_callback(stack, "later.exe")
    stack.take_events()
    _overwrite_at_recheck(stack, "later.exe")
    assert stack.sweep()["applied"] == {"quarantined": 1}
    late = stack.take_events()
    for record in late["Records"]:
        record["event"]["eventTime"] -= 2
    stack.put("later.exe", b"a newer write")
    stack.scan(late)
    lost = [n for n in _alerts(stack, "later.exe") if n.get("kind") == "possible_loss"]
    assert len(lost) == 1
    assert stack.body("later.exe") == b"a newer write"


def test_a_lost_write_whose_event_comes_before_the_removal_is_closed_is_reported(stack):
    """The lost write's event is handled right after cosguard's DELETE, before the job that removed
    the key is closed in the ledger: the open job stands for the removal under way."""
    stack.cloud.cos.delete_honours_if_match = False   # COS's documented DELETE
    _infected_job_with_lost_callback(stack, "early.exe")
    stack.take_events()
    _overwrite_at_recheck(stack, "early.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    delete = gateway.delete

    def delete_then_handle_the_event(bucket, key, *args, **kwargs):
        delete(bucket, key, *args, **kwargs)
        if key == "early.exe":
            stack.scan()
    gateway.delete = delete_then_handle_the_event
    assert stack.sweep()["applied"] == {"quarantined": 1}
    lost = [n for n in _alerts(stack, "early.exe") if n.get("kind") == "possible_loss"]
    assert len(lost) == 1 and "acting on an earlier upload" in lost[0]["detail"]


def test_each_outcome_is_notified_under_its_own_kind(stack):
    """A verdict not applied because the upload changed is `stale`, never `infected` (issue 19);
    a quarantined infection is `infected`; a clean upload is never notified as one."""
    _infected_job_with_lost_callback(stack, "race.exe")
    gateway = stack.runtime(stack.sweep_handler).gateway
    copy = gateway.copy

    def copy_then_overwrite(*args, **kwargs):
        copied = copy(*args, **kwargs)
        gateway.copy = copy
        stack.put("race.exe", clean_text())  # the uploader's clean file lands mid-verdict
        return copied
    gateway.copy = copy_then_overwrite
    assert stack.sweep()["applied"] == {"stale": 1}
    assert {(n["kind"], n["outcome"]) for n in _alerts(stack, "race.exe")} == {("stale", "stale")}
    stack.cloud.ci.faults.drop_callback_rate = 0.0
    stack.put("plain.exe", eicar())
    stack.put("fine.txt", clean_text())
    stack.scan()
    stack.settle()
    assert {(n["kind"], n["outcome"]) for n in _alerts(stack, "plain.exe")} == {("infected", "quarantined")}
    assert not any(n["kind"] == "infected" for n in _alerts(stack, "fine.txt"))
