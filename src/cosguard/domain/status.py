"""Statuses, as enums: what an object's `cosguard-status` tag says, and what one piece of work ended as."""
from __future__ import annotations

from ..infra.config import Action  # the settings' vocabulary (COSGUARD_*_ACTION), named here too
from ..infra.records import StrEnum


class ScanStatus(StrEnum):
    """The value of an object's `cosguard-status` tag (and of its ledger entry)."""

    PENDING = "pending"          # a CI job was submitted; no verdict yet
    CLEAN = "clean"              # CI said normal
    INFECTED = "infected"        # CI said block
    UNSCANNABLE = "unscannable"  # CI cannot scan it (size, storage class, format)
    ERROR = "error"              # submission or job failed; see the reason
    RELEASED = "released"        # put back from quarantine by a human decision


class Outcome(StrEnum):
    """What handling one record, callback or object ended as (log lines and summaries)."""

    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    DUPLICATE = "duplicate"
    UNSCANNABLE = "unscannable"
    ERROR = "error"
    PENDING = "pending"
    CLEAN = "clean"
    PROMOTED = "promoted"
    INFECTED = "infected"
    QUARANTINED = "quarantined"
    DELETED = "deleted"
    STALE = "stale"
    GONE = "gone"
    ALREADY_DONE = "already_done"
    RELEASED = "released"
    RESUBMIT = "resubmit"        # CI no longer knew the job: closed, and the upload submitted again
    RESCANNED = "rescanned"      # a rescan job was submitted for a write with an old clean verdict
    NOT_DUE = "not_due"          # a rescan found no clean verdict older than its cut-off


# A closed job's outcome, as the object's `cosguard-status` tag names it, and what was done with it
# (`cosguard status` reports them): an outcome missing here is its own status, and its own how.
TAG_STATUS_OF = {Outcome.QUARANTINED.value: ScanStatus.INFECTED.value, Outcome.DELETED.value: ScanStatus.INFECTED.value,
                 Outcome.INFECTED.value: ScanStatus.INFECTED.value, Outcome.PROMOTED.value: ScanStatus.CLEAN.value}
HANDLED_AS = {Outcome.QUARANTINED.value: "moved to quarantine", Outcome.DELETED.value: "deleted",
              Outcome.INFECTED.value: "tagged in place", Outcome.CLEAN.value: "tagged in place",
              Outcome.PROMOTED.value: "promoted to the clean destination",
              Outcome.RELEASED.value: "restored from quarantine", Outcome.ERROR.value: "tagged in place",
              Outcome.UNSCANNABLE.value: "tagged in place",
              Outcome.STALE.value: "verdict not applied: object changed during the scan",
              Outcome.GONE.value: "object gone before the verdict",
              Outcome.RESUBMIT.value: "CI lost the job: submitted again"}


def tag_status(outcome: str) -> str:
    """The `cosguard-status` a closed job's outcome left on its object."""
    return TAG_STATUS_OF.get(outcome, outcome)


def handled_as(outcome: str) -> str:
    """What was done with an object whose job closed as `outcome`."""
    return HANDLED_AS.get(outcome, outcome)


STATUS_TAG = "cosguard-status"
JOB_TAG = "cosguard-job"
MAX_TAGS = 10

__all__ = ["Action", "HANDLED_AS", "JOB_TAG", "MAX_TAGS", "Outcome", "STATUS_TAG", "ScanStatus", "StrEnum",
           "TAG_STATUS_OF", "handled_as", "tag_status"]
