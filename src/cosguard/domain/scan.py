"""Submitting objects to CI virus detection: one job per object version, never a silent pass.

`Scanner.scan_uploads` serves the upload trigger (plain upload references, uploads.py, built in
triggers/upload.py); `Scanner.scan_object` is the same path for one object, shared with backfill and
the sweep's resubmissions.
"""
from __future__ import annotations

import contextvars
import logging
import time
from typing import Dict, List, Optional, Sequence

from ..errors import CloudError, CloudTransientError, NotFoundError, SubmissionError
from ..infra import metrics
from ..infra.cloud import ObjectInfo
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.records import Factory, Record
from ..infra.retry import current_deadline
from .actions import Actions
from .history import NO_JOB, About
from .ledger import (
    CLAIM_LEASE_SECONDS,
    ClaimBusy,
    JobEntry,
    Ledger,
    OpenClaim,
    digest,
    version_token,
)
from .own_writes import OwnWrites
from .probe_mode import ProbeMode
from .removals import removal_after
from .removals import report as report_removal
from .rules import skip_reason, skip_reason_for_object, unscannable_reason
from .seal import Sealer, sealer_for
from .security import object_ref, upload_callback
from .setaside import set_aside
from .status import Action, Outcome, ScanStatus
from .tags import merge
from .uploads import Unreadable, Upload
from .versions import removed_by_another

log = get_logger("cosguard.domain.scan")


class ScanResult(Record):
    """How one object's submission ended; one JSON log line each."""

    bucket: str
    key: str
    outcome: Outcome
    reason: str = ""
    job_id: Optional[str] = None
    version: Optional[str] = None
    retryable: bool = False
    latency_ms: int = 0
    also: List["ScanResult"] = Factory(list)  # other candidate keys of the same record


class ScanSummary(Record):
    results: List[ScanResult] = Factory(list)

    def counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for result in self.results:
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        return counts

    def failures(self) -> List[ScanResult]:
        """Records that may heal on a retry of the invocation."""
        return [r for r in self.results if r.retryable]

    def as_dict(self) -> Dict[str, object]:
        return {"records": len(self.results), "counts": self.counts(),
                "jobs": {r.key: r.job_id for r in self.results if r.job_id}}


