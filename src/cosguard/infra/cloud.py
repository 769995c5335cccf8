"""The one boundary to COS and CI: cos-python-sdk-v5 calls, their errors translated, retried.

Everything else in cosguard calls `CloudGateway` and only ever sees cosguard's own errors.
"""
from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from qcloud_cos import CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from ..errors import CloudError, CloudPermanentError, CloudTransientError, NotFoundError, PreconditionFailed
from .ci_input import object_form_carries, presigned_get_url
from .ci_jobs import CiJob
from .clock import Stamp, http_epoch
from .config import Settings
from .records import Factory, Record
from .retry import Backoff, call_with_retry, current_deadline
from .sdk_session import client, mount_pool, session
from .streaming import STREAM_PART_SIZE, StreamingCopy, written_version

SINGLE_COPY_LIMIT = 5 * 1024 ** 3  # COS's PUT Object - copy limit; larger goes multipart
APPENDABLE = "appendable"  # HEAD's x-cos-object-type for an APPEND Object upload (doc 436/7741)
# What readers are served with besides the type: a copy whose metadata is Replaced loses them
# unless they are sent again (PUT Object - Copy, doc 436/10881). SDK argument name -> HTTP header.
CONTENT_HEADERS = {"CacheControl": "cache-control", "ContentDisposition": "content-disposition",
                   "ContentEncoding": "content-encoding", "ContentLanguage": "content-language",
                   "Expires": "expires"}
THROTTLE_CODES = {"SlowDown", "RequestLimitExceeded", "TooManyRequests", "Throttling", "ServiceUnavailable"}


@contextlib.contextmanager
def translate_sdk_errors(operation: str) -> Iterator[None]:
    """Map the SDK's exceptions to cosguard's error family, always `from` the original."""
    try:
        yield
    except CosServiceError as exc:
        status = exc.get_status_code()
        code = exc.get_error_code() or ""
        message = f"{operation}: {status} {code} {exc.get_error_msg() or ''}".strip()
        info = dict(code=code, status=status, request_id=exc.get_request_id() or "", operation=operation)
        if status == 404 or code in ("NoSuchKey", "NoSuchResource", "NoSuchVersion", "NoSuchBucket"):
            raise NotFoundError(message, **info) from exc
        if status in (409, 412):
            raise PreconditionFailed(message, **info) from exc
        if status in (429, 408) or status >= 500 or code in THROTTLE_CODES:
            raise CloudTransientError(message, **info) from exc
        raise CloudPermanentError(message, **info) from exc
    except CosClientError as exc:
        # The SDK raises CosClientError for timeouts and broken connections (and for its own bad
        # parameters, which our tests would catch): treat it as transient.
        raise CloudTransientError(f"{operation}: {exc}", operation=operation) from exc


class ObjectInfo(Record, frozen=True):
    """What HEAD says about one object version."""

    bucket: str
    key: str
    size: int
    etag: str
    storage_class: str
    version_id: Optional[str]
    tag_count: int
    metadata: Mapping[str, str]
    content_type: str = ""
    last_modified: int = 0  # epoch seconds (COS's one-second resolution); part of an upload's identity
    object_type: str = ""  # `appendable` for APPEND Object uploads, which COS cannot copy; else normal
    content_headers: Mapping[str, str] = Factory(dict)  # CONTENT_HEADERS as HEAD gave them (SDK names)
    # x-cos-hash-crc64ecma: of the content, so a copy keeps it whatever its ETag (doc 436/40334); ""
    # for objects older than COS's CRC64 (and copies of them), which COS stores none for
    crc64: str = ""


