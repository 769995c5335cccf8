"""Statuses, as enums: what an object's `cosguard-status` tag says, and what one piece of work ended as."""
from __future__ import annotations

from ..infra.config import Action   # the settings' vocabulary (COSGUARD_*_ACTION), named here too
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


STATUS_TAG = "cosguard-status"
JOB_TAG = "cosguard-job"
MAX_TAGS = 10

__all__ = ["Action", "JOB_TAG", "MAX_TAGS", "Outcome", "STATUS_TAG", "ScanStatus", "StrEnum"]
