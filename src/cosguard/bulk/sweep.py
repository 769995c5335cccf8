"""The sweep (reconcile): recover lost callbacks, resubmit failed submissions, report overdue jobs.

Reads only the ledger's `jobs/` and `retry/` prefixes, so it costs in proportion to the unfinished
work, never to the bucket. Verdicts go through VerdictService.apply: the callback's own code path.
A backlog longer than one invocation is walked a page at a time and left, before the deadline, for
the next sweep to resume (sweep_pages.py); the report then says it is partial and where it stopped.
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

from ..domain.ledger import CLAIM_LEASE_SECONDS, ForgedDocument, JobEntry, Ledger, OpenClaim, version_token
from ..domain.open_work import pending_age
from ..domain.scan import Scanner
from ..domain.states import RetryState, Standing, retry_due, retry_state, retry_wait_left
from ..domain.status import Outcome
from ..domain.verdict import VerdictService
from ..domain.versions import submit_superseded
from ..errors import CloudError, NotFoundError
from ..infra import metrics
from ..infra.cloud import APPENDABLE, ObjectInfo
from ..infra.config import Settings
from ..infra.logs import event, get_logger
from ..infra.records import Factory, Record
from ..infra.retry import current_deadline
from .sweep_pages import Budget, Cursor, Dispatcher, keys_after, not_started, walk

log = get_logger("cosguard.bulk.sweep")

RETRY_SHARE = 0.25   # of a ledger's time kept for failed submissions while open jobs fill the rest


class SweepReport(Record, hidden=("_lock", "oldest_pending"), uncompared=("_lock", "oldest_pending")):
    applied: Dict[str, int] = Factory(dict)
    pending: int = 0
    overdue: List[Dict[str, Any]] = Factory(list)
    resubmitted: Dict[str, int] = Factory(dict)
    unresolved: List[Dict[str, Any]] = Factory(list)  # failures a retry will not heal
    unauthenticated: List[str] = Factory(list)  # ledger documents without a valid seal
    dropped: List[Dict[str, Any]] = Factory(list)  # failures forgotten: their object is gone or overwritten
    partial: bool = False  # the deadline came first: the next sweep resumes where this one stopped
    resumed: bool = False  # began where an earlier sweep stopped
    visited: Dict[str, int] = Factory(dict)  # ledger entries dispatched, per listing (`jobs`, `retry`)
    progress: List[Dict[str, Any]] = Factory(list)  # per ledger and listing: where it began and stopped
    seconds: float = 0.0
    oldest_pending: float = 0.0   # seconds: the longest a pending job has waited (the metrics line's)
    _lock: threading.Lock = Factory(threading.Lock)

    def count(self, bucket: Dict[str, int], outcome: str) -> None:
        """Tally one result; the sweep's pool threads all report here."""
        with self._lock:
            bucket[outcome] = bucket.get(outcome, 0) + 1

    def add_pending(self, overdue: Optional[Dict[str, Any]], age: float = 0.0) -> None:
        with self._lock:
            self.pending += 1
            self.oldest_pending = max(self.oldest_pending, age)
            if overdue is not None:
                self.overdue.append(overdue)

    def add_unresolved(self, item: Dict[str, Any]) -> None:
        with self._lock:
            self.unresolved.append(item)

    def add_dropped(self, item: Dict[str, Any]) -> None:
        with self._lock:
            self.dropped.append(item)

    @property
    def problems(self) -> bool:
        return bool(self.overdue or self.unresolved or self.unauthenticated
                    or self.applied.get(Outcome.ERROR.value))

    def as_dict(self) -> Dict[str, Any]:
        return {"applied": self.applied, "pending": self.pending, "overdue": self.overdue,
                "resubmitted": self.resubmitted, "unresolved": self.unresolved,
                "unauthenticated": self.unauthenticated, "dropped": self.dropped, "partial": self.partial,
                "resumed": self.resumed, "visited": self.visited, "progress": self.progress,
                "seconds": round(self.seconds, 3)}