class Scanner:
    def __init__(self, settings: Settings, gateway: Gateway, clock=time.time, notifier=None,
                 sealer: Optional[Sealer] = None):
        self.settings = settings
        self.gateway = gateway
        self.notifier = notifier
        self.sealer = sealer or sealer_for(settings)
        self.actions = Actions(settings, gateway, self.sealer)
        self.clock = clock
        self.probe = ProbeMode(settings, gateway, self.sealer, clock)  # off unless a sealed marker says so
        self.own_writes = OwnWrites(settings, gateway, self.sealer, self.actions, lambda bucket: self.ledger(bucket))

    def ledger(self, bucket: str) -> Ledger:
        return Ledger(self.gateway, self.settings.state_bucket_for(bucket), self.settings.state_prefix,
                      self.sealer, clock=self.clock)

    def scan_uploads(self, uploads: Sequence[Upload], unreadable: Sequence[Unreadable] = ()) -> ScanSummary:
        """Every upload of one event, through a bounded pool, and the event's records that could not
        be read as errors; raise SubmissionError once, after all of them, if any record failed in a
        way a retry of the invocation may heal."""
        jobs = [(u.bucket, list(u.key_candidates), u.version_id, None, u.size, u.written_at, u.listed)
                for u in uploads]
        summary = ScanSummary([one for result in self._run_all(jobs) for one in [result] + result.also])
        for index, problem in unreadable:
            event(log, "record_rejected", logging.ERROR, record=index, outcome=Outcome.ERROR.value,
                  reason=problem)
            metrics.count(Outcome.ERROR.value)
            summary.results.append(ScanResult("", f"Records[{index}]", Outcome.ERROR, reason=problem))
        failures = summary.failures()
        if failures:
            raise SubmissionError([f"{r.bucket}/{r.key}: {r.reason}" for r in failures])
        return summary

    def _run_all(self, jobs: Sequence[tuple]) -> List[ScanResult]:
        """Records of one key run one after another (in event order), different keys in parallel:
        two records of one key in one event find the same upload, and the second must see the
        first's claim settled (a duplicate), not in flight (busy, which would fail the invocation)."""
        if len(jobs) == 1:
            return [self.scan_object(*jobs[0])]
        by_key: Dict[tuple, List[int]] = {}
        for index, job in enumerate(jobs):
            by_key.setdefault((job[0], job[1][0]), []).append(index)
        results: List[Optional[ScanResult]] = [None] * len(jobs)

        def run_key(indexes: List[int]) -> None:
            for index in indexes:
                results[index] = self.scan_object(*jobs[index])
        from concurrent.futures import ThreadPoolExecutor  # events of one record (the usual) never load it
        workers = min(self.settings.max_workers, len(by_key))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cosguard-scan") as pool:
            futures = [pool.submit(contextvars.copy_context().run, run_key, indexes) for indexes in by_key.values()]
            for future in futures:
                future.result()
        return [r for r in results if r is not None]

    def scan_object(self, bucket: str, key_candidates: Sequence[str], version_id: Optional[str] = None,
                    info: Optional[ObjectInfo] = None, size: Optional[int] = None,
                    written_at: Optional[int] = None, listed: Optional[str] = None) -> ScanResult:
        """Submit one object, or record why not. Never raises for the object's own problems.

        `size` is the event's: it tells folder markers apart without a request and picks the
        candidate key (percent-encoded or not) that the event is about. `written_at` is the
        event's time: a write gone (or replaced) since is checked against cosguard's own removals.
        `listed` (a backfill's): the write's identity as a listing showed it; when the ledger holds
        that write as handled, one read answers `duplicate` without a HEAD. Never a verdict: a write
        the listing did not show (the object changed since) takes the full path."""
        started = time.monotonic()
        key = key_candidates[0]
        try:
            if listed and info is None and self._listed_handled(bucket, key, version_id, listed):
                result = ScanResult(bucket, key, Outcome.DUPLICATE, reason="already handled (as listed)",
                                    version=listed)
            elif info is None and len(key_candidates) > 1:
                return self._scan_candidates(bucket, key_candidates, version_id, size, written_at)
            else:
                result = self._scan(bucket, key_candidates, version_id, info, size, written_at)
        except CloudError as exc:
            result = ScanResult(bucket, key, Outcome.ERROR, reason=f"{exc.code or type(exc).__name__}: {exc}",
                                retryable=exc.retryable)
        result.latency_ms = int((time.monotonic() - started) * 1000)
        if self.notifier is not None and result.outcome in (Outcome.UNSCANNABLE, Outcome.ERROR):
            from ..infra.notify import message as notify_message  # loaded with the notifier
            self.notifier.send(notify_message(result.outcome.value, result.bucket, result.key,
                                              outcome=result.outcome.value, detail=result.reason))
        level = logging.WARNING if result.outcome is Outcome.ERROR or result.retryable else logging.INFO
        event(log, "record", level, outcome=result.outcome.value, bucket=result.bucket, key=result.key,
              version=result.version, job_id=result.job_id,
              reason=result.reason, latency_ms=result.latency_ms)
        metrics.count(result.outcome.value)
        return result

    def _scan_candidates(self, bucket: str, candidates: Sequence[str], version_id: Optional[str],
                         size: Optional[int], written_at: Optional[int] = None) -> ScanResult:
        """COS's key encoding in events is unconfirmed: never let one object stand in for another.

        Every candidate spelling is looked up (the one `cosguard probe` saw COS send first, and
        the others only when it does not match); the one whose size matches the event is scanned,
        and when that does not single one out, every candidate that exists is scanned."""
        learned = self.probe.learned_key_encoding(bucket, candidates)   # the last `cosguard probe`'s answer
        if learned == "percent-encoded":
            candidates = list(reversed(candidates))     # the decoded spelling is COS's key
        try:
            found = []
            for candidate in candidates:
                info = self._head(bucket, candidate, version_id)
                found += [info] if info is not None else []
                if learned and info is not None and info.size == size:
                    break   # the spelling the probe saw, with the event's size: the others need no HEAD
        except CloudError as exc:
            for candidate in candidates:  # the sweep finds which spelling exists (a 404 clears the other)
                self._record_unfinished(bucket, candidate, "", exc)
            raise
        matching = [info for info in found if size is not None and info.size == size]
        chosen = matching if len(matching) == 1 else found
        if not chosen:
            gone = self._gone(bucket, candidates, version_id, written_at)
            metrics.count(gone.outcome.value)
            return gone
        results = [self.scan_object(bucket, [info.key], version_id, info=info, size=size, written_at=written_at)
                   for info in chosen]
        results[0].also = results[1:]
        return results[0]

    def _listed_handled(self, bucket: str, key: str, version_id: Optional[str], listed: str) -> bool:
        if not self.settings.serves(bucket) or skip_reason(self.settings, bucket, key):
            return False   # the full path answers these, as for any record
        return self.ledger(bucket).handled_upload(bucket, key, version_id or listed)

    def _head(self, bucket: str, key: str, version_id: Optional[str]) -> Optional[ObjectInfo]:
        try:
            return self.gateway.head(bucket, key, version_id)
        except NotFoundError:
            return None

    def _scan(self, bucket: str, key_candidates: Sequence[str], version_id: Optional[str],
              info: Optional[ObjectInfo], size: Optional[int] = None, written_at: Optional[int] = None) -> ScanResult:
        key = key_candidates[0] if info is None else info.key
        if not self.settings.serves(bucket):
            return ScanResult(bucket, key, Outcome.ERROR, reason="bucket is not in COSGUARD_BUCKETS")
        reason = skip_reason(self.settings, bucket, key)
        if reason is None and key.endswith("/") and size == 0:
            reason = "folder marker"  # only a zero-byte `/` key is a folder; one with content is scanned
        if reason:
            return ScanResult(bucket, key, Outcome.SKIPPED, reason=reason)
        if info is None:
            try:
                info = self._head(bucket, key, version_id)
            except CloudError as exc:
                self._record_unfinished(bucket, key, "", exc)
                raise
            if info is None:
                return self._gone(bucket, [key], version_id, written_at)
        if written_at is not None and not info.version_id and info.last_modified > written_at + 1:
            # a newer write replaced the event's: one listing, never for an upload's own event (whose
            # Last-Modified is the event's second, give or take COS's one-second resolution)
            self._check_lost(bucket, key, written_at, until=info.last_modified)
        version = version_token(info)
        ledger = self.ledger(bucket)
        try:
            reason = self.own_writes.recognise(info) or skip_reason_for_object(self.settings, info, self.sealer)
            if reason:
                return ScanResult(bucket, info.key, Outcome.SKIPPED, reason=reason, version=version)
            reason = unscannable_reason(self.settings, info)
            if reason:
                return self._unscannable(info, reason)
            lease = min(CLAIM_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
            state, entry = ledger.claim(info, lease=lease)
        except ClaimBusy as exc:  # its holder may be alive: fail retryably, SCF (or the sweep) comes back
            return ScanResult(bucket, info.key, Outcome.PENDING, reason=str(exc), version=version, retryable=True)
        except CloudError as exc:
            self._record_unfinished(bucket, info.key, version, exc)
            raise
        if state != "claimed" or entry is None:
            return ScanResult(bucket, info.key, Outcome.DUPLICATE, reason="a job was already submitted",
                              version=version)
        return self._submit(ledger, info, entry)

    def _gone(self, bucket: str, keys: Sequence[str], version_id: Optional[str], written_at: Optional[int]
              ) -> ScanResult:
        """The event's object no longer exists (under any spelling of its key): reported when
        cosguard's own DELETE may have taken it."""
        detail = None
        if version_id is None and written_at is not None:
            detail = next(filter(None, (self._check_lost(bucket, key, written_at) for key in keys)), None)
        elif written_at is not None and self.settings.serves(bucket):   # that version was deleted by its id
            for key in keys:
                removed_by_another(self, self.ledger(bucket), bucket, key, version_id, written_at)
        return ScanResult(bucket, keys[0], Outcome.GONE, reason=detail or "object no longer exists")

    def recheck(self, bucket: str, key: str, since: float) -> None:
        """Rescan the key's clean verdicts given since `since` (rescanning.recheck_clean_since)."""
        from .rescanning import recheck_clean_since
        recheck_clean_since(self, bucket, key, since)

    def _check_lost(self, bucket: str, key: str, written_at: int, until: Optional[int] = None) -> Optional[str]:
        ledger = self.ledger(bucket)
        claim = removal_after(ledger, bucket, key, written_at, until)
        return None if claim is None else report_removal(self.notifier, ledger, bucket, key, written_at, claim)

    def resume(self, ledger: Ledger, info: ObjectInfo, stale: OpenClaim) -> ScanResult:
        """Submit an upload whose claim's holder died (the sweep): the same path as a first
        submission, once the claim is taken over (another taker may have been first: then pending)."""
        lease = min(CLAIM_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
        entry = ledger.take_over(stale, lease)
        if entry is None:
            return ScanResult(info.bucket, info.key, Outcome.PENDING, reason="another taker resubmits it",
                              version=stale.entry.identity)
        result = self._submit(ledger, info, entry)
        event(log, "record", logging.WARNING if result.outcome is Outcome.ERROR else logging.INFO,
              outcome=result.outcome.value, bucket=info.bucket, key=info.key, job_id=result.job_id,
              reason=result.reason or "resubmitted: the claim's holder died")
        metrics.count(result.outcome.value)
        return result

    def _submit(self, ledger: Ledger, info: ObjectInfo, entry: JobEntry) -> ScanResult:
        """Submit, tag pending (overwriting any cosguard tag an uploader set), record the job.

        The job is recorded only after the tags are written, so a verdict (which waits for the
        record) never races the submitter's own tagging: no grace period is needed. A failure that
        can still run code releases the claim and leaves a retry entry for the sweep; a process
        that dies leaves the claim, whose lease ends with its deadline (the sweep takes it over)."""
        bucket, version = info.bucket, entry.identity
        try:
            # a rescan (rescans.py) leaves the object's `clean` tags as they are while it runs
            tags = self.gateway.get_tags(bucket, info.key, info.version_id) if info.tag_count and \
                not entry.rescan_of else {}
            entry.tagged = self._fits(tags)
            entry.callback_ref = object_ref(bucket, info.key, version)   # a rescan's: the same upload
            entry.job_id = self.gateway.submit_virus_job(bucket, info.key, self._callback(bucket, entry.callback_ref, info.key),
                                                         info.version_id)
            if not entry.rescan_of:
                self.actions.tag(info, ScanStatus.PENDING, entry.job_id, existing=tags)
        except CloudError as exc:
            if entry.rescan_of:   # the clean verdict stands; the write stays due for the next rescan
                ledger._forget(ledger._key("jobs", entry.name))
                return ScanResult(bucket, info.key, Outcome.ERROR, reason=f"rescan not submitted: {exc}",
                                  version=version, retryable=exc.retryable)
            return self._submission_failed(ledger, info, entry, exc)
        entry.submitted_at = self.clock()
        try:
            ledger.open_job(entry)
        except CloudError as exc:
            # A job nobody recorded would never be acted on: release the claim so the retry of this
            # invocation submits again (an orphan job's callback finds no ledger entry and is ignored).
            try:
                ledger.record_retry(bucket, info.key, version, f"job {entry.job_id} not recorded: {exc}",
                                    retryable=True)
                ledger.release_claim(entry)
            except CloudError:
                pass  # the claim's lease runs out with this invocation's deadline; the sweep takes it over
            raise
        if entry.previous_state:  # a failed holder, or one that died, may have left a retry entry
            ledger.clear_retry(bucket, info.key, version)
        return ScanResult(bucket, info.key, Outcome.RESCANNED if entry.rescan_of else Outcome.SUBMITTED,
                          job_id=entry.job_id, version=version)

    @staticmethod
    def _fits(tags: Dict[str, str]) -> bool:
        return merge(tags, ScanStatus.PENDING, "job")[1]

    def _callback(self, bucket: str, ref: str, key: str) -> Optional[str]:
        """This object's own callback URL, bound to its upload and expiring (security.py); marked
        as a probe job's for `cosguard probe`'s scratch objects (probe_mode.py)."""
        url = upload_callback(self.settings.callback_url, self.sealer, bucket, ref, self.clock())
        return self.probe.callback_url(url, bucket, key, ref) if url else url

    def _record_unfinished(self, bucket: str, key: str, version: str, exc: CloudError) -> None:
        """A failure before the upload was claimed leaves a retry entry, so it is known to more than
        a log line: SCF's retry of the invocation may never come (a permanent error, or its retries
        spent). The entry is retryable for the sweep, which tries again (a HEAD when nothing
        changed) and reports it while it fails; an empty `version` means the HEAD itself failed, and
        the sweep scans whatever version is current. When the entry cannot be written either, the
        failure becomes retryable: the invocation fails, and SCF's retries and dead-letter queue are
        the record."""
        reason = f"not claimed: {exc.code or type(exc).__name__}: {exc}"
        try:
            self.ledger(bucket).record_retry(bucket, key, version, reason, retryable=True)
        except CloudError as record_exc:
            raise CloudTransientError(f"{exc}; and its retry entry was not written: {record_exc}",
                                      code=exc.code, status=exc.status, request_id=exc.request_id,
                                      operation=exc.operation) from exc

    def _submission_failed(self, ledger: Ledger, info: ObjectInfo, entry: JobEntry, exc: CloudError) -> ScanResult:
        """Record the failure where the sweep finds it, release the claim, set the object aside:
        tagged `error`, or, for a submission CI refused for good with COSGUARD_SUBMIT_FAILED_ACTION
        =quarantine, moved to quarantine (then nothing is left to retry or report)."""
        reason = f"{exc.code or type(exc).__name__}: {exc}"
        ledger.record_retry(info.bucket, info.key, entry.identity, reason, exc.retryable)
        ledger.release_claim(entry)
        action = Action.TAG if exc.retryable else self.settings.submit_failed_action
        try:
            aside = set_aside(self.actions, info, reason, action, ScanStatus.ERROR)
        except CloudError as tag_exc:
            return ScanResult(info.bucket, info.key, Outcome.ERROR, version=entry.identity, retryable=exc.retryable,
                              reason=f"{reason} (and tagging failed: {tag_exc})")
        if aside.moved or aside.outcome is Outcome.STALE:
            # nothing left to retry: the claim is closed (a quarantine recorded as cosguard's removal)
            ledger.close_job(entry, aside.outcome.value, aside.manifest, handled=aside.moved)
            ledger.clear_retry(info.bucket, info.key, entry.identity)
        elif aside.retryable:  # the quarantine may work next time: the sweep comes back
            ledger.record_retry(info.bucket, info.key, entry.identity, f"{reason}; {aside.detail}", True)
        return ScanResult(info.bucket, info.key, aside.outcome, reason=aside.detail, version=entry.identity,
                          retryable=exc.retryable or aside.retryable)

    def _unscannable(self, info: ObjectInfo, reason: str) -> ScanResult:
        """Tag it unscannable, and quarantine it too when so configured."""
        aside = set_aside(self.actions, info, reason, self.settings.unscannable_action, ScanStatus.UNSCANNABLE)
        if aside.outcome is Outcome.UNSCANNABLE:   # no CI job: indexed under the upload's name (history.py)
            self.ledger(info.bucket).history.record(
                NO_JOB + digest(info.bucket, info.key, version_token(info))[:32], aside.outcome.value, self.clock(),
                aside.manifest, about=About(info.bucket, float(info.last_modified or 0), 0.0))
        return ScanResult(info.bucket, info.key, aside.outcome, reason=aside.detail, version=version_token(info),
                          retryable=aside.retryable)