def json_document(bucket: str, key: str, raw: bytes, max_bytes: int, stamp: Stamp) -> Tuple[Any, Stamp]:
    """The JSON document in `raw` (at most `max_bytes` of it were read) with its Stamp; anything
    else is CloudPermanentError `NotJSON`, carrying the Stamp as `.stamp` (a takeover of a planted
    claim needs its ETag). Shared by every gateway, so they refuse the same documents."""
    try:
        if len(raw) > max_bytes:
            raise ValueError("too large")
        return json.loads(raw.decode("utf-8")), stamp
    except (ValueError, RecursionError) as exc:
        error = CloudPermanentError(f"{bucket}/{key} is not JSON", code="NotJSON", operation="GetObject")
        error.stamp = stamp  # type: ignore[attr-defined]
        raise error from exc


class CloudGateway(StreamingCopy):
    """COS and CI calls for one deployment. Thread-safe: the SDK client is shared by the pool."""

    def __init__(self, settings: Settings, *, cos_client: Optional[CosS3Client] = None,
                 ci_client: Optional[CosS3Client] = None, backoff: Optional[Backoff] = None):
        self.settings = settings
        self._session = session(settings.max_workers + 2)
        cos, ci = (cos_client, ci_client) if cos_client and ci_client else self._clients()
        self.cos, self.ci = cos_client or cos, ci_client or ci
        self.backoff = backoff or Backoff()
        self.single_copy_limit = SINGLE_COPY_LIMIT
        self.multipart_part_size = 512 * 1024 * 1024
        self.stream_part_size = STREAM_PART_SIZE   # streaming.py: an appendable object's copy

    def size_pool(self, threads: int) -> None:
        """Keep up to `threads` connections per host (a backfill may run more workers than
        COSGUARD_MAX_WORKERS); only grows the pool."""
        adapter = self._session.get_adapter("https://")
        if threads + 2 > getattr(adapter, "_pool_maxsize", 0):
            mount_pool(self._session, threads + 2)

    def refresh_credentials(self, env: Mapping[str, str]) -> None:
        """SCF rotates the role's temporary keys: rebuild the clients when they changed.

        (The SDK's own `CosConfig.set_credential` fails when there is no token, so the clients are
        rebuilt instead of updated.)
        """
        secret_id, secret_key = env.get("TENCENTCLOUD_SECRETID"), env.get("TENCENTCLOUD_SECRETKEY")
        token = env.get("TENCENTCLOUD_SESSIONTOKEN") or None
        current = (self.settings.secret_id, self.settings.secret_key, self.settings.session_token)
        if not (secret_id and secret_key) or (secret_id, secret_key, token) == current:
            return
        self.settings = self.settings.replace(secret_id=secret_id, secret_key=secret_key,
                                            session_token=token)
        self.cos, self.ci = self._clients()

    def _clients(self) -> Tuple[CosS3Client, CosS3Client]:
        """The COS and CI clients for the current credentials, over the one pool (CI at the COS
        endpoint unless its own is set)."""
        s = self.settings
        return (client(s, s.cos_endpoint, self._session),
                client(s, s.ci_endpoint or s.cos_endpoint, self._session))

    def _call(self, operation: str, fn, *args, **kwargs):
        def once():
            with translate_sdk_errors(operation):
                return fn(*args, **kwargs)
        return call_with_retry(once, attempts=self.settings.max_attempts, deadline=current_deadline(),
                               backoff=self.backoff)

    # -- objects ---------------------------------------------------------------------------
    def head(self, bucket: str, key: str, version_id: Optional[str] = None) -> ObjectInfo:
        extra = {"VersionId": version_id} if version_id else {}
        headers = self._call("HeadObject", self.cos.head_object, Bucket=bucket, Key=key, **extra)
        lower = {k.lower(): v for k, v in headers.items()}
        return ObjectInfo(
            bucket=bucket, key=key, size=int(lower.get("content-length") or 0),
            etag=lower.get("etag", ""), storage_class=(lower.get("x-cos-storage-class") or "STANDARD").upper(),
            version_id=lower.get("x-cos-version-id") or version_id,
            tag_count=int(lower.get("x-cos-tagging-count") or 0),
            metadata={k[len("x-cos-meta-"):]: v for k, v in lower.items() if k.startswith("x-cos-meta-")},
            content_type=lower.get("content-type", ""),
            last_modified=http_epoch(lower.get("last-modified")),
            object_type=str(lower.get("x-cos-object-type") or "").lower(),
            content_headers={name: lower[header] for name, header in CONTENT_HEADERS.items() if lower.get(header)},
            crc64=str(lower.get("x-cos-hash-crc64ecma") or "").strip())

    def get_tags(self, bucket: str, key: str, version_id: Optional[str] = None) -> Dict[str, str]:
        extra = {"VersionId": version_id} if version_id else {}
        response = self._call("GetObjectTagging", self.cos.get_object_tagging, Bucket=bucket, Key=key, **extra)
        tags = ((response or {}).get("TagSet") or {}).get("Tag") or []
        if isinstance(tags, dict):
            tags = [tags]
        return {str(t.get("Key")): str(t.get("Value") or "") for t in tags}

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str], version_id: Optional[str] = None) -> None:
        extra = {"VersionId": version_id} if version_id else {}
        tagging = {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]}}
        self._call("PutObjectTagging", self.cos.put_object_tagging, Bucket=bucket, Key=key,
                   Tagging=tagging, **extra)

    def copy(self, source: ObjectInfo, bucket: str, key: str,
             metadata: Optional[Mapping[str, str]] = None) -> ObjectInfo:
        """Server-side copy of exactly `source` (its version); `metadata` replaces the copy's.

        Returns the copy as HEAD would describe it (no tags yet), without a HEAD.
        """
        copy_source = {"Bucket": source.bucket, "Key": source.key, "Region": self.settings.region}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        kwargs: Dict[str, Any] = {}
        status = "Copy"
        if metadata is not None:  # Replaced drops Content-Type and the other content headers unless sent again
            status = "Replaced"
            kwargs["Metadata"] = {f"x-cos-meta-{k}": v for k, v in metadata.items()}
            if source.content_type:
                kwargs["ContentType"] = source.content_type
            kwargs.update(source.content_headers)
        if source.size <= self.single_copy_limit:
            if source.etag:
                kwargs["CopySourceIfMatch"] = source.etag
            answer = self._call("CopyObject", self.cos.copy_object, Bucket=bucket, Key=key,
                                CopySource=copy_source, CopyStatus=status, **kwargs) or {}
        else:
            answer = self._multipart_copy(source, copy_source, bucket, key, kwargs) or {}
        lower = {str(k).lower(): v for k, v in answer.items() if isinstance(v, str)}
        return source.replace(bucket=bucket, key=key, version_id=written_version(lower),
                                   etag=lower.get("etag", source.etag), tag_count=0,
                                   metadata=dict(metadata) if metadata is not None else source.metadata)

    def _multipart_copy(self, source: ObjectInfo, copy_source: Dict[str, Any], bucket: str, key: str,
                        kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """Part by part, server-side.

        (The SDK's managed `copy()` HEADs the source through an endpoint built from CopySource, which
        bypasses a configured IP/Port; the part-level calls do not.)
        """
        part_size = max(self.multipart_part_size, -(-source.size // 10000))  # COS allows 10,000 parts
        offsets = range(0, source.size, part_size)

        def copy_part(number: int, upload_id: str) -> str:
            offset = offsets[number - 1]
            last = min(offset + part_size, source.size) - 1
            return self._call("UploadPartCopy", self.cos.upload_part_copy, Bucket=bucket, Key=key,
                              PartNumber=number, UploadId=upload_id, CopySource=copy_source,
                              CopySourceRange=f"bytes={offset}-{last}",
                              **({"CopySourceIfMatch": source.etag} if source.etag else {}))["ETag"]
        return self._multipart(bucket, key, {k: v for k, v in kwargs.items()
                                             if k in ("Metadata", "ContentType", *CONTENT_HEADERS)},
                               len(offsets), copy_part)

    def _multipart(self, bucket: str, key: str, kwargs: Dict[str, Any], count: int,
                   upload_part: Callable[[int, str], str]) -> Dict[str, Any]:
        """Initiate, `upload_part(number, upload_id) -> ETag` for parts 1..count, complete; aborted
        on failure so no orphan parts are billed."""
        start = self._call("InitiateMultipartUpload", self.cos.create_multipart_upload, Bucket=bucket, Key=key,
                           **kwargs)
        upload_id = start["UploadId"]
        try:
            parts = [{"PartNumber": n, "ETag": upload_part(n, upload_id)} for n in range(1, count + 1)]
            return self._call("CompleteMultipartUpload", self.cos.complete_multipart_upload, Bucket=bucket,
                              Key=key, UploadId=upload_id, MultipartUpload={"Part": parts})
        except CloudError:
            try:
                self._call("AbortMultipartUpload", self.cos.abort_multipart_upload, Bucket=bucket, Key=key,
                           UploadId=upload_id)
            except CloudError:
                pass
            raise

    def delete(self, bucket: str, key: str, version_id: Optional[str] = None, if_match: str = "") -> None:
        """`if_match`: delete only while the ETag is this one (PreconditionFailed otherwise; whether COS
        honours If-Match on DELETE is unknown, docs/tencent-facts.md: callers re-check first)."""
        extra: Dict[str, Any] = {"VersionId": version_id} if version_id else {}
        if if_match:
            extra["IfMatch"] = if_match
        self._call("DeleteObject", self.cos.delete_object, Bucket=bucket, Key=key, **extra)

    def list(self, bucket: str, prefix: str = "", marker: str = "",
             page_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        """Every object under `prefix` after `marker`, page by page (no per-object requests)."""
        while True:
            page = self._call("ListObjects", self.cos.list_objects, Bucket=bucket, Prefix=prefix,
                              Marker=marker, MaxKeys=page_size)
            contents = page.get("Contents") or []
            for item in contents if isinstance(contents, list) else [contents]:
                yield item
            if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
                return
            marker = page.get("NextMarker") or contents[-1]["Key"]

    def upload(self, bucket: str, key: str, body: bytes) -> None:
        """A plain upload (the verify command's test files)."""
        self._call("PutObject", self.cos.put_object, Bucket=bucket, Key=key, Body=body)

    def versioning_status(self, bucket: str) -> str:
        """`enabled`, `suspended`, or "" for a bucket that never had versioning."""
        answer = self._call("GetBucketVersioning", self.cos.get_bucket_versioning, Bucket=bucket) or {}
        return str(answer.get("Status") or "").lower()

    def lifecycle_rules(self, bucket: str) -> List[Dict[str, Any]]:
        """The bucket's lifecycle rules as the SDK returns them; [] when it has none."""
        try:
            answer = self._call("GetBucketLifecycle", self.cos.get_bucket_lifecycle, Bucket=bucket) or {}
        except NotFoundError as exc:
            if exc.code != "NoSuchLifecycleConfiguration":
                raise
            return []
        rules = answer.get("Rule") or []
        return list(rules) if isinstance(rules, list) else [rules]

    def put_lifecycle_rules(self, bucket: str, rules: List[Dict[str, Any]]) -> None:
        """Replace the bucket's whole lifecycle configuration (doc 436/8280: a PUT overwrites it)."""
        self._call("PutBucketLifecycle", self.cos.put_bucket_lifecycle, Bucket=bucket,
                   LifecycleConfiguration={"Rule": rules})

    def put_inventory(self, bucket: str, inventory_id: str, configuration: Dict[str, Any]) -> None:
        """Create or replace one inventory configuration (PUT Bucket inventory, doc 436/30625)."""
        self._call("PutBucketInventory", self.cos.put_bucket_inventory, Bucket=bucket, Id=inventory_id,
                   InventoryConfiguration=dict(configuration))

    def list_versions_page(self, bucket: str, prefix: str, key_marker: str, version_marker: str,
                           page_size: int = 1000) -> Dict[str, Any]:
        """One page of ListObjectVersions, as the SDK returns it."""
        return self._call("ListObjectVersions", self.cos.list_objects_versions, Bucket=bucket, Prefix=prefix,
                          KeyMarker=key_marker, VersionIdMarker=version_marker, MaxKeys=page_size) or {}

    # -- small JSON documents (the ledger) ---------------------------------------------------
    def put_json(self, bucket: str, key: str, document: Mapping[str, Any], *, if_absent: bool = False) -> None:
        """Write a JSON document; with `if_absent`, PreconditionFailed when the key exists."""
        kwargs: Dict[str, Any] = {"ContentType": "application/json"}
        if if_absent:
            kwargs["Metadata"] = {"x-cos-forbid-overwrite": "true"}
        body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self._call("PutObject", self.cos.put_object, Bucket=bucket, Key=key, Body=body, **kwargs)

    def get_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Dict[str, Any]:
        """Read a JSON document; CloudPermanentError code `NotJSON` for anything else (at most
        `max_bytes` are read: a planted huge object never fills a function's memory)."""
        document, _ = self.read_json(bucket, key, max_bytes)
        return document

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Tuple[Any, "Stamp"]:
        """`get_json`, with the answer's Stamp (COS's clock and the document's generation); the
        NotJSON error carries it as `.stamp` (a takeover of a planted claim needs its ETag)."""
        def read():
            response = self.cos.get_object(Bucket=bucket, Key=key)
            return response, response["Body"].get_raw_stream().read(max_bytes + 1)
        response, raw = self._call("GetObject", read)
        lower = {str(k).lower(): v for k, v in response.items() if isinstance(v, str)}
        stamp = Stamp(etag=lower.get("etag", "").strip('"'), last_modified=http_epoch(lower.get("last-modified")),
                      server_time=http_epoch(lower.get("date")))
        return json_document(bucket, key, raw, max_bytes, stamp)

    def open_stream(self, bucket: str, key: str) -> Any:
        response = self._call("GetObject", self.cos.get_object, Bucket=bucket, Key=key)
        return response["Body"].get_raw_stream()

    # -- CI virus detection ------------------------------------------------------------------
    def submit_virus_job(self, bucket: str, key: str, callback: Optional[str],
                         version_id: Optional[str] = None, pinned: bool = False) -> str:
        """Submit one object; a key XML would not carry exactly, or a scan `pinned` to `version_id`
        (CI's Object form reads whatever the key holds), goes as a pre-signed, version-pinned `Url`
        (ci_input.py). CloudPermanentError `UnsupportedKey` for a key no URL can name."""
        target: Dict[str, Any] = {"Key": key}
        if pinned or not object_form_carries(key):
            target = {"Url": self.presigned_get_url(bucket, key, version_id)}
        response = self._call("SubmitVirusJob", self.ci.ci_auditing_virus_submit, Bucket=bucket,
                              Callback=callback, **target)
        job_id = str(((response or {}).get("JobsDetail") or {}).get("JobId") or "")
        if not job_id:
            raise CloudTransientError("SubmitVirusJob: answer carried no JobId", operation="SubmitVirusJob")
        return job_id

    def presigned_get_url(self, bucket: str, key: str, version_id: Optional[str] = None) -> str:
        return presigned_get_url(self.cos, self.settings, bucket, key, version_id)

    def query_virus_job(self, bucket: str, job_id: str) -> CiJob:
        response = self._call("QueryVirusJob", self.ci.ci_auditing_virus_query, Bucket=bucket, JobID=job_id)
        job = CiJob.from_response(response or {})
        if job.job_id and job.job_id != job_id:
            raise CloudPermanentError(f"QueryVirusJob: asked for {job_id}, CI answered {job.job_id}",
                                      operation="QueryVirusJob")
        return job


__all__ = ["APPENDABLE", "CloudGateway", "ObjectInfo", "Stamp", "http_epoch", "translate_sdk_errors"]