class Sweeper:
    def __init__(self, settings: Settings, verdicts: VerdictService, scanner: Scanner, clock=time.time):
        self.settings = settings
        self.verdicts = verdicts
        self.scanner = scanner
        self.clock = clock

    def ledgers(self, buckets: Optional[Sequence[str]] = None) -> List[Ledger]:
        """One ledger per distinct state bucket of the served buckets."""
        seen: Dict[str, Ledger] = {}
        for bucket in buckets or self.settings.buckets:
            state = self.settings.state_bucket_for(bucket)
            seen.setdefault(state, self.scanner.ledger(bucket))
        return list(seen.values())

    def sweep(self, buckets: Optional[Sequence[str]] = None, resubmit: bool = True,
              deadline: Any = None) -> SweepReport:
        """One sweep of the served buckets' ledgers within `deadline` (default: the invocation's,
        `current_deadline()`): dispatch stops before it, and the next sweep resumes there."""
        started = time.monotonic()
        report = SweepReport()
        served = set(buckets or self.settings.buckets)
        budget = Budget(current_deadline() if deadline is None else deadline,
                        self.settings.sweep_margin_seconds)
        ledgers = self.ledgers(buckets)
        with Dispatcher(self.settings.max_workers) as dispatcher:
            for index, ledger in enumerate(ledgers):
                line = budget.line(1.0 / (len(ledgers) - index))   # an equal share of the time left
                self._isolated(report, ledger.bucket, ledger.prefix, self._sweep_ledger, ledger, served, resubmit,
                               budget, line, dispatcher, report)
        for place in report.progress:
            report.visited[place["listing"]] = report.visited.get(place["listing"], 0) + place["visited"]
        report.partial = any(not p["complete"] for p in report.progress)
        report.resumed = any(p["resumed_from"] for p in report.progress)
        report.unauthenticated = self.scanner.sealer.take_rejected()
        report.seconds = time.monotonic() - started
        metrics.pending(report.pending, report.oldest_pending)
        metrics.count("retried", sum(report.resubmitted.values()))
        metrics.count("overdue", len(report.overdue))
        event(log, "sweep_finished", logging.WARNING if report.problems or report.partial else logging.INFO,
              **report.as_dict())
        return report

    def _sweep_ledger(self, ledger: Ledger, served: set, resubmit: bool, budget: Budget, line: float,
                      dispatcher: Dispatcher, report: SweepReport) -> None:
        """Open jobs, then failed submissions, each from where the last sweep stopped; while
        failed submissions wait, open jobs leave them a quarter of this ledger's time."""
        kinds = ("jobs", "retry") if resubmit else ("jobs",)
        if not budget.before(line):   # no time to start: not one request, and still a report
            report.progress.extend(not_started(ledger, kind) for kind in kinds)
            return
        cursor = Cursor(ledger)
        jobs_line = line
        if resubmit and math.isfinite(line) and self._retries_waiting(ledger):
            jobs_line = line + max(0.0, budget.deadline.remaining() - line) * RETRY_SHARE
        work = {"jobs": lambda key: self._isolated(report, ledger.bucket, key, self._settle_key, ledger, key, served,
                                                   report),
                "retry": lambda key: self._isolated(report, ledger.bucket, key, self._resubmit_key, ledger, key,
                                                    served, report)}
        lines = {"jobs": jobs_line, "retry": line}
        for kind in kinds:
            self._isolated(report, ledger.bucket, f"{ledger.prefix}{kind}/", self._walk, ledger, kind, cursor,
                           dispatcher, work[kind], functools.partial(budget.before, lines[kind]), report)

    @staticmethod
    def _retries_waiting(ledger: Ledger) -> bool:
        """Whether `retry/` holds anything (one listing of one key); a failure here is the retry
        walk's to report, not a reason to skip the open jobs."""
        try:
            return bool(keys_after(ledger, "retry", "", 1))
        except CloudError:
            return False

    def _walk(self, ledger: Ledger, kind: str, cursor: Cursor, dispatcher: Dispatcher, work, in_time,
              report: SweepReport) -> None:
        progress = walk(ledger, kind, cursor, self.settings.sweep_page_size, dispatcher, work, in_time)
        report.progress.append(progress)
        if not progress["complete"]:
            event(log, "sweep_stopped_early", logging.WARNING, **progress)

    @staticmethod
    def _isolated(report: SweepReport, bucket: str, key: str, work, *args: Any) -> None:
        """Run one item's (or one ledger's) work; whatever fails there is reported as needing a
        human and the sweep goes on with the rest: one bad entry never stops it for every bucket."""
        try:
            work(*args)
        except Exception as exc:  # noqa: BLE001 - isolation is the point; KeyboardInterrupt still stops
            reason = f"{getattr(exc, 'code', '') or type(exc).__name__}: {exc}"
            event(log, "sweep_item_failed", logging.ERROR, bucket=bucket, key=key, reason=reason)
            report.add_unresolved({"bucket": bucket, "key": key, "reason": reason})

    def _settle_key(self, ledger: Ledger, key: str, served: set, report: SweepReport) -> None:
        try:
            claim = ledger.read_claim(key)
        except ForgedDocument:
            # Reported (the sealer counts it); nothing in it is believed. The upload it stands for
            # is scanned again when CI's callback for it arrives (VerdictService._forged_entry).
            return
        if claim is not None and claim.entry.bucket in served:
            self._settle(ledger, claim, report)

    def _resubmit_key(self, ledger: Ledger, key: str, served: set, report: SweepReport) -> None:
        found = ledger.read_retry(key)
        if found is not None and found[0].get("bucket") in served:
            doc, stamp = found
            self._isolated(report, str(doc.get("bucket")), str(doc.get("key")), self._resubmit, ledger, doc, stamp,
                           report)

    def _settle(self, ledger: Ledger, claim: OpenClaim, report: SweepReport) -> None:
        """What each standing asks (states.Standing; `status` counts by the same classification)."""
        entry = claim.entry
        if claim.standing is Standing.FAILED:
            self._failed_claim(ledger, entry)
            return
        if claim.standing is Standing.SUBMITTING:
            self._pending(claim, "being submitted", report)
            return
        if claim.standing is Standing.ORPHANED:
            self._orphaned_claim(ledger, claim, report)
            return
        result = self.verdicts.apply(entry.bucket, entry.job_id, entry)
        if result.http_status == 404:  # CI no longer knows the job: scan the object again
            ledger.record_retry(entry.bucket, entry.key, entry.identity,
                                "CI no longer knows job " + entry.job_id, retryable=True)
            ledger.close_job(entry, Outcome.RESUBMIT.value, handled=False)
            report.count(report.applied, Outcome.RESUBMIT.value)
            return
        if result.outcome is Outcome.PENDING:
            self._pending(claim, result.detail, report)
            return
        report.count(report.applied, result.outcome.value)

    @staticmethod
    def _failed_claim(ledger: Ledger, entry: JobEntry) -> None:
        """A failed claim is resubmitted (or dropped) through its retry entry; one without (a record
        lost, or left by an older release) gets one, so the retry pass gives it the same exit."""
        if ledger.retry_entry(entry.bucket, entry.key, entry.identity) is None:
            ledger.record_retry(entry.bucket, entry.key, entry.identity,
                                "a failed claim without a retry entry: submitted again", retryable=True)

    def _pending(self, claim: OpenClaim, state: str, report: SweepReport) -> None:
        entry = claim.entry
        age = pending_age(claim, self.clock())
        overdue: Optional[Dict[str, Any]] = None
        if age > self.settings.pending_overdue_seconds:
            overdue = {"job_id": entry.job_id, "bucket": entry.bucket, "key": entry.key,
                       "age_seconds": int(age), "state": state}
            event(log, "job_overdue", logging.WARNING, **overdue)
        report.add_pending(overdue, age)

    def _orphaned_claim(self, ledger: Ledger, claim: OpenClaim, report: SweepReport) -> None:
        """A claim still `submitting` past its lease on COS's clock: its holder died. Its upload is
        submitted again here, if it is still the object at its key."""
        entry = claim.entry
        try:
            info = self.scanner.gateway.head(entry.bucket, entry.key)
        except NotFoundError:
            ledger.close_job(entry, Outcome.GONE.value)
            report.count(report.resubmitted, Outcome.GONE.value)
            return
        if version_token(info) != entry.identity:  # overwritten since: the new upload has its own event
            version = self._superseded_version(entry.bucket, entry.key, entry.version_id)
            if version is not None:   # ... and its own version is still there: scanned pinned to it
                lease = min(CLAIM_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
                taken = ledger.take_over(claim, lease)
                if taken is None:   # another taker was first
                    self._pending(claim, "being submitted", report)
                    return
                submit_superseded(self.scanner, ledger, taken, version)
                report.count(report.resubmitted, Outcome.SUBMITTED.value)
                return
            ledger.close_job(entry, Outcome.STALE.value, handled=False)
            report.count(report.resubmitted, Outcome.STALE.value)
            self._scan_if_appended(info, report)
            return
        result = self.scanner.resume(ledger, info, claim)
        report.count(report.resubmitted, result.outcome.value)

    def _scan_if_appended(self, current: ObjectInfo, report: SweepReport) -> None:
        """A write that replaced a scanned one has its own event, except an append (doc 436/7741;
        SCF's trigger doc 583/9707 lists no Append event): an appendable object is scanned now
        (its claim makes a later event of the same write a duplicate)."""
        if current.object_type == APPENDABLE:
            result = self.scanner.scan_object(current.bucket, [current.key], current.version_id, info=current)
            report.count(report.resubmitted, result.outcome.value)

    def _superseded_version(self, bucket: str, key: str, version_id: Optional[str]) -> Optional[ObjectInfo]:
        """On a versioned bucket, the overwritten version itself, if it still exists (versions.py)."""
        if not version_id or version_id == "null":
            return None
        try:
            return self.scanner.gateway.head(bucket, key, version_id)
        except NotFoundError:
            return None

    def _resubmit_version(self, ledger: Ledger, version: ObjectInfo) -> bool:
        """Claim and submit an overwritten version pinned to it; False when it needs nothing."""
        lease = min(CLAIM_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
        state, entry = ledger.claim(version, lease=lease)
        if state != "claimed" or entry is None:
            return False
        submit_superseded(self.scanner, ledger, entry, version)
        return True

    def _resubmit(self, ledger: Ledger, doc: Dict[str, Any], stamp: Any, report: SweepReport) -> None:
        """One retry entry (states.RetryState): dropped when its object is gone or overwritten,
        whatever its state; else submitted again (a refused one when its backoff is over, on COS's
        clock), or reported."""
        bucket, key, token = doc["bucket"], doc["key"], doc.get("token", "")
        state = retry_state(doc)
        try:
            info = self.scanner.gateway.head(bucket, key)
        except NotFoundError:
            self._drop(ledger, doc, "the object no longer exists", report)
            report.count(report.resubmitted, Outcome.GONE.value)
            return
        except CloudError as exc:
            report.count(report.resubmitted, Outcome.ERROR.value)
            report.add_unresolved({"bucket": bucket, "key": key, "reason": str(exc)})
            return
        if token and version_token(info) != token:  # overwritten since: the new object has its own event
            version = self._superseded_version(bucket, key, token if info.version_id else None)
            if state is not RetryState.HELD and version is not None and self._resubmit_version(ledger, version):
                report.count(report.resubmitted, Outcome.SUBMITTED.value)
                return
            self._drop(ledger, doc, "the object was overwritten since", report)
            report.count(report.resubmitted, Outcome.STALE.value)
            self._scan_if_appended(info, report)
            return
        if not retry_due(doc, stamp, self.clock()):
            waiting = {"bucket": bucket, "key": key, "reason": doc.get("reason", ""), "state": state.value}
            if state is RetryState.REFUSED:
                waiting["next_attempt_seconds"] = retry_wait_left(doc, stamp)
            report.add_unresolved(waiting)
            return
        result = self.scanner.scan_object(bucket, [key], info.version_id, info=info)
        if result.outcome is not Outcome.ERROR and not result.retryable:
            ledger.clear_retry(bucket, key, token)
        elif result.outcome is Outcome.ERROR and not result.retryable:   # refused again: backed off
            report.add_unresolved({"bucket": bucket, "key": key, "reason": result.reason,
                                   "state": RetryState.REFUSED.value})
        report.count(report.resubmitted, result.outcome.value)

    @staticmethod
    def _drop(ledger: Ledger, doc: Dict[str, Any], why: str, report: SweepReport) -> None:
        """Forget a failure whose upload is gone or overwritten (its retry entry and failed claim),
        recorded in the report and the log."""
        bucket, key, token = doc["bucket"], doc["key"], doc.get("token", "")
        ledger.clear_retry(bucket, key, token)
        if token:  # no token: the failure came before any claim
            ledger.drop_claim(bucket, key, token)
        dropped = {"bucket": bucket, "key": key, "state": retry_state(doc).value, "reason": doc.get("reason", ""),
                   "why": why}
        event(log, "failure_dropped", logging.INFO, **dropped)
        report.add_dropped(dropped)

