"""CI's virus detection for the in-memory gateway (memory.py): jobs that finish only when a test
says so, so a test sees every state a job passes through (`Submitted`, then `Success` or `Failed`).

A job reads its object when it finishes, as CI does: the key's current version, or exactly the
version a pinned (`Url`) submission named. Its answer has the shape the SDK gives for CI's query
(spec: GET /virus/detect/<jobId>), parsed by the same `CiJob.from_response` as the real one.
"""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional
from urllib.parse import urlencode

from ..errors import CloudPermanentError, NotFoundError
from .ci_input import cos_host, object_form_carries, url_path
from .ci_jobs import CiJob
from .records import Record

if TYPE_CHECKING:
    from .memory import MemoryGateway

EICAR_MARK = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"


def eicar_detector(body: bytes) -> Optional[str]:
    """The virus name CI would report for `body`, or None: the EICAR test string only."""
    return "Eicar-Test-Signature" if EICAR_MARK in body else None


class MemoryJob(Record):
    job_id: str
    bucket: str
    key: str
    callback: Optional[str]
    version_id: Optional[str]      # the version a pinned job reads; None: whatever the key holds
    url: str = ""                  # a `Url` submission's URL (pinned, or a key XML cannot carry)
    state: str = "Submitted"
    suggestion: str = ""
    code: str = ""
    message: str = ""
    virus: str = ""

    def response(self) -> Dict[str, Any]:
        detail: Dict[str, Any] = {"JobId": self.job_id, "State": self.state, "Suggestion": self.suggestion,
                                  "Code": self.code, "Message": self.message,
                                  "CreationTime": "2026-01-01T08:00:00+0800"}
        if self.url:
            detail["Url"] = self.url
        else:
            detail["Object"] = self.key
        if self.virus:
            detail["DetectDetail"] = {"Result": [{"FileName": self.url or self.key, "VirusName": self.virus}]}
        return {"JobsDetail": detail}


class MemoryCi:
    """Submitted jobs, by id. `unbound` buckets refuse submissions (`BucketNotBound`, a failure no
    retry heals, as the local CI answers); `detect` names the virus in an object's bytes.

    `url_query_kept`: whether CI fetches a `Url` with its query string, the pre-signed signature
    (undocumented). Off by default, as the local CI's `url_query_dropped`: the worse answer for
    cosguard, where every `Url` job of a private bucket fails `ResourceDownloadFailed` (403)."""

    def __init__(self, gateway: "MemoryGateway", region: str,
                 detect: Callable[[bytes], Optional[str]] = eicar_detector):
        self.gateway = gateway
        self.region = region
        self.detect = detect
        self.unbound: set = set()
        self.url_query_kept = False
        self.jobs: Dict[str, MemoryJob] = {}
        self._lock = threading.Lock()

    def submit(self, bucket: str, key: str, callback: Optional[str], version_id: Optional[str],
               pinned: bool) -> str:
        if bucket in self.unbound:
            raise CloudPermanentError(f"SubmitVirusJob: {bucket} is not bound to CI", code="BucketNotBound",
                                      status=400, operation="SubmitVirusJob")
        url = ""
        if pinned or not object_form_carries(key):
            try:
                path = url_path(key)
            except UnicodeError as exc:
                raise CloudPermanentError(f"SubmitVirusJob: the key cannot be named in a URL ({exc})",
                                          code="UnsupportedKey", operation="SubmitVirusJob") from exc
            query = {"versionId": version_id} if version_id and version_id != "null" else {}
            url = f"https://{cos_host(bucket, self.region)}{path}?{urlencode(dict(query, sign='memory'))}"
        job = MemoryJob("av" + uuid.uuid4().hex[:24], bucket, key, callback,
                        version_id if pinned else None, url)
        with self._lock:
            self.jobs[job.job_id] = job
        return job.job_id

    def query(self, bucket: str, job_id: str) -> CiJob:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.bucket != bucket:
                raise NotFoundError(f"QueryVirusJob: no job {job_id}", code="NoSuchJob", status=404,
                                    operation="QueryVirusJob")
            return CiJob.from_response(job.response())

    # -- what a test makes CI do -----------------------------------------------------------------
    def finish(self, job_id: str) -> MemoryJob:
        """Scan the job's object as it is now and end the job: `Success` (block or normal), or
        `Failed` when the object is gone."""
        job = self.jobs[job_id]
        body = self.gateway.body(job.bucket, job.key, job.version_id)
        with self._lock:
            if job.url and not self.url_query_kept:
                job.state, job.code = "Failed", "ResourceDownloadFailed"
                job.message = "GET of the Url without its signature answered HTTP 403"
            elif body is None:
                job.state, job.code, job.message = "Failed", "NoSuchKey", "The object does not exist"
            else:
                job.virus = self.detect(body) or ""
                job.state, job.code, job.message = "Success", "Success", "Success"
                job.suggestion = "block" if job.virus else "normal"
        return job

    def finish_all(self) -> List[MemoryJob]:
        """Finish every job still running."""
        return [self.finish(j) for j in list(self.jobs) if self.jobs[j].state == "Submitted"]

    def fail(self, job_id: str, code: str = "InternalError", message: str = "The scan failed") -> MemoryJob:
        job = self.jobs[job_id]
        with self._lock:
            job.state, job.code, job.message = "Failed", code, message
        return job

    def forget(self, job_id: str) -> None:
        """CI no longer knows the job (its records expired)."""
        with self._lock:
            self.jobs.pop(job_id, None)

    def only(self) -> MemoryJob:
        """The one job submitted (a test's usual case); AssertionError otherwise."""
        assert len(self.jobs) == 1, f"{len(self.jobs)} jobs submitted"
        return next(iter(self.jobs.values()))


__all__ = ["EICAR_MARK", "MemoryCi", "MemoryJob", "eicar_detector"]
