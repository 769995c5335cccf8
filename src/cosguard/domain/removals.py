"""Reporting writes that cosguard's own DELETE may have removed, on unversioned buckets.

Why: COS's DELETE Object takes no condition (doc 436/7743 lists only common headers), and an
unversioned bucket has no version to name. `Actions._delete_original` re-checks the scanned
upload's identity with a HEAD and then deletes the key: a write that lands between that HEAD and
the DELETE taking effect is deleted instead of (or with) the scanned one. cosguard cannot see this
at DELETE time (the answer says nothing of what was removed, and a HEAD afterwards finds 404
either way), so the lost write is recognised when its own traces come back:

- its upload event is handled and finds the key gone, or holding a write newer than the event, or
- its own scan job's verdict finds the key gone,

while the ledger shows that cosguard closed a job that removed that key (quarantined, deleted,
promoted, or quarantined on failure) no earlier than the write was made, or still has a job of the
key open (its verdict may be removing the key right now: the job closes just after the DELETE).
Every such write is
reported: a WARNING log line and a notification naming the key, and a record in the ledger's
`losses/` (losses.py) that `cosguard report` and `cosguard status` list until a human runs
`cosguard ledger ack ID`; the same loss found again is neither recorded nor notified twice. False alarms are preferred to
silence: a write removed by anyone else at about the same time is reported too, and so is a
redelivered event of the removed upload itself (COS's event carries no ETag to tell them apart).
The check costs one listing of the key's `removed/` records (ledger.py), and only on these paths
(never on a normal upload).

Residual window, not reported: a write whose upload event is never handled (the trigger gave up)
and whose job was never submitted; a lost write whose event is handled only after a newer write
landed within the same second or the next (COS's one-second Last-Modified cannot tell them apart;
the key then holds that newer write, as it would have anyway); a removal whose function died
between the DELETE and closing its job, when the lost write's event is handled only after the sweep
closed that job as `gone`; clocks of COS and the function more than `CLOCK_SKEW_SECONDS` apart. Versioned buckets are exact (the DELETE names the
version) and need none of this: docs/how-it-works.md recommends them.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from ..errors import CloudError
from ..infra.logs import event, get_logger
from .ledger import REMOVED_BY_COSGUARD, Ledger
from .losses import ack_command

log = get_logger("cosguard.domain.removals")

CLOCK_SKEW_SECONDS = 5.0


def removal_after(ledger: Ledger, bucket: str, key: str, written_at: float,
                  until: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """The claim of a job that removed `bucket`/`key` and closed at or after `written_at` (and,
    with `until`, no later than it), within the clock skew; else, for a key found gone (no
    `until`), a stand-in for a job of the key still open (outcome `acting`); None otherwise."""
    try:
        claims = list(ledger.removals_of(bucket, key))
        found = _closed_removal(claims, written_at, until)
        if found is None and until is None:   # gone (not replaced): a removal may be under way
            found = next(({"outcome": "acting", "job_id": entry.job_id, "closed_at": None}
                          for entry in ledger.open_entries_of(bucket, key)), None)
        return found
    except CloudError as exc:   # unknown: say so rather than stay silent
        event(log, "removals_not_checked", logging.WARNING, bucket=bucket, key=key, reason=str(exc))
        return {"outcome": "unknown", "job_id": None, "closed_at": None}


def _closed_removal(claims, written_at: float, until: Optional[float]) -> Optional[Dict[str, Any]]:
    for claim in claims:
        closed_at = claim.get("closed_at")
        if claim.get("outcome") not in REMOVED_BY_COSGUARD or not isinstance(closed_at, (int, float)):
            continue
        if closed_at + CLOCK_SKEW_SECONDS < written_at:
            continue
        if until is not None and closed_at - CLOCK_SKEW_SECONDS > until:
            continue
        return claim
    return None


def describe(bucket: str, key: str, written_at: float, claim: Dict[str, Any]) -> str:
    if claim.get("outcome") == "acting":
        return (f"a write of {bucket}/{key} (at {int(written_at)}) is gone while cosguard is acting on an "
                f"earlier upload of the key (job {claim.get('job_id')}): it may have been removed by "
                "cosguard's DELETE; check the key and re-upload if it is missing")
    if claim.get("outcome") == "unknown":
        return (f"a write of {bucket}/{key} (at {int(written_at)}) is gone and cosguard could not read its "
                "own removals of the key: it may have been removed by cosguard's DELETE of an earlier upload; "
                "check the key and re-upload if it is missing")
    return (f"a write of {bucket}/{key} (at {int(written_at)}) may have been removed by cosguard's DELETE "
            f"of an earlier upload (job {claim.get('job_id')}, {claim.get('outcome')}): COS's DELETE is "
            "unconditional on unversioned buckets; check the key and re-upload if it is missing")


def record(ledger: Ledger, bucket: str, key: str, written_at: float, claim: Dict[str, Any], detail: str,
           found_by: str) -> Tuple[Optional[str], bool]:
    """Record the possible loss in the ledger (losses.py) for the report and `cosguard status`, until
    `cosguard ledger ack ID`: (its id, whether this call recorded it; False: found already). A
    failure to record is logged, never raised: the caller still reports the loss by log and
    notification, and the verdict path has already closed its job."""
    try:
        return ledger.record_loss(bucket, key, written_at, claim, detail, found_by)
    except CloudError as exc:
        event(log, "possible_loss_not_recorded", logging.WARNING, bucket=bucket, key=key,
              job_id=claim.get("job_id"), reason=f"{exc.code or type(exc).__name__}: {exc}")
        return None, True


def with_ack(detail: str, bucket: str, found_id: Optional[str]) -> str:
    """What a human is told: the detail, and the command that clears the record once dealt with."""
    return f"{detail}; once dealt with: {ack_command(bucket, found_id)}" if found_id else detail


def report(notifier: Any, ledger: Ledger, bucket: str, key: str, written_at: float, claim: Dict[str, Any]) -> str:
    """Record the loss, then a WARNING + a notification naming the key, once per loss (a loss
    recorded already was reported when it was); returns the detail."""
    detail = describe(bucket, key, written_at, claim)
    found_id, new = record(ledger, bucket, key, written_at, claim, detail, "upload event")
    if not new:
        return detail
    event(log, "possible_write_loss", logging.WARNING, bucket=bucket, key=key,
          job_id=claim.get("job_id"), loss_id=found_id, reason=detail)
    if notifier is not None:
        from ..infra.notify import message  # loaded with the notifier
        notifier.send(message("possible_loss", bucket, key, job_id=claim.get("job_id"),
                              outcome="possible_loss", detail=with_ack(detail, bucket, found_id)))
    return detail
