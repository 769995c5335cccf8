"""When COS refuses a copy for good, the verdict still takes effect, without the copy.

A 4xx on the copy (no permission on the quarantine bucket, a limit cosguard did not foresee) does
not heal by retrying, and retrying forever would keep an infected upload where readers find it:

- infected, to be moved to quarantine: the original is deleted instead, as COSGUARD_INFECTED_ACTION
  =delete would; where COS refuses that too (a 4xx), it is tagged `infected` in place;
- a failed scan to be quarantined: tagged `error` in place (nothing says it is infected);
- a clean object to be promoted: tagged `clean` in place and left in the intake, never deleted.

A transient failure (throttling, 5xx, timeouts) is no refusal: it is retried as before. Each fallback
is logged as a WARNING; the caller notifies and records it in the ledger's closed record, where
`cosguard status` lists it.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import CloudError, CopyRefused, QuarantineError
from ..infra.cloud import ObjectInfo
from ..infra.logs import event, get_logger
from .actions import Actions
from .status import Outcome, ScanStatus

log = get_logger("cosguard.domain.fallback")
_TAGGED = {ScanStatus.CLEAN: Outcome.CLEAN, ScanStatus.INFECTED: Outcome.INFECTED,
           ScanStatus.ERROR: Outcome.ERROR, ScanStatus.UNSCANNABLE: Outcome.UNSCANNABLE}


def fall_back(actions: Actions, info: ObjectInfo, refused: CopyRefused, status: ScanStatus,
              job_id: Optional[str], user_tags: Callable[[], Optional[Mapping[str, str]]]
              ) -> Tuple[Outcome, str, Dict[str, Any]]:
    """(outcome, where the object is now, the ledger's `fallback` record) for a refused copy of
    `info` that was to carry `status`; `user_tags()` gives the object's tags (None: read them).
    Raises QuarantineError for a transient delete failure."""
    cause = refused.cause
    reason = f"{cause.status or ''} {cause.code or type(cause).__name__}: {cause}".strip()
    outcome, location = _TAGGED[status], f"{info.bucket}/{info.key}"
    if status is ScanStatus.INFECTED:
        try:
            actions.delete(info)
            outcome, location = Outcome.DELETED, ""
        except QuarantineError as exc:
            failure = exc.__cause__
            if not isinstance(failure, CloudError) or failure.retryable:
                raise
            reason += f"; the delete was refused too ({failure.code or type(failure).__name__})"
    if outcome is not Outcome.DELETED:
        actions.tag(info, status, job_id, existing=user_tags())
    action = "deleted" if outcome is Outcome.DELETED else f"tagged {status.value}"
    event(log, "copy_refused_fallback_applied", logging.WARNING, bucket=info.bucket, key=info.key,
          job_id=job_id, action=action, reason=reason)
    return outcome, location, {"action": action, "reason": reason}


__all__ = ["fall_back"]
