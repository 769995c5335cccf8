"""Acting on a CI verdict: the one code path shared by the callback function and the sweep.

Only a job re-queried from CI is acted on, and only on the object version that was scanned.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from .actions import Actions, build_manifest, copy_record
from ..infra.cloud import CloudGateway, ObjectInfo
from ..infra.config import Settings
from ..errors import CloudError, NotFoundError, QuarantineError, StaleObjectError
from .jobs import VirusJob
from .ledger import JobEntry, Ledger
from .seal import Sealer, sealer_for
from ..infra.logs import event, get_logger
from .status import JOB_TAG, Action, Outcome, ScanStatus

log = get_logger("cosguard.domain.verdict")

TAGGING_GRACE_SECONDS = 120  # a fresh job whose tags the submitter is still writing


@dataclass
class VerdictResult:
    """What happened to one job; `http_status` is how a callback answers it."""

    job_id: str
    outcome: Outcome
    http_status: int = 200
    detail: str = ""
    bucket: str = ""
    key: str = ""
    location: str = ""
    job: Optional[VirusJob] = field(default=None, repr=False)

    def as_dict(self) -> Dict[str, Any]:
        answer = {"job_id": self.job_id, "outcome": self.outcome.value}
        if self.detail:
            answer["detail"] = self.detail
        if self.location:
            answer["location"] = self.location
        return answer


Notifier = Callable[[VerdictResult], None]


class VerdictService:
    def __init__(self, settings: Settings, gateway: CloudGateway, notifier: Optional[Notifier] = None,
                 clock=time.time, sealer: Optional[Sealer] = None):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer or sealer_for(settings)
        self.actions = Actions(settings, gateway, self.sealer)
        self.notifier = notifier
        self.clock = clock

    def ledger(self, bucket: str) -> Ledger:
        return Ledger(self.gateway, self.settings.state_bucket_for(bucket), self.settings.state_prefix,
                      self.sealer, clock=self.clock)

    def apply(self, bucket: str, job_id: str, entry: Optional[JobEntry] = None) -> VerdictResult:
        """Re-query `job_id` on `bucket` and act on the answer; never raises for cloud failures.

        `entry` is the job's ledger entry when the caller has just read it (the sweep).
        """
        try:
            result = self._apply(bucket, job_id, entry)
        except CloudError as exc:
            status = 503 if exc.retryable else 502
            result = VerdictResult(job_id, Outcome.ERROR, status, f"{exc.code or type(exc).__name__}: {exc}",
                                   bucket=bucket)
        level = logging.WARNING if result.http_status >= 500 or result.outcome is Outcome.STALE else logging.INFO
        event(log, "verdict " + result.outcome.value, level, bucket=result.bucket, key=result.key,
              job_id=job_id, status=result.outcome.value, reason=result.detail, location=result.location,
              viruses=result.job.virus_names if result.job else [])
        notable = result.outcome in (Outcome.QUARANTINED, Outcome.DELETED, Outcome.INFECTED) or (
            result.outcome is Outcome.ERROR and result.http_status not in (404, 409))
        if self.notifier and notable:
            self.notifier(result)
        return result

    def _apply(self, bucket: str, job_id: str, entry: Optional[JobEntry]) -> VerdictResult:
        try:
            job = self.gateway.query_virus_job(bucket, job_id)
        except NotFoundError:
            return VerdictResult(job_id, Outcome.ERROR, 404, "CI knows no such job on this bucket", bucket)
        if not job.finished:
            return VerdictResult(job_id, Outcome.PENDING, 200, f"job is {job.state}", bucket, job.object_key, job=job)
        ledger = self.ledger(bucket)
        entry = entry or ledger.get_job(job_id)
        if entry is None:
            return VerdictResult(job_id, Outcome.PENDING, 503, "job not yet recorded by the submitter",
                                 bucket, job.object_key, job=job)
        if entry.outcome:
            return VerdictResult(job_id, Outcome.ALREADY_DONE, 200, f"already {entry.outcome}", bucket,
                                 entry.key, job=job)
        if job.object_key and job.object_key != entry.key:
            return VerdictResult(job_id, Outcome.ERROR, 409, "CI's object differs from the recorded one",
                                 bucket, entry.key, job=job)
        if ledger.claim_action(job_id) is None:
            return VerdictResult(job_id, Outcome.ALREADY_DONE, 200, "another delivery handled it", bucket,
                                 entry.key, job=job)
        done = False
        try:
            result = self._act(ledger, entry, job)
            done = result.http_status < 500
            return result
        finally:
            ledger.release_action(job_id, done)

    def _act(self, ledger: Ledger, entry: JobEntry, job: VirusJob) -> VerdictResult:
        def result(outcome: Outcome, status: int = 200, detail: str = "", location: str = "") -> VerdictResult:
            return VerdictResult(job.job_id, outcome, status, detail, entry.bucket, entry.key, location, job)

        try:
            info = self.gateway.head(entry.bucket, entry.key, entry.version_id)
        except NotFoundError:
            ledger.close_job(entry, Outcome.GONE.value)
            return result(Outcome.GONE, detail="the scanned object no longer exists")
        tags = self.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}
        binding = self._binding(entry, info, tags)
        if binding == "later":
            return result(Outcome.PENDING, 503, "the submitter is still recording this job")
        if binding == "stale":
            ledger.close_job(entry, Outcome.STALE.value)
            return result(Outcome.STALE, detail="the object was overwritten after submission")
        try:
            outcome, location, manifest = self._execute(info, tags, job)
        except StaleObjectError as exc:
            ledger.close_job(entry, Outcome.STALE.value)
            return result(Outcome.STALE, detail=str(exc))
        except QuarantineError as exc:
            return result(Outcome.ERROR, 503, str(exc))
        ledger.close_job(entry, outcome.value, manifest)
        detail = f"{job.code}: {job.message}" if job.failed else ", ".join(job.virus_names)
        return result(outcome, detail=detail, location=location)

    def _binding(self, entry: JobEntry, info: ObjectInfo, tags: Dict[str, str]) -> str:
        """`bound`, `stale`, or `later`: is the object still the one this job scanned?"""
        tagged_job = tags.get(JOB_TAG)
        if tagged_job:
            return "bound" if tagged_job == entry.job_id else "stale"
        same = (info.version_id == entry.version_id) if entry.version_id else (info.etag == entry.etag)
        if not same:
            return "stale"
        if entry.tagged and self.clock() - entry.submitted_at < TAGGING_GRACE_SECONDS:
            return "later"  # same content, but the submitter has not written its tags yet
        return "bound"

    def _execute(self, info: ObjectInfo, tags: Dict[str, str], job: VirusJob):
        """Carry out the configured action; returns (outcome, location, manifest)."""
        settings = self.settings
        if job.infected:
            manifest = build_manifest(info, job, "infected")
            if settings.infected_action is Action.MOVE:
                copy = self.actions.quarantine(info, manifest)
                return Outcome.QUARANTINED, f"{copy.bucket}/{copy.key}", dict(manifest, quarantined=copy_record(copy))
            if settings.infected_action is Action.DELETE:
                self.actions.delete(info)
                return Outcome.DELETED, "", manifest
            self.actions.tag(info, ScanStatus.INFECTED, job.job_id, existing=tags)
            return Outcome.INFECTED, f"{info.bucket}/{info.key}", manifest
        if job.clean:
            if settings.clean_destination is not None:
                return Outcome.PROMOTED, self.actions.promote(info, job.job_id, tags), {}
            self.actions.tag(info, ScanStatus.CLEAN, job.job_id, existing=tags)
            return Outcome.CLEAN, f"{info.bucket}/{info.key}", {}
        reason = f"job {job.state}: {job.code or 'no code'} {job.message}".strip()
        manifest = build_manifest(info, job, reason)
        if settings.failed_action is Action.QUARANTINE:
            copy = self.actions.quarantine(info, manifest, status=ScanStatus.ERROR)
            return Outcome.ERROR, f"{copy.bucket}/{copy.key}", dict(manifest, quarantined=copy_record(copy))
        self.actions.tag(info, ScanStatus.ERROR, job.job_id, existing=tags)
        return Outcome.ERROR, f"{info.bucket}/{info.key}", manifest


__all__ = ["VerdictService", "VerdictResult"]
