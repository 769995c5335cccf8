"""One fanned-out invocation of an inventory-driven backfill or rescan: a data file of the report
(or a range of its records), read and acted on inside `scan_on_upload` itself.

`cosguard backfill/rescan --inventory M --fan-out` reads only the manifest and invokes the function
once per data file with `{"cosguard_inventory": {...}}` (bulk/inventory_fan_out.py). The event
comes from the operator's command line through SCF Invoke (CAM-authenticated), but what it names
is checked again here, never trusted:

- the bucket must be one this deployment serves (COSGUARD_BUCKETS);
- the manifest is read and checked against its `manifest.checksum`, and must list that bucket;
- the data file must be one the manifest lists, with the MD5 the event gives; the file is read
  through once to that MD5 before any row is acted on, so a file altered since is refused whole.

Each row then takes the path a real upload takes (Scanner.scan_object, with the row's identity so a
handled write costs one ledger read and no HEAD) or, rescanning, `rescan_object`: "already handled"
is decided here, per batch, so no process holds the claim set. A slice that runs short of time, or
whose rows failed in a way a retry may heal, raises SubmissionError: SCF retries the invocation
(twice by default, SCF's async retry policy), and the rows handled the first time are `duplicate`
(or `not_due`) the second.
"""
from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from ..errors import SubmissionError
from ..infra.logs import event, get_logger
from ..infra.retry import current_deadline
from .inventory_report import Entry, ReportError, RowReader, listed_identity, read_manifest
from .rescanning import rescan_object
from .rules import in_clean_destination, skip_reason
from .status import Outcome
from .uploads import INVENTORY_EVENT_FIELD

if TYPE_CHECKING:
    from .scan import Scanner, ScanResult

log = get_logger("cosguard.domain.inventory_slice")
BATCH = 64            # rows acted on together (the scanner's pool runs them in parallel)
MARGIN_SECONDS = 20.0  # a batch is started only with this much of the invocation's time left (or a
                       # quarter of what the slice started with, when that is less)


class SliceError(ReportError):
    """An event that does not name a usable slice of a report this deployment serves."""


def _spec(raw: Any) -> Dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise SliceError(f"{INVENTORY_EVENT_FIELD} is not an object")
    spec = {name: raw.get(name) for name in ("manifest", "bucket", "file", "md5", "prefix", "raw_keys", "rows")}
    if not all(isinstance(spec[n], str) and spec[n] for n in ("manifest", "bucket", "file", "md5")):
        raise SliceError(f"{INVENTORY_EVENT_FIELD} needs manifest, bucket, file and md5")
    rows = spec["rows"] or [0, None]
    if (not isinstance(rows, list) or len(rows) != 2 or not isinstance(rows[0], int) or rows[0] < 0
            or not (rows[1] is None or (isinstance(rows[1], int) and rows[1] > rows[0]))):
        raise SliceError(f"{INVENTORY_EVENT_FIELD}.rows must be [first, end or null]")
    spec["rows"], spec["prefix"], spec["raw_keys"] = rows, str(spec["prefix"] or ""), spec["raw_keys"] is True
    return spec


def scan_inventory_slice(scanner: "Scanner", raw: Any, before: Optional[float] = None) -> "SliceSummary":
    """The rows of one data file (records `rows[0]` < n <= `rows[1]`) scanned, or rescanned when
    `before` is given; a refused slice answers one error result (no retry: it would read the same)."""
    from .scan import ScanResult
    bucket, name = "", ""
    try:
        spec = _spec(raw)
        bucket, name = spec["bucket"], spec["file"]
        if not scanner.settings.serves(bucket):
            raise SliceError(f"{bucket} is not in COSGUARD_BUCKETS")
        manifest = read_manifest(scanner.gateway, spec["manifest"], bucket)
        index = next((i for i, f in enumerate(manifest.files) if f.key == name), None)
        if index is None:
            raise SliceError(f"inventory: {name} is not a data file of {manifest.location}")
        if manifest.files[index].md5 != spec["md5"].lower():
            raise SliceError(f"inventory: {name}'s MD5 is not the one its manifest gives")
        reader = RowReader(scanner.gateway, manifest, spec["prefix"], spec["raw_keys"])
        reader.verify(index)
    except ReportError as exc:
        event(log, "inventory_slice_refused", logging.ERROR, bucket=bucket, file=name, reason=str(exc))
        refused = SliceSummary()
        refused.add(ScanResult(bucket, name, Outcome.ERROR, reason=str(exc)))
        return refused
    first, end = spec["rows"]
    margin = min(MARGIN_SECONDS, max(0.0, current_deadline().remaining()) / 4)
    summary = SliceSummary()
    batch: List[Entry] = []
    row = first
    try:
        for row, entry in reader.file(index, first):
            if entry is not None:
                batch.append(entry)
            if len(batch) >= BATCH:
                _act(scanner, bucket, batch, before, summary, margin)
                batch = []
            if end is not None and row >= end:
                break
        _act(scanner, bucket, batch, before, summary, margin)
    except ReportError as exc:   # the download broke off (the MD5 was checked): a retry may read it whole
        summary.failed.append(f"{name}: {exc}")
    for bad in reader.take_malformed():
        summary.add(ScanResult(bucket, bad["key"], Outcome.ERROR, reason=bad["reason"]))
    event(log, "inventory_slice", logging.WARNING if summary.failed else logging.INFO, bucket=bucket, file=name,
          first=first, last=row, counts=summary.counts(), rescan=before is not None)
    if summary.failed:
        raise SubmissionError(summary.failed)
    return summary


