"""CI answering outside its documented vocabulary (doc 460/63965: State Submitted/Auditing/Success/
Failed, Suggestion normal/block), forced with the local CI's `Faults.answer_overrides`.

Whatever CI answers, only `normal` (any case) on a `Success` job is clean: anything else on a
finished job is a failed scan (tagged `error`, or COSGUARD_FAILED_ACTION), never promoted; a job
naming another Object is not acted on; a job without a State is still pending.
"""
from __future__ import annotations

import pytest

from cosguard.local.samples import clean_text, eicar

RELEASED = "/released/"


def _scanned(stack, key: str, body: bytes, **answer) -> dict:
    stack.cloud.ci.faults.answer_overrides[key] = answer
    stack.put(key, body)
    stack.scan()
    stack.settle()
    return stack.sweep()


def _released(stack, key: str) -> bool:
    return stack.cos.object_exists(Bucket=stack.intake, Key="released/" + key)


def _notified(stack, key: str, word: str) -> list:
    return [n for n in stack.sink.received if word in str(n) and key in str(n)]


@pytest.mark.parametrize("suggestion", ["review", "", "suspicious", "BLOCKED", "normal "])
@pytest.mark.parametrize("body", [clean_text(), eicar()], ids=["clean", "eicar"])
def test_an_unknown_suggestion_is_never_clean_nor_promoted(deploy, suggestion, body):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    _scanned(stack, "in/unknown.exe", body, Suggestion=suggestion)
    assert stack.tags("in/unknown.exe")["cosguard-status"] == "error"
    assert stack.body("in/unknown.exe") == body
    assert not _released(stack, "in/unknown.exe")
    assert _notified(stack, "in/unknown.exe", "error"), stack.sink.received


def test_a_missing_suggestion_on_success_is_a_failed_scan(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    _scanned(stack, "in/none.exe", clean_text(), Suggestion=None)
    assert stack.tags("in/none.exe")["cosguard-status"] == "error"
    assert not _released(stack, "in/none.exe")


def test_an_unknown_suggestion_is_quarantined_when_failed_scans_are(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED, COSGUARD_FAILED_ACTION="quarantine")
    _scanned(stack, "in/review.exe", eicar(), Suggestion="review")
    assert stack.body("in/review.exe") is None
    assert any(k.endswith("in/review.exe") for k in stack.quarantined())
    assert not _released(stack, "in/review.exe")


@pytest.mark.parametrize("state", ["Weird", "success", "Failed"])
def test_a_finished_looking_job_in_an_unknown_state_is_never_clean(deploy, state):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    _scanned(stack, "in/state.exe", clean_text(), State=state)
    assert stack.tags("in/state.exe").get("cosguard-status") != "clean"
    assert not _released(stack, "in/state.exe")
    assert stack.body("in/state.exe") == clean_text()


def test_block_in_capitals_counts_as_infected(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    _scanned(stack, "in/caps.exe", clean_text(), Suggestion="BLOCK")
    assert stack.body("in/caps.exe") is None   # CI's word is what is acted on
    assert not _released(stack, "in/caps.exe")


def test_normal_in_any_case_counts_as_clean(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    _scanned(stack, "in/case.txt", clean_text(), Suggestion="Normal")
    assert _released(stack, "in/case.txt")


def test_a_job_without_a_state_stays_pending_and_nothing_crashes(deploy):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED)
    report = _scanned(stack, "in/stateless.exe", eicar(), State=None)
    assert stack.tags("in/stateless.exe")["cosguard-status"] == "pending"
    assert stack.body("in/stateless.exe") == eicar() and not _released(stack, "in/stateless.exe")
    assert report["applied"] == {}
    stack.cloud.ci.faults.answer_overrides.clear()   # CI answers properly again: the sweep acts
    assert stack.sweep()["applied"] != {}
    assert stack.body("in/stateless.exe") is None


@pytest.mark.parametrize("action, expect", [("tag", "error"), ("quarantine", "quarantined")])
def test_a_clean_answer_about_another_object_is_not_acted_on(deploy, action, expect):
    stack = deploy(COSGUARD_CLEAN_DESTINATION=RELEASED, COSGUARD_SUBMIT_FAILED_ACTION=action)
    _scanned(stack, "in/target.exe", eicar(), Object="in/decoy.txt", Suggestion="normal")
    assert not _released(stack, "in/target.exe")
    assert _notified(stack, "in/target.exe", "differs"), stack.sink.received
    if expect == "quarantined":
        assert stack.body("in/target.exe") is None
        assert any(k.endswith("in/target.exe") for k in stack.quarantined())
    else:
        assert stack.tags("in/target.exe")["cosguard-status"] == "error"
        assert stack.body("in/target.exe") == eicar()
