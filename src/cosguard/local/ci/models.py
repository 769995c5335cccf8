"""Local CI's state, with no HTTP in it (moto's `models.py`): jobs and how they progress.

A job is `Submitted` when created and `Auditing` once a worker picks it up; `scan_delay`
seconds later CI reads the object and scans it, and the job ends `Success` or `Failed`. The
object is read at that moment, as in the cloud: a change made meanwhile is what gets scanned.
A stuck job (see Faults.stuck_jobs) stays `Auditing`.

Job-level failures (`State=Failed`, with Code/Message) are listed in sources.py, plus
`ScanLimitExceeded` (a bound of the engine's ScanLimits was reached and nothing was found
before it; a finding before the bound makes the job `Success`/`block`), `ArchiveUnreadable` (a
container, or a member of one, could not be opened: corrupt, truncated or encrypted; never `normal`)
and `InternalError`.
"""
from __future__ import annotations

import dataclasses
import enum
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ..store import ObjectStore
from .engine import Detection, Engine, ScanReport
from .faults import Faults
from .scheduler import Scheduler
from .sources import MAX_FILE_SIZE, JobFailure, UrlFetcher, open_object, without_query

log = logging.getLogger(__name__.replace("cosguard.local", "cosguard_local", 1))

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))  # CI's CreationTime is +0800


class StrEnum(str, enum.Enum):
    """CI's words as they go on the wire (`enum.StrEnum` is 3.11+)."""

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class JobState(StrEnum):
    SUBMITTED = "Submitted"
    AUDITING = "Auditing"
    SUCCESS = "Success"
    FAILED = "Failed"


class Suggestion(StrEnum):
    BLOCK = "block"
    NORMAL = "normal"


class CiError(Exception):
    """A request the service refuses; the wire layer renders it as CI's XML error."""

    status = 400
    code = "InvalidArgument"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"{self.code}: {message}")


class InvalidArgument(CiError):
    """A request whose parameters CI does not accept."""


class NoSuchJob(CiError):
    """No job with that id on that bucket (a job is only visible through its own bucket)."""

    status = 404
    code = "NoSuchJob"


@dataclasses.dataclass
class Job:
    """One virus detection job. `Backend` hands out copies, so a caller never sees it change."""

    job_id: str
    bucket: str
    object_key: Optional[str]
    url: Optional[str]
    callback: Optional[str]
    creation_time: datetime
    state: JobState = JobState.SUBMITTED
    code: str = ""
    message: str = ""
    suggestion: str = ""
    detections: Tuple[Detection, ...] = ()
    report: Optional[ScanReport] = None
    stuck: bool = False
    overrides: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in (JobState.SUCCESS, JobState.FAILED)

    @property
    def creation_time_text(self) -> str:
        """`2021-07-07T12:12:12+0800`, as in CI's samples."""
        return self.creation_time.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%dT%H:%M:%S%z")

    def copy(self) -> "Job":
        return dataclasses.replace(self, overrides=dict(self.overrides))


