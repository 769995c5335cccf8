"""`cosguard rescan`: a new CI job for every current object whose last clean verdict is older than a
cut-off, on backfill's machinery (listing, workers, --rps, checkpoints, fan-out, reports).

The objects come from `pages()` (backfill's: the bucket's listing, one page at a time; any other
source of `listing.Page`s, an inventory report, plugs in there). Each object takes
`domain.rescanning.rescan_object`, the path the fan-out's workers and the scheduled rescans take too:
its sealed ledger record decides, never what the listing or the object's tags say.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set

from ..domain.ledger import digest
from ..domain.rescanning import RESCAN_EVENT_FIELD, rescan_object
from ..domain.rescans import is_due, read_verdict
from ..domain.rules import in_clean_destination
from ..domain.status import Outcome
from .backfill import SCAN, Backfill, Options
from .checkpoint import BackfillError
from .claimset import ClaimSet
from .inventory import listed_identity
from .listing import Entry


@dataclass
class RescanOptions(Options):
    before: float = 0.0   # rescan writes whose last clean verdict was given before this (epoch seconds)
    max_scans: Optional[int] = None   # stop once this many scans were submitted (a checkpoint resumes)


class Rescan(Backfill):
    """One rescan run; `run()` returns backfill's Report (mode `rescan`, `dry-run` or `fan-out`)."""

    KIND = "rescan"
    DRY_RUN_READS = True   # what is due is in each write's record: one GET each, no scan

    def __init__(self, runtime, options: RescanOptions, **kwargs: Any):
        if options.before <= 0:
            raise BackfillError("a rescan needs a cut-off (--older-than)")
        if options.max_scans is not None and options.max_scans < 1:
            raise BackfillError("--max-scans must be positive")
        if options.max_scans is not None and options.invoker is not None:
            raise BackfillError("--max-scans counts scans submitted here: not with --fan-out")
        self.before = options.before
        self._reserved = 0    # scans submitted, or about to be (one per object in flight)
        super().__init__(runtime, options, **kwargs)
        if self.report.mode == "scan":
            self.report.mode = "rescan"

    def _resumed(self, doc: Dict[str, Any]) -> None:
        before = doc.get("before")
        if isinstance(before, (int, float)) and before > 0:
            self.before = float(before)   # a resumed run keeps the cut-off it started with

    def _checkpoint_fields(self) -> Dict[str, Any]:
        return {"before": self.before}

    def _event_fields(self) -> Dict[str, Any]:
        return {RESCAN_EVENT_FIELD: {"before": self.before}}

    def load_claims(self) -> ClaimSet:
        self._retrying: Set[str] = set()
        return ClaimSet()   # every listed object asks its own record

    def triage(self, entry: Entry) -> str:
        """Backfill's, except that a promoted copy (fail-closed layout) is not judged by the intake's
        key rules: it was scanned as its intake write, and its own record decides."""
        if entry.size and in_clean_destination(self.settings, self.options.bucket, entry.key):
            return SCAN
        return super().triage(entry)

    def _work(self, to_scan: List[Entry]) -> List[tuple]:
        if self.options.dry_run:
            return [(self._classify, [entry]) for entry in to_scan]
        return super()._work(to_scan)

    def _classify(self, entries: List[Entry]) -> None:
        """A dry run: due (`to_scan`), not due, or no verdict for the listed write (it would take the
        upload path: scanned unless handled or in flight)."""
        entry = entries[0]
        ledger = self.scanner.ledger(self.options.bucket)
        try:
            record = read_verdict(ledger, digest(self.options.bucket, entry.key, entry.token))
        except Exception as exc:  # count it, keep going
            self._done(entries, Outcome.ERROR.value, reason=f"{type(exc).__name__}: {exc}")
            return
        if record is None:
            self._done(entries, "no_verdict")
        elif is_due(record, self.before):
            self._done(entries, "to_scan", scan_bytes=True)
        else:
            self._done(entries, Outcome.NOT_DUE.value)

    def _reserve(self) -> bool:
        """One scan more, unless --max-scans is reached: then the run stops (the rest of the page is
        not counted, and a resume redoes it)."""
        limit = self.options.max_scans   # type: ignore[attr-defined]
        with self._lock:
            if limit is not None and self._reserved >= limit:
                self.report.at_limit = True
                self.stop.set()
                return False
            self._reserved += 1
            return True

    def _scan(self, entries: List[Entry]) -> None:
        entry = entries[0]
        if not self._reserve():
            return
        try:
            # an inventory row's key with two spellings gives no identity: HEAD decides (inventory.listed_identity)
            result = rescan_object(self.scanner, self.options.bucket, entry.key, self.before, listed_identity(entry),
                                   entry.version_id)
            outcome, reason = result.outcome.value, result.reason
        except Exception as exc:  # a bug must not sink the run: count it, keep going
            outcome, reason = Outcome.ERROR.value, f"{type(exc).__name__}: {exc}"
        scanned = outcome in (Outcome.RESCANNED.value, Outcome.SUBMITTED.value)
        if not scanned:
            with self._lock:
                self._reserved -= 1   # this object cost no scan
        self._done(entries, outcome, scan_bytes=scanned, reason=reason)


def cut_off(older_than_seconds: float, now: float = 0.0) -> float:
    return (now or time.time()) - older_than_seconds
