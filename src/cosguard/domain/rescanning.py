"""One object's rescan: what `cosguard rescan`, its fan-out and the scheduled rescans share.

    the write's sealed record (claims/) says clean, given before the cut-off  -> a rescan job
    the record says a later verdict (or not clean)                           -> not_due / skipped
    no record for the object's current write (overwritten since, or never
    scanned)                                                                  -> the upload path
                                                                                 (Scanner.scan_object)

The record is found by the listing's identity first (one GET, no HEAD when it is not due); a due
write is HEADed before its job is submitted, and the HEAD's identity is what decides. Tags and
metadata are never read for this: an uploader cannot make an object skip a rescan or date its
verdict.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..errors import CloudError, NotFoundError
from ..infra.logs import event, get_logger
from ..infra.retry import current_deadline
from .entries import digest, version_token
from .ledger import CLAIM_LEASE_SECONDS
from .limits import fitting_key
from .rescans import claim_rescan, is_due, read_verdict, verdict_at
from .rules import in_clean_destination, skip_reason
from .status import Outcome

if TYPE_CHECKING:
    from .scan import Scanner, ScanResult, ScanSummary

log = get_logger("cosguard.domain.rescanning")
# A fanned-out rescan's event (bulk/rescan.py) carries its cut-off here: {"before": epoch seconds}.
# Only a caller allowed to invoke the function can set it (COS's trigger never does); the worst it
# can do is rescan writes whose verdict is newer, which costs scans and changes nothing else.
RESCAN_EVENT_FIELD = "cosguard_rescan"


def rescan_object(scanner: "Scanner", bucket: str, key: str, before: float, token: Optional[str] = None,
                  version_id: Optional[str] = None, record: Optional[Dict[str, Any]] = None) -> "ScanResult":
    """Rescan `bucket`/`key` when its current write's last clean verdict is older than `before`.
    `token`: the write's identity as a listing showed it (saves the HEAD of a write not due);
    `record`: that write's sealed record when the caller has just read it (the scheduled rescans)."""
    from .scan import ScanResult
    if not scanner.settings.serves(bucket):
        return ScanResult(bucket, key, Outcome.ERROR, reason="bucket is not in COSGUARD_BUCKETS")
    # a promoted copy (fail-closed layout) was scanned as its intake write: the intake's rules do not apply
    reason = None if in_clean_destination(scanner.settings, bucket, key) else skip_reason(scanner.settings, bucket, key)
    if reason:
        return ScanResult(bucket, key, Outcome.SKIPPED, reason=reason)
    ledger = scanner.ledger(bucket)
    try:
        if record is None or not token:
            record = read_verdict(ledger, digest(bucket, key, token)) if token else None
        if record is not None and not is_due(record, before):
            return _not_due(bucket, key, record, token)
        try:
            info = scanner.gateway.head(bucket, key, version_id)
        except NotFoundError:
            return ScanResult(bucket, key, Outcome.GONE, reason="object no longer exists")
        current = version_token(info)
        if current != token:
            record = read_verdict(ledger, digest(bucket, key, current))
        if record is None:   # overwritten since its verdict (or never scanned): a new write
            return scanner.scan_object(bucket, [key], version_id, info=info, size=info.size)
        if not is_due(record, before):
            return _not_due(bucket, key, record, current)
        lease = min(CLAIM_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
        entry = claim_rescan(ledger, info, record, lease)
    except CloudError as exc:
        return ScanResult(bucket, key, Outcome.ERROR, reason=f"{exc.code or type(exc).__name__}: {exc}",
                          retryable=exc.retryable)
    if entry is None:
        return ScanResult(bucket, key, Outcome.DUPLICATE, reason="a job of this write is in flight", version=current)
    result = scanner._submit(ledger, info, entry)
    event(log, "rescan", logging.INFO if result.outcome is Outcome.RESCANNED else logging.WARNING,
          outcome=result.outcome.value, bucket=bucket, key=key, job_id=result.job_id, rescan_of=entry.rescan_of,
          verdict_at=entry.verdict_at, reason=result.reason)
    return result


def rescan_uploads(scanner: "Scanner", uploads, before: float) -> "ScanSummary":
    """A fanned-out rescan's batch (scan_on_upload): each upload through `rescan_object`."""
    from .scan import ScanSummary
    # `listed` (an inventory-driven run's, bulk/inventory.py): the write's identity as the report
    # showed it, so a write not due costs one read and no HEAD, as in a rescan run without fan-out
    return ScanSummary([rescan_object(scanner, u.bucket, u.key_candidates[0], before, u.listed, u.version_id)
                        for u in uploads])


def recheck_clean_since(scanner: "Scanner", bucket: str, key: str, since: float) -> List["ScanResult"]:
    """A write of `bucket`/`key` written at `since` was deleted by someone else (versions.py,
    removed_by_another): a job of this key submitted by key in its lifetime may have read it. The
    key's current write, and in fail-closed mode its promoted copy, is rescanned when its clean
    verdict was given since then (COS's one-second resolution: the same second counts)."""
    targets = [(bucket, key)]
    destination = scanner.settings.clean_destination
    if destination is not None:
        targets.append((destination.for_source(bucket), fitting_key(destination.prefix, key)))
    results = []
    for target_bucket, target_key in targets:
        try:
            info = scanner.gateway.head(target_bucket, target_key)
        except NotFoundError:
            continue
        token = version_token(info)
        record = read_verdict(scanner.ledger(target_bucket), digest(target_bucket, target_key, token))
        if record is None or verdict_at(record) + 1 < since:
            continue
        if (target_bucket, target_key) != (bucket, key) and \
                (record.get("promoted_from") or {}).get("key") != key:
            continue   # a copy at the destination key that is not this key's promotion
        results.append(rescan_object(scanner, target_bucket, target_key, float("inf"), token, info.version_id, record))
    return results


def _not_due(bucket: str, key: str, record, token: Optional[str]) -> "ScanResult":
    from .scan import ScanResult
    if record.get("outcome") != Outcome.CLEAN.value:
        return ScanResult(bucket, key, Outcome.SKIPPED, reason=f"last verdict {record.get('outcome')}, not clean",
                          version=token)
    return ScanResult(bucket, key, Outcome.NOT_DUE, reason="clean verdict newer than the cut-off", version=token)
