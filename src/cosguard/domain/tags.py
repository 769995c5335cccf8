"""Object tags: cosguard's status merged into the user's tags.

COS allows 10 tags an object (doc 436/42997). cosguard's own job tag gives way to its status first;
a user tag is dropped only when the caller asks (`make_room`, COSGUARD_TAG_LIMIT_* = replace), and
then exactly one, named back to the caller so the ledger can record it.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

from .status import JOB_TAG, MAX_TAGS, STATUS_TAG, ScanStatus

OWN_TAGS = (STATUS_TAG, JOB_TAG)


def merge(existing: Mapping[str, str], status: ScanStatus, job_id: Optional[str] = None,
          make_room: bool = False) -> Tuple[Dict[str, str], bool]:
    """The tag set to write, and whether cosguard's status is on it (`fitted`).

    User tags stay. The status goes in first: a `cosguard-job` tag (cosguard's own) is dropped to
    make room for it, and the job id goes in only where room is left (the ledger always records
    the job). With `make_room`, one user tag (`replaced`) is dropped when nothing else frees a slot.
    When the status does not fit, `fitted` is False and the caller applies its fallback."""
    merged, _ = _merge(existing, status, job_id, make_room)
    return merged, STATUS_TAG in merged and merged[STATUS_TAG] == status.value


def replaced(existing: Mapping[str, str], status: ScanStatus, job_id: Optional[str] = None) -> Optional[str]:
    """The user tag `merge(..., make_room=True)` drops, if any (the last by name: deterministic)."""
    return _merge(existing, status, job_id, True)[1]


def _merge(existing: Mapping[str, str], status: ScanStatus, job_id: Optional[str],
           make_room: bool) -> Tuple[Dict[str, str], Optional[str]]:
    merged = dict(existing)
    if not job_id:  # a job tag from an earlier write, or one an uploader set, names no job of this write
        merged.pop(JOB_TAG, None)
    dropped = None
    if STATUS_TAG not in merged and len(merged) >= MAX_TAGS:
        merged.pop(JOB_TAG, None)       # cosguard's own tag gives way first
        if len(merged) >= MAX_TAGS and make_room:
            dropped = sorted(k for k in merged if k not in OWN_TAGS)[-1]
            del merged[dropped]
    if STATUS_TAG in merged or len(merged) < MAX_TAGS:
        merged[STATUS_TAG] = status.value
        if job_id and (JOB_TAG in merged or len(merged) < MAX_TAGS):
            merged[JOB_TAG] = job_id
    return merged, dropped


def status_of(tags: Mapping[str, str]) -> Optional[ScanStatus]:
    try:
        return ScanStatus(tags[STATUS_TAG])
    except (KeyError, ValueError):
        return None