class SliceSummary:
    """A ScanSummary's counts without its results (a file holds up to millions of rows): errors and
    jobs are kept, the rest counted."""

    def __init__(self) -> None:
        self.tally: Dict[str, int] = {}
        self.failed: List[str] = []
        self.errors: List[Dict[str, str]] = []

    def add(self, result: "ScanResult") -> None:
        self.tally[result.outcome.value] = self.tally.get(result.outcome.value, 0) + 1
        if result.retryable:
            self.failed.append(f"{result.bucket}/{result.key}: {result.reason}")
        elif result.outcome is Outcome.ERROR and len(self.errors) < 50:
            self.errors.append({"key": result.key, "reason": result.reason or ""})

    def counts(self) -> Dict[str, int]:
        return dict(sorted(self.tally.items()))

    def as_dict(self) -> Dict[str, object]:
        return {"records": sum(self.tally.values()), "counts": self.counts(), "errors": self.errors}


def _act(scanner: "Scanner", bucket: str, batch: List[Entry], before: Optional[float], tally: SliceSummary,
         margin: float) -> None:
    from .scan import ScanResult
    if not batch:
        return
    if current_deadline().remaining() < margin:
        raise SubmissionError([f"out of time before {batch[0].key}: SCF's retry goes on from the handled rows"])
    todo: List[Entry] = []
    for entry in batch:
        reason = None if before is not None and in_clean_destination(scanner.settings, bucket, entry.key) \
            else skip_reason(scanner.settings, bucket, entry.key)
        if reason is None and entry.size == 0 and entry.key.endswith("/"):
            reason = "folder marker"
        if reason is None and entry.size == 0 and scanner.settings.skip_empty:
            reason = "empty object"
        if reason:
            tally.add(ScanResult(bucket, entry.key, Outcome.SKIPPED, reason=reason))
        else:
            todo.append(entry)

    def one(entry: Entry) -> "ScanResult":
        try:
            if before is not None:
                return rescan_object(scanner, bucket, entry.key, before, listed_identity(entry), entry.version_id)
            result = scanner.scan_object(bucket, [entry.key, *entry.alternates], entry.version_id,
                                         size=entry.size, listed=listed_identity(entry))
            if result.also:   # a key under two spellings, both existing: the error or the submission counts
                every = [result, *result.also]
                result = next((r for r in every if r.outcome is Outcome.ERROR), None) or \
                    next((r for r in every if r.outcome is Outcome.SUBMITTED), result)
            return result
        except Exception as exc:  # noqa: BLE001 - a bug in one row: counted, retried, the others go on
            return ScanResult(bucket, entry.key, Outcome.ERROR, reason=f"{type(exc).__name__}: {exc}", retryable=True)
    from concurrent.futures import ThreadPoolExecutor  # only an inventory slice loads it
    with ThreadPoolExecutor(max_workers=max(1, min(scanner.settings.max_workers, len(todo) or 1)),
                            thread_name_prefix="cosguard-inventory") as pool:   # each row in a copy of this context (the deadline)
        for future in [pool.submit(contextvars.copy_context().run, one, entry) for entry in todo]:
            tally.add(future.result())
