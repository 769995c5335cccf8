"""domain/setaside.py branch by branch: what each way of setting an unscannable or refused upload
aside answers (outcome, detail, the ledger's manifest, whether to retry), with the quarantine's
outcome forced. Over HTTP the same paths end as tested in tests/integration (unscannable objects)
and tests/adversarial (refused copies, archived storage classes); these pin the answers the
callers act on (survivors of mutation testing, docs/mutation-testing.md)."""
from __future__ import annotations

from typing import Any, Optional

import pytest

from cosguard.domain.setaside import SetAside, set_aside
from cosguard.domain.status import Action, Outcome, ScanStatus
from cosguard.errors import CloudError, CopyRefused, QuarantineError, StaleObjectError
from cosguard.infra.cloud import ObjectInfo

REASON = "larger than CI scans"


def _info(storage_class: str = "STANDARD") -> ObjectInfo:
    return ObjectInfo("intake-1250000000", "big.iso", 10, '"abc"', storage_class, None, 0, {},
                      last_modified=1000)


class Actions:
    """What set_aside asks of Actions: a quarantine that ends as told, and tags recorded."""

    def __init__(self, raises: Optional[Exception] = None):
        self.raises, self.tagged, self.quarantined = raises, [], []

    def quarantine(self, info: ObjectInfo, manifest: Any, status: ScanStatus) -> ObjectInfo:
        if self.raises is not None:
            raise self.raises
        self.quarantined.append((info.key, status, manifest["reason"]))
        return ObjectInfo("jail-1250000000", f"quarantine/{info.key}", info.size, info.etag, "STANDARD", None, 0, {})

    def tag(self, info: ObjectInfo, status: ScanStatus, job_id: Any = None, existing: Any = None) -> None:
        self.tagged.append((info.key, status))

    def delete(self, info: ObjectInfo) -> None:   # only infected objects are deleted on a refusal
        raise AssertionError("an object set aside without a verdict is never deleted")


@pytest.mark.parametrize("status, outcome", [(ScanStatus.UNSCANNABLE, Outcome.UNSCANNABLE),
                                             (ScanStatus.ERROR, Outcome.ERROR)])
def test_tagged_in_place_the_manifest_carries_the_reason(status, outcome):
    actions = Actions()
    answer = set_aside(actions, _info(), REASON, Action.TAG, status) 
    assert (answer.outcome, answer.detail, answer.retryable, answer.moved) == (outcome, REASON, False, False)
    assert (answer.manifest["key"], answer.manifest["reason"]) == ("big.iso", REASON)
    assert actions.tagged == [("big.iso", status)] and actions.quarantined == []


@pytest.mark.parametrize("storage_class", ["ARCHIVE", "DEEP_ARCHIVE"])
def test_an_archived_object_to_quarantine_is_tagged_in_place_and_says_why(storage_class):
    actions = Actions()
    answer = set_aside(actions, _info(storage_class), REASON, Action.QUARANTINE, ScanStatus.UNSCANNABLE)
    assert answer.detail == f"{REASON}; archived objects cannot be copied until restored, so it is tagged in place"
    assert answer.outcome is Outcome.UNSCANNABLE and answer.manifest["reason"] == REASON
    assert actions.tagged == [("big.iso", ScanStatus.UNSCANNABLE)] and actions.quarantined == []


def test_an_archived_object_to_tag_is_tagged_without_the_archive_note():
    actions = Actions()
    answer = set_aside(actions, _info("ARCHIVE"), REASON, Action.TAG, ScanStatus.UNSCANNABLE)
    assert answer.detail == REASON and actions.tagged == [("big.iso", ScanStatus.UNSCANNABLE)]


def test_a_quarantined_object_is_recorded_where_it_went():
    actions = Actions()
    answer = set_aside(actions, _info(), REASON, Action.QUARANTINE, ScanStatus.ERROR)
    assert (answer.outcome, answer.detail) == (Outcome.ERROR, f"{REASON}; moved to jail-1250000000/quarantine/big.iso")
    assert answer.moved and answer.manifest["reason"] == REASON and actions.tagged == []
    assert actions.quarantined == [("big.iso", ScanStatus.ERROR, REASON)]


def test_an_object_that_changed_before_the_copy_is_left_to_its_own_job():
    answer = set_aside(Actions(StaleObjectError("overwritten")), _info(), REASON, Action.QUARANTINE,
                       ScanStatus.UNSCANNABLE)
    assert answer == SetAside(Outcome.STALE, "overwritten")


def test_a_quarantine_that_may_heal_is_retried_and_touches_nothing():
    actions = Actions(QuarantineError("COS answered 503"))
    answer = set_aside(actions, _info(), REASON, Action.QUARANTINE, ScanStatus.UNSCANNABLE)
    assert answer == SetAside(Outcome.ERROR, "COS answered 503", retryable=True)
    assert actions.tagged == []


def test_a_copy_refused_for_good_falls_back_to_the_tag_and_records_it():
    cause = CloudError("no access to the quarantine bucket", code="AccessDenied", status=403)
    actions = Actions(CopyRefused("refused", cause))
    answer = set_aside(actions, _info(), REASON, Action.QUARANTINE, ScanStatus.UNSCANNABLE)
    fallback = {"action": "tagged unscannable", "reason": "403 AccessDenied: no access to the quarantine bucket"}
    assert answer.outcome is Outcome.UNSCANNABLE and not answer.retryable and not answer.moved
    assert answer.detail == (f"{REASON}; tagged unscannable: the quarantine copy was refused "
                             "(403 AccessDenied: no access to the quarantine bucket)")
    assert answer.manifest["fallback"] == fallback and answer.manifest["reason"] == REASON
    assert actions.tagged == [("big.iso", ScanStatus.UNSCANNABLE)]

