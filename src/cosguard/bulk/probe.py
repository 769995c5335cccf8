"""`cosguard probe`: observe, once, what Tencent leaves undocumented, on the deployment itself.

Everything it writes is a scratch object under one prefix per run, `<intake prefix>cosguard-probe/
<run>/` in an intake bucket and `<state prefix>probe/<run>/` in the state bucket, plus the sealed
probe-mode marker (domain/probe_mode.py) that makes the functions record the trigger events and
CI's callback requests of those scratch objects. It never reads or writes any other object, and it
removes what it wrote (every version, on a versioned bucket) before it returns, whatever happened.
What each observation means for cosguard is probe_answers.py's.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..domain.probe_mode import PROBE_SEGMENT, marker_key, records_prefix
from ..domain.seal import Sealer
from ..errors import CloudError, NotFoundError, PreconditionFailed
from ..infra.ci_binding import ci_status
from ..infra.clock import http_epoch
from ..infra.cloud import translate_sdk_errors
from .probe_answers import Observations

CLEAN_BODY = b"cosguard probe: a clean scratch text file\n"
ODD_KEY = "key enc+\u00fc %.txt"       # differs when percent-encoded: space, plus, non-ASCII, percent
RETRY_KEY = "retry.txt"
CLEAN_KEY = "clean.txt"
APPEND_KEY = "append.txt"
VID_KEY = "vid.txt"
MARKER_MARGIN = 600        # the marker outlives the run by this much, then switches itself off
WRONG_ETAG = '"00000000000000000000000000000000"'
ENDED_STATES = ("Success", "Failed", "Cancelled", "Canceled", "Error")

# (permission, what it is for, questions skipped without it): beyond the deployment's own role
NEEDS = (
    ("cos:PutObject, cos:DeleteObject, cos:GetBucket (intake bucket, probe prefix only)",
     "scratch uploads and their removal", "all"),
    ("cos:AppendObject (intake bucket)", "an appendable scratch object", "event.append, cos.append_etag, "
                                                                         "cos.append_last_modified"),
    ("cos:InitiateMultipartUpload, cos:UploadPart, cos:CompleteMultipartUpload, cos:AbortMultipartUpload "
     "(state bucket)", "a multipart scratch object", "cos.multipart_last_modified"),
    ("cos:PutObject, cos:GetObject, cos:DeleteObject, cos:GetBucket (state bucket, <state prefix>probe/)",
     "the probe-mode marker, the functions' records, scratch objects", "all"),
    ("cos:GetBucketVersioning (intake buckets)", "finding a versioned intake bucket", "event.vid"),
    ("ci:CreateAuditingVirusJob, ci:DescribeAuditingVirusJob", "a job CI cannot complete",
     "ci.job_failure, ci.job_retention"),
    ("ci:DescribeCIBuckets", "GET / on the CI host (CIStatus, doc 460/97481)", "ci.status"),
)


@dataclass
class ProbeOptions:
    timeout: float = 180.0
    bucket: str = ""                 # the intake bucket for scratch objects (default: the first)
    prefix: Optional[str] = None     # inside the trigger's filter (default: the first include prefix)
    unbound_bucket: str = ""         # a bucket not bound to CI, to observe CI's error
    retry_wait: float = 60.0         # how long to wait for CI to send a failed callback again
    pause: Callable[[float], None] = time.sleep   # the gap that makes Last-Modified differences visible
    quiet: Optional[Callable[[], bool]] = None    # tests: the emulator's own "nothing in flight"
    poll: float = 0.5


@dataclass
class ProbeRun:
    run: str
    bucket: str
    state_bucket: str
    prefix: str
    records: str
    written: List[tuple] = field(default_factory=list)   # (bucket, key) scratch objects


class Probe:
    def __init__(self, settings: Any, gateway: Any, sealer: Sealer, options: ProbeOptions,
                 clock: Callable[[], float] = time.time):
        self.settings, self.gateway, self.sealer, self.options, self.clock = settings, gateway, sealer, options, clock
        self.started = clock()
        bucket = options.bucket or settings.buckets[0]
        run = time.strftime("p%Y%m%d%H%M%S", time.gmtime(self.started)) + "-" + secrets.token_hex(3)
        intake = options.prefix if options.prefix is not None else (
            settings.include_prefixes[0] if settings.include_prefixes else "")
        intake = intake if not intake or intake.endswith("/") else intake + "/"
        self.run = ProbeRun(run, bucket, settings.state_bucket_for(bucket), f"{intake}{PROBE_SEGMENT}{run}/",
                            records_prefix(settings.state_prefix, run))
        self.obs = Observations(settings=settings, bucket=bucket, unbound_bucket=options.unbound_bucket)

    # -- small helpers ---------------------------------------------------------------------------
    def left(self) -> float:
        return self.options.timeout - (self.clock() - self.started)

    def _sdk(self, operation: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        with translate_sdk_errors(operation):
            return fn(**kwargs)

    def _head(self, bucket: str, key: str) -> Dict[str, str]:
        headers = self._sdk("HeadObject", self.gateway.cos.head_object, Bucket=bucket, Key=key)
        return {k.lower(): v for k, v in headers.items()}

    def _put(self, bucket: str, key: str, body: bytes = CLEAN_BODY, **kwargs: Any) -> Dict[str, str]:
        self.run.written.append((bucket, key))
        headers = self._sdk("PutObject", self.gateway.cos.put_object, Bucket=bucket, Key=key, Body=body, **kwargs)
        return {k.lower(): v for k, v in (headers or {}).items()}

    def _skip(self, qid: str, exc: BaseException) -> None:
        self.obs.skipped[qid] = f"{type(exc).__name__}: {exc}"

    # -- the run ---------------------------------------------------------------------------------
    def run_all(self) -> Observations:
        try:
            self._marker()
            self._uploads()
            self._cos_questions()
            self._ci_questions()
            self._collect()
            self._retention()
            self._keep_answers()
        finally:
            self._cleanup()
        self.obs.elapsed = round(self.clock() - self.started, 1)
        return self.obs

    def _marker(self) -> None:
        key = marker_key(self.settings.state_prefix)
        body = {"format": 1, "run": self.run.run, "prefix": self.run.prefix, "buckets": list(self.settings.buckets),
                "expires": int(self.started + self.options.timeout + MARKER_MARGIN), "fail_once": [RETRY_KEY]}
        for state in sorted({self.settings.state_bucket_for(b) for b in self.settings.buckets}):
            self.gateway.put_json(state, key, self.sealer.seal(state, key, body))
            self.run.written.append((state, key))

    def _uploads(self) -> None:
        bucket, prefix = self.run.bucket, self.run.prefix
        for name in (CLEAN_KEY, RETRY_KEY, ODD_KEY):
            self._put(bucket, prefix + name)
        self.obs.uploaded = [prefix + n for n in (CLEAN_KEY, RETRY_KEY, ODD_KEY)]
        self._append(bucket, prefix + APPEND_KEY)
        self._versioned()

    def _append(self, bucket: str, key: str) -> None:
        try:
            self.run.written.append((bucket, key))
            self._sdk("AppendObject", self.gateway.cos.append_object, Bucket=bucket, Key=key, Position=0,
                      Data=CLEAN_BODY)
            first = self._head(bucket, key)
            self.options.pause(2.0)
            self._sdk("AppendObject", self.gateway.cos.append_object, Bucket=bucket, Key=key,
                      Position=len(CLEAN_BODY), Data=CLEAN_BODY)
            second = self._head(bucket, key)
            self.obs.append_heads = [(first.get("etag", ""), http_epoch(first.get("last-modified"))),
                                     (second.get("etag", ""), http_epoch(second.get("last-modified")))]
        except CloudError as exc:
            for qid in ("event.append", "cos.append_etag", "cos.append_last_modified"):
                self._skip(qid, exc)

    def _versioned(self) -> None:
        try:
            status = {b: self.gateway.versioning_status(b) for b in self.settings.buckets}
        except CloudError as exc:
            return self._skip("event.vid", exc)
        self.obs.versioning = status
        versioned = [b for b in self.settings.buckets if status.get(b) == "enabled"]
        if versioned:
            self.obs.vid_bucket = versioned[0]
            self._put(versioned[0], self.run.prefix + VID_KEY)
        return None

    def _cos_questions(self) -> None:
        state, base = self.run.state_bucket, self.run.records + "scratch/"
        try:
            self._put(state, base + "if-match.txt")
            try:
                self.gateway.delete(state, base + "if-match.txt", if_match=WRONG_ETAG)
                self.obs.delete_if_match = "ignored" if not self._exists(state, base + "if-match.txt") else "kept"
            except PreconditionFailed:
                self.obs.delete_if_match = "honoured"
        except CloudError as exc:
            self._skip("cos.delete_if_match", exc)
        try:
            self._put(state, base + "forbid.txt")
            try:
                self._put(state, base + "forbid.txt", b"second\n", Metadata={"x-cos-forbid-overwrite": "true"})
                self.obs.forbid_overwrite = "ignored"
            except PreconditionFailed:
                self.obs.forbid_overwrite = "honoured"
        except CloudError as exc:
            self._skip("cos.forbid_overwrite", exc)
        self._multipart(state, base + "multipart.bin")

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self._head(bucket, key)
            return True
        except NotFoundError:
            return False

    def _multipart(self, bucket: str, key: str) -> None:
        """Last-Modified against COS's own Date: just after initiation, and after completion."""
        cos = self.gateway.cos
        upload_id = ""
        try:
            self.run.written.append((bucket, key))
            started = self._sdk("InitiateMultipartUpload", cos.create_multipart_upload, Bucket=bucket, Key=key)
            upload_id = str(started["UploadId"])
            initiated = http_epoch(self._head(bucket, marker_key(self.settings.state_prefix)).get("date"))
            self.options.pause(2.0)
            part = self._sdk("UploadPart", cos.upload_part, Bucket=bucket, Key=key, Body=CLEAN_BODY, PartNumber=1,
                             UploadId=upload_id)
            self._sdk("CompleteMultipartUpload", cos.complete_multipart_upload, Bucket=bucket, Key=key,
                      UploadId=upload_id, MultipartUpload={"Part": [{"PartNumber": 1, "ETag": part["ETag"]}]})
            upload_id = ""
            head = self._head(bucket, key)
            self.obs.multipart = (initiated, http_epoch(head.get("last-modified")), http_epoch(head.get("date")))
        except (CloudError, KeyError) as exc:
            self._skip("cos.multipart_last_modified", exc)
        finally:
            if upload_id:
                try:
                    self._sdk("AbortMultipartUpload", cos.abort_multipart_upload, Bucket=bucket, Key=key,
                              UploadId=upload_id)
                except CloudError:
                    pass

    def _ci_questions(self) -> None:
        bucket = self.run.bucket
        try:   # a job CI cannot complete: the object does not exist
            self.obs.failure_job = self.gateway.submit_virus_job(bucket, self.run.prefix + "missing.txt", None)
        except CloudError as exc:
            self.obs.failure_submit = f"{getattr(exc, 'code', '') or type(exc).__name__}: {exc}"
        if self.options.unbound_bucket:
            try:
                job = self.gateway.submit_virus_job(self.options.unbound_bucket, self.run.prefix + "unbound.txt", None)
                self.obs.unbound = f"accepted: job {job}"
            except CloudError as exc:
                self.obs.unbound = f"{getattr(exc, 'code', '') or '?'}: {exc}"
        for intake in self.settings.buckets:
            try:
                self.obs.ci_status[intake] = ci_status(self.gateway.ci, intake)
            except CloudError as exc:
                self.obs.ci_status[intake] = f"unreadable: {exc}"

    # -- what the functions recorded -------------------------------------------------------------
    def _read_records(self, kind: str) -> List[Dict[str, Any]]:
        found = []
        prefix = self.run.records + kind + "/"
        for item in self.gateway.list(self.run.state_bucket, prefix):
            key = str(item.get("Key"))
            try:
                body = self.sealer.open(self.run.state_bucket, key, self.gateway.get_json(self.run.state_bucket, key))
            except CloudError:
                continue
            if body is not None:
                found.append(body)
        return found

    def _collect(self) -> None:
        """Wait for the functions' records: the events of every scratch upload, a callback of each
        scanned object, and CI's second callback of the one answered an error (or its absence)."""
        retry_deadline: Optional[float] = None
        while True:
            self.obs.events = self._read_records("events")
            self.obs.callbacks = self._read_records("callbacks")
            self._failure_job()
            if self.obs.have_first_callbacks(self.sealer):
                if self.obs.retried():
                    break
                if retry_deadline is None:
                    retry_deadline = self.clock() + min(self.options.retry_wait, max(self.left(), 0))
                if self.options.quiet is not None and self.options.quiet():
                    self.obs.events = self._read_records("events")
                    self.obs.callbacks = self._read_records("callbacks")
                    self._failure_job()
                    break
                if self.clock() >= retry_deadline:
                    break
            if self.left() <= 0:
                self.obs.timed_out = True
                break
            time.sleep(self.options.poll)

    def _failure_job(self) -> None:
        if self.obs.failure_job and not self.obs.failure_state:
            try:
                job = self.gateway.query_virus_job(self.run.bucket, self.obs.failure_job)
            except CloudError as exc:
                self.obs.failure_state = f"query refused: {exc}"
                return
            except Exception as exc:  # noqa: BLE001 - an answer the SDK cannot parse is an answer too
                self.obs.failure_state = f"unreadable answer: {type(exc).__name__}"
                return
            if job.state in ENDED_STATES:
                self.obs.failure_state = f"{job.state} {job.code}: {job.message}".strip()

    def _retention(self) -> None:
        """A finished job queried again at the end: it answers at least this long after it ended."""
        ended = self.obs.first_callback_time()
        job_id = self.obs.clean_job_id()
        if not job_id or ended is None:
            self.obs.skipped.setdefault("ci.job_retention", "no finished job was seen")
            return
        try:
            job = self.gateway.query_virus_job(self.run.bucket, job_id)
            self.obs.retention = (job.state, int(self.clock() - ended))
        except CloudError as exc:
            self.obs.retention = (f"refused: {exc}", int(self.clock() - ended))

    def _keep_answers(self) -> None:
        """The answers, sealed, where the deployment's tools can read them (`probe/answers.json`)."""
        key = self.settings.state_prefix + "probe/answers.json"
        try:
            document = dict(answers_document(self.obs), run=self.run.run, probed_at=int(self.started))
            self.gateway.put_json(self.run.state_bucket, key, self.sealer.seal(self.run.state_bucket, key, document))
        except CloudError as exc:
            self.obs.cleanup.append(f"could not keep the answers at {key}: {exc}")

    # -- cleanup ---------------------------------------------------------------------------------
    def _cleanup(self) -> None:
        """Every scratch object and record of this run, every version of it; nothing else."""
        problems: List[str] = []
        targets = {(b, self.run.prefix) for b in self.settings.buckets}
        targets.add((self.run.state_bucket, self.run.records))
        for bucket, prefix in sorted(targets):
            try:
                self._remove_under(bucket, prefix)
            except CloudError as exc:
                problems.append(f"{bucket}/{prefix}: {exc}")
        for bucket, key in self.run.written:
            if key == marker_key(self.settings.state_prefix):
                try:
                    self.gateway.delete(bucket, key)
                except CloudError as exc:
                    problems.append(f"{bucket}/{key}: {exc}")
        self.obs.cleanup = problems

    def _remove_under(self, bucket: str, prefix: str) -> None:
        if not prefix or not (PROBE_SEGMENT in prefix or prefix.startswith(self.run.records)):
            return   # never anything but this run's prefix
        versioned = self.obs.versioning.get(bucket) in ("enabled", "suspended")
        if not versioned:
            for item in list(self.gateway.list(bucket, prefix)):
                self.gateway.delete(bucket, str(item["Key"]))
            return
        page = self.gateway.list_versions_page(bucket, prefix, "", "")
        for kind in ("Version", "DeleteMarker"):
            entries = page.get(kind) or []
            for entry in entries if isinstance(entries, list) else [entries]:
                self.gateway.delete(bucket, str(entry["Key"]), version_id=str(entry.get("VersionId") or "") or None)


def answers_document(observations: Observations) -> Dict[str, Any]:
    """What the probe saw, as the state bucket keeps it (`<state prefix>probe/answers.json`)."""
    return json.loads(json.dumps(observations.as_dict(), default=str))
