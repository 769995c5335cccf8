"""Object tags: cosguard's status merged into the user's tags, never dropping one of theirs."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

from .status import JOB_TAG, MAX_TAGS, STATUS_TAG, ScanStatus


def merge(existing: Mapping[str, str], status: ScanStatus,
          job_id: Optional[str] = None) -> Tuple[Dict[str, str], bool]:
    """The tag set to write, and whether everything cosguard wanted fitted.

    COS allows 10 tags an object. User tags always stay; cosguard's status goes in before its job id.
    When not even the status fits, the returned set equals `existing` and `fitted` is False: the
    ledger (which always records the job) is then the only record, as README documents.
    """
    merged = dict(existing)
    if not job_id:  # a job tag from an earlier write, or one an uploader set, names no job of this write
        merged.pop(JOB_TAG, None)
    wanted = [(STATUS_TAG, status.value)]
    if job_id:
        wanted.append((JOB_TAG, job_id))
    fitted = True
    for key, value in wanted:
        if key in merged or len(merged) < MAX_TAGS:
            merged[key] = value
        else:
            fitted = False
    return merged, fitted


def status_of(tags: Mapping[str, str]) -> Optional[ScanStatus]:
    try:
        return ScanStatus(tags[STATUS_TAG])
    except (KeyError, ValueError):
        return None