@dataclasses.dataclass(frozen=True)
class _Outcome:
    state: JobState
    code: str = ""
    message: str = ""
    suggestion: str = ""
    detections: Tuple[Detection, ...] = ()
    report: Optional[ScanReport] = None


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class CiBackend:
    """Jobs by id; `submit_job` / `describe_job` as the two APIs, `reset()` for a clean slate."""

    def __init__(self, store: ObjectStore, engine: Optional[Engine] = None, *,
                 scan_delay: float = 0.2, faults: Optional[Faults] = None,
                 notifier: Optional[Callable[[Job], None]] = None,
                 scheduler: Optional[Scheduler] = None, rng: Optional[random.Random] = None,
                 url_fetcher: Optional[UrlFetcher] = None, max_file_size: int = MAX_FILE_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.engine = engine or Engine()
        self.scan_delay = scan_delay
        self.faults = faults or Faults()
        self.notifier = notifier
        self.url_fetcher = url_fetcher or UrlFetcher(max_size=max_file_size)
        self.max_file_size = max_file_size
        self._rng = rng or random.Random()
        self._clock = clock
        self._owns_scheduler = scheduler is None
        self._scheduler = scheduler or Scheduler(name="ci-scan")
        self._cond = threading.Condition()
        self._jobs: Dict[str, Job] = {}

    # -- the two APIs -------------------------------------------------------------------------
    def submit_job(self, bucket: str, *, object_key: Optional[str] = None, url: Optional[str] = None,
                   detect_type: Optional[str] = "Virus", callback: Optional[str] = None) -> Job:
        """Create a job and queue its scan; raises InvalidArgument for what CI refuses."""
        if bool(object_key) == bool(url):
            raise InvalidArgument("Input must contain exactly one of Object and Url")
        if url and not _is_http_url(url):
            raise InvalidArgument("Input.Url must be an http:// or https:// address")
        if detect_type != "Virus":
            raise InvalidArgument(f"Conf.DetectType must be Virus, not {detect_type!r}")
        if callback is not None and not _is_http_url(callback):
            raise InvalidArgument("Conf.Callback must be an http:// or https:// address")
        with self._cond:
            job = Job(job_id=self._new_id(), bucket=bucket, object_key=object_key or None,
                      url=url or None, callback=callback or None,
                      creation_time=datetime.fromtimestamp(self._clock(), CHINA_STANDARD_TIME))
            self._jobs[job.job_id] = job
            snapshot = job.copy()
        self._scheduler.call_soon(self._run, job.job_id)
        return snapshot

    def describe_job(self, bucket: str, job_id: str) -> Job:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.bucket != bucket:
                raise NoSuchJob(f"The job {job_id} does not exist")
            return self._answered(job)

    # -- inspection for tests and the demo --------------------------------------------------
    @property
    def jobs(self) -> Dict[str, Job]:
        with self._cond:
            return {job_id: job.copy() for job_id, job in self._jobs.items()}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every job has finished (stuck jobs count as settled); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: all(job.finished or job.stuck for job in self._jobs.values()), timeout)

    def wait_for(self, job_id: str, timeout: float = 10.0) -> Job:
        """The job once finished; raises TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: job_id not in self._jobs or self._jobs[job_id].finished,
                                       timeout):
                raise TimeoutError(f"job {job_id} still {self._jobs[job_id].state} after {timeout} s")
            if job_id not in self._jobs:
                raise NoSuchJob(f"The job {job_id} does not exist")
            return self._jobs[job_id].copy()

    def release(self, *names: str) -> List[str]:
        """Let stuck jobs go (by object key, Url or job id): each reads its object now, so a test
        lands a write before or after CI's read. Returns the released job ids."""
        released = []
        with self._cond:
            stuck = self.faults.stuck_jobs
            if not isinstance(stuck, bool):
                self.faults.stuck_jobs = frozenset(n for n in stuck if n not in names)
            for job in self._jobs.values():
                if job.stuck and any(name in (job.object_key, job.url, job.job_id) for name in names):
                    job.stuck = False
                    released.append(job.job_id)
        for job_id in released:
            self._scheduler.call_soon(self._scan_and_finish, job_id)
        return released

    def reset(self) -> None:
        """Forget every job (scans in flight finish into the void)."""
        with self._cond:
            self._jobs.clear()
            self._cond.notify_all()

    def shutdown(self) -> None:
        if self._owns_scheduler:
            self._scheduler.shutdown()

    # -- progression --------------------------------------------------------------------------
    def _new_id(self) -> str:
        while True:
            job_id = "ss%032x" % self._rng.getrandbits(128)
            if job_id not in self._jobs:
                return job_id

    def _answered(self, job: Job) -> Job:
        """A copy of `job` as CI answers it: with Faults.answer_overrides once it has ended."""
        answer = job.copy()
        if answer.finished:
            answer.overrides = self.faults.overrides_for(job.object_key, job.url, job.job_id)
        return answer

    def _run(self, job_id: str) -> None:
        """Picked up by a worker: Auditing now, the scan after `scan_delay`."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return
            job.state = JobState.AUDITING
            job.stuck = self.faults.is_stuck(job.object_key, job.url, job.job_id)
            self._cond.notify_all()
            if job.stuck:
                return
        self._scheduler.call_later(self.scan_delay, self._scan_and_finish, job_id)

    def _scan_and_finish(self, job_id: str) -> None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return
            snapshot = job.copy()
        self._finish(job_id, self._scan(snapshot))

    def _scan(self, job: Job) -> _Outcome:
        try:
            if job.object_key is not None:
                source = open_object(self.store, job.bucket, job.object_key, self.max_file_size)
            else:
                url = job.url or ""
                source = self.url_fetcher.open(without_query(url) if self.faults.url_query_dropped else url)
            with source as stream:
                report = self.engine.scan(stream, job.object_key or job.url or "")
        except JobFailure as failure:
            return _Outcome(JobState.FAILED, failure.code, failure.message)
        except Exception as exc:
            log.exception("local CI scan of job %s failed", job.job_id)
            return _Outcome(JobState.FAILED, "InternalError", f"The scan failed: {exc}")
        detections = tuple(report.detections)
        if detections:
            return _Outcome(JobState.SUCCESS, "Success", "Success", Suggestion.BLOCK.value,
                            detections, report)
        if report.limit_exceeded:
            return _Outcome(JobState.FAILED, "ScanLimitExceeded",
                            f"The file could not be scanned completely: {report.limit_exceeded}",
                            report=report)
        if report.unreadable:
            return _Outcome(JobState.FAILED, "ArchiveUnreadable",
                            "The file could not be scanned completely: cannot open "
                            + ", ".join(report.unreadable[:5]), report=report)
        return _Outcome(JobState.SUCCESS, "Success", "Success", Suggestion.NORMAL.value, (), report)

    def _finish(self, job_id: str, outcome: _Outcome) -> None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                return
            for name in ("state", "code", "message", "suggestion", "detections", "report"):
                setattr(job, name, getattr(outcome, name))
            self._cond.notify_all()
            snapshot = self._answered(job)
        if snapshot.callback and self.notifier is not None:
            self.notifier(snapshot)


__all__: List[str] = ["CiBackend", "CiError", "InvalidArgument", "Job", "JobState", "NoSuchJob",
                      "Suggestion"]
