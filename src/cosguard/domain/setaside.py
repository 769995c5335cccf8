"""Setting an upload aside without a verdict: tagged in place, or moved to quarantine.

One path for an object CI cannot scan (COSGUARD_UNSCANNABLE_ACTION, status `unscannable`) and for
one CI refused to take for good, or scanned under another name (COSGUARD_SUBMIT_FAILED_ACTION,
status `error`): with `quarantine`, such an object never stays readable at its key.
"""
from __future__ import annotations

from typing import Any, Dict

from ..errors import CopyRefused, QuarantineError, StaleObjectError
from ..infra.cloud import ObjectInfo
from ..infra.records import Factory, Record
from .actions import Actions, build_manifest, quarantine_record
from .fallback import fall_back
from .rules import ARCHIVE_CLASSES
from .status import Action, Outcome, ScanStatus

_OUTCOMES = {ScanStatus.UNSCANNABLE: Outcome.UNSCANNABLE, ScanStatus.ERROR: Outcome.ERROR}


class SetAside(Record):
    """How it ended: `outcome` STALE when the object changed meanwhile; `retryable` when the
    quarantine failed in a way a retry may heal (the object is untouched)."""

    outcome: Outcome
    detail: str
    manifest: Dict[str, Any] = Factory(dict)
    retryable: bool = False

    @property
    def moved(self) -> bool:
        return bool(self.manifest.get("quarantined"))


def set_aside(actions: Actions, info: ObjectInfo, reason: str, action: Action, status: ScanStatus) -> SetAside:
    """Tag `info` with `status`, or with Action.QUARANTINE move it to quarantine (an archived object
    cannot be copied before a restore: it is tagged in place; a copy COS refuses for good falls
    back to the tag, fallback.py). Cloud errors of the tagging itself propagate."""
    outcome = _OUTCOMES[status]
    manifest = build_manifest(info, None, reason)
    if action is Action.QUARANTINE and info.storage_class in ARCHIVE_CLASSES:
        reason += "; archived objects cannot be copied until restored, so it is tagged in place"
    elif action is Action.QUARANTINE:
        try:
            copy = actions.quarantine(info, manifest, status=status)
        except StaleObjectError as exc:
            return SetAside(Outcome.STALE, str(exc))
        except CopyRefused as refused:  # refused for good: tagged in place, never retried forever
            fallback = fall_back(actions, info, refused, status, None, lambda: None)[2]
            return SetAside(outcome, f"{reason}; {fallback['action']}: the quarantine copy was refused "
                                     f"({fallback['reason']})", dict(manifest, fallback=fallback))
        except QuarantineError as exc:
            return SetAside(Outcome.ERROR, str(exc), retryable=True)
        return SetAside(outcome, f"{reason}; moved to {copy.bucket}/{copy.key}",
                        quarantine_record(manifest, info, copy))
    actions.tag(info, status)
    return SetAside(outcome, reason, manifest)


__all__ = ["SetAside", "set_aside"]
