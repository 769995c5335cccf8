"""An in-memory `Gateway` (gateway.py) and an injected clock: the ledger, the verdict service and the
sweep tested in milliseconds, with time moved by the test instead of slept through.

It behaves as COS does wherever cosguard relies on it (docs/cos-parity.md), and
tests/unit/test_gateway_contract.py runs the same assertions against it and against a CloudGateway
on the local cloud, so it cannot drift:
- a write with forbid-overwrite over an existing key is PreconditionFailed (409 FileAlreadyExists),
  except on a bucket whose versioning is enabled or suspended, where COS ignores the header;
- a copy whose source ETag changed is PreconditionFailed (412, x-cos-copy-source-If-Match);
- a missing key, version, job or bucket is NotFoundError; deleting a missing key is no error;
- an ETag is the MD5 of the bytes (a new write of other bytes changes it); Last-Modified has
  one-second resolution and comes from the injected clock;
- versioning: a version id per write, a delete marker for a DELETE without one;
- DELETE ignores If-Match unless `delete_honours_if_match` (COS: any If-* is ignored);
- an appendable object cannot be copied (400 InvalidRequest); at most 10 tags; 2 KB of metadata.

CI (memory_ci.py) finishes a job only when the test says so; the stored versions, the clock and
the tag limits are memory_store.py's.
"""
from __future__ import annotations

import io
import json
import threading
import uuid
from collections import Counter
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from ..errors import CloudError, CloudPermanentError, NotFoundError, PreconditionFailed
from .clock import Stamp
from .cloud import APPENDABLE, ObjectInfo, json_document
from .cos_limits import MAX_KEY_BYTES, MAX_METADATA_BYTES, key_bytes, metadata_bytes
from .memory_ci import MemoryCi
from .memory_store import MAX_TAGS, ManualClock, StoredBucket, StoredVersion, check_tags, crc64, etag_of, iso


class MemoryGateway:
    """COS buckets and CI's virus detection in memory. Thread-safe (the sweep runs a pool).

    `calls` counts every operation by its COS name; `faults[name] = error` makes every call of that
    operation raise `error` until removed. `ci` holds the submitted jobs (memory_ci.py)."""

    def __init__(self, buckets: Iterable[str] = (), versioned: Iterable[str] = (),
                 clock: Optional[ManualClock] = None, region: str = "ap-guangzhou",
                 delete_honours_if_match: bool = False):
        self.clock = clock or ManualClock()
        self.region = region
        self.delete_honours_if_match = delete_honours_if_match
        self.calls: Counter = Counter()
        self.faults: Dict[str, CloudError] = {}
        self._lock = threading.RLock()
        self._buckets: Dict[str, StoredBucket] = {}
        self.inventories: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for name in buckets:
            self.create_bucket(name)
        for name in versioned:
            self.create_bucket(name, versioning="enabled")
        self.ci = MemoryCi(self, region)

    # -- what a test does to the cloud -----------------------------------------------------------
    def create_bucket(self, name: str, versioning: str = "") -> None:
        with self._lock:
            self._buckets.setdefault(name, StoredBucket()).versioning = versioning

    def set_versioning(self, bucket: str, status: str) -> None:
        """`enabled` or `suspended` (COS never returns a bucket to "never versioned")."""
        with self._lock:
            self._bucket(bucket).versioning = status

    def put_object(self, bucket: str, key: str, body: bytes, metadata: Optional[Mapping[str, str]] = None,
                   content_type: str = "application/octet-stream", tags: Optional[Mapping[str, str]] = None,
                   storage_class: str = "STANDARD") -> ObjectInfo:
        """An uploader's PUT; returns the write as HEAD describes it."""
        self._op("PutObject")
        version = self._store(bucket, key, body, metadata or {}, content_type, {}, tags or {})
        with self._lock:
            version.storage_class = storage_class
        return self._info(bucket, key, version)

    def append(self, bucket: str, key: str, body: bytes) -> ObjectInfo:
        """APPEND Object (doc 436/7741): grows an appendable object, outside versioning (no version
        id, as the local COS stores it), keeping its first ETag (the local COS's default,
        `append_keeps_etag`) and its tags."""
        self._op("AppendObject")
        with self._lock:
            versions = self._bucket(bucket).keys.setdefault(key, [])
            current = versions[-1] if versions and not versions[-1].marker else None
            if current is not None and current.object_type != APPENDABLE:
                raise CloudPermanentError(f"AppendObject: {bucket}/{key} is not appendable",
                                          code="ObjectNotAppendable", status=409, operation="AppendObject")
            if current is None:
                current = StoredVersion(b"", None, int(self.clock()), content_type="application/octet-stream",
                                   object_type=APPENDABLE, etag=etag_of(body))
                versions.append(current)
            current.body += body
            current.modified = int(self.clock())
            return self._info(bucket, key, current)

    def body(self, bucket: str, key: str, version_id: Optional[str] = None) -> Optional[bytes]:
        """The bytes a GET returns now; None when there is no such object."""
        with self._lock:
            found = self._find(bucket, key, version_id, missing_ok=True)
            return None if found is None else found.body

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        return [str(item["Key"]) for item in self._listing(bucket, prefix, "")]

    # -- objects ---------------------------------------------------------------------------------
    def head(self, bucket: str, key: str, version_id: Optional[str] = None) -> ObjectInfo:
        self._op("HeadObject")
        with self._lock:
            return self._info(bucket, key, self._find(bucket, key, version_id))

    def get_tags(self, bucket: str, key: str, version_id: Optional[str] = None) -> Dict[str, str]:
        self._op("GetObjectTagging")
        with self._lock:
            return dict(self._find(bucket, key, version_id).tags)

    def put_tags(self, bucket: str, key: str, tags: Mapping[str, str], version_id: Optional[str] = None) -> None:
        self._op("PutObjectTagging")
        check_tags(tags, "PutObjectTagging")
        with self._lock:
            self._find(bucket, key, version_id).tags = dict(tags)

    def copy(self, source: ObjectInfo, bucket: str, key: str,
             metadata: Optional[Mapping[str, str]] = None) -> ObjectInfo:
        self._op("CopyObject")
        with self._lock:
            found = self._find(source.bucket, source.key, source.version_id)
            if found.object_type == APPENDABLE:
                raise CloudPermanentError("CopyObject: an appendable object cannot be copied",
                                          code="InvalidRequest", status=400, operation="CopyObject")
            if source.etag and found.etag != source.etag:
                raise PreconditionFailed(f"CopyObject: {source.bucket}/{source.key} is no longer {source.etag}",
                                         code="PreconditionFailed", status=412, operation="CopyObject")
            if metadata is None:
                meta, content_type, headers = found.metadata, found.content_type, found.content_headers
            else:
                meta, content_type, headers = metadata, source.content_type, source.content_headers
            written = self._store(bucket, key, found.body, meta, content_type or "application/octet-stream",
                                  headers, dict(found.tags), etag=found.etag, operation="CopyObject")
        return source.replace(bucket=bucket, key=key, version_id=written.version_id, etag=written.etag,
                              tag_count=0, metadata=dict(metadata) if metadata is not None else source.metadata)

    def stream_copy(self, source: ObjectInfo, bucket: str, key: str,
                    metadata: Optional[Mapping[str, str]] = None) -> ObjectInfo:
        self._op("GetObject")
        with self._lock:
            found = self._find(source.bucket, source.key, source.version_id)
            if source.etag and found.etag != source.etag:
                raise PreconditionFailed(f"GetObject: {source.bucket}/{source.key} is no longer {source.etag}",
                                         code="PreconditionFailed", status=412, operation="GetObject")
            meta = dict(metadata) if metadata is not None else dict(source.metadata)
            body = found.body[:source.size]
        self._op("PutObject")
        written = self._store(bucket, key, body, meta, source.content_type or "application/octet-stream",
                              dict(source.content_headers), {})
        return source.replace(bucket=bucket, key=key, version_id=written.version_id, etag=written.etag,
                              tag_count=0, metadata=meta, object_type="")

    def delete(self, bucket: str, key: str, version_id: Optional[str] = None, if_match: str = "") -> None:
        self._op("DeleteObject")
        with self._lock:
            state = self._bucket(bucket)
            versions = state.keys.get(key, [])
            if if_match and self.delete_honours_if_match:
                current = self._find(bucket, key, version_id, missing_ok=True)
                if current is not None and current.etag != if_match:
                    raise PreconditionFailed(f"DeleteObject: {bucket}/{key} is no longer {if_match}",
                                             code="PreconditionFailed", status=412, operation="DeleteObject")
            if version_id:
                versions[:] = [v for v in versions if v.version_id != version_id]
            elif state.versioning == "enabled":
                if versions and not versions[-1].marker:
                    versions.append(StoredVersion(b"", uuid.uuid4().hex, int(self.clock()), marker=True))
            elif state.versioning == "suspended":
                versions[:] = [v for v in versions if v.version_id != "null"]
                versions.append(StoredVersion(b"", "null", int(self.clock()), marker=True))
            else:
                versions.clear()
            if not versions:
                state.keys.pop(key, None)

    def list(self, bucket: str, prefix: str = "", marker: str = "",
             page_size: int = 1000) -> Iterator[Mapping[str, Any]]:
        self._op("ListObjects")
        for item in self._listing(bucket, prefix, marker):
            yield item

    def list_versions_page(self, bucket: str, prefix: str, key_marker: str, version_marker: str,
                           page_size: int = 1000) -> Dict[str, Any]:
        self._op("ListObjectVersions")
        with self._lock:
            rows: List[Tuple[str, StoredVersion, bool]] = []
            for key in sorted(k for k in self._bucket(bucket).keys if k.startswith(prefix)):
                versions = self._bucket(bucket).keys[key]
                rows += [(key, v, i == 0) for i, v in enumerate(reversed(versions))]   # newest first
        start = 0
        if key_marker:   # after that version of that key; or, without a version, after every one of the key
            start = next((i + 1 for i, (key, version, _) in enumerate(rows)
                          if version_marker and key == key_marker and (version.version_id or "null") == version_marker),
                         next((i for i, (key, _, _) in enumerate(rows) if key > key_marker), len(rows)))
        page, truncated = rows[start:start + page_size], start + page_size < len(rows)
        answer: Dict[str, Any] = {"Version": [], "DeleteMarker": [], "IsTruncated": "true" if truncated else "false"}
        for key, version, latest in page:
            item = {"Key": key, "VersionId": version.version_id or "null", "IsLatest": "true" if latest else "false",
                    "LastModified": iso(version.modified)}
            if not version.marker:
                item.update(ETag=version.etag, Size=str(len(version.body)), StorageClass=version.storage_class)
            answer["DeleteMarker" if version.marker else "Version"].append(item)
        if truncated and page:
            answer["NextKeyMarker"], answer["NextVersionIdMarker"] = page[-1][0], page[-1][1].version_id or "null"
        return answer

    def versioning_status(self, bucket: str) -> str:
        self._op("GetBucketVersioning")
        with self._lock:
            return self._bucket(bucket).versioning

    def upload(self, bucket: str, key: str, body: bytes) -> None:
        self._op("PutObject")
        self._store(bucket, key, body, {}, "application/octet-stream", {}, {})

    def size_pool(self, threads: int) -> None:
        """Nothing to size: no connections."""

    # -- small JSON documents --------------------------------------------------------------------
    def put_json(self, bucket: str, key: str, document: Mapping[str, Any], *, if_absent: bool = False) -> None:
        self._op("PutObject")
        body = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self._store(bucket, key, body, {}, "application/json", {}, {}, forbid_overwrite=if_absent)

    def get_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Dict[str, Any]:
        document, _ = self.read_json(bucket, key, max_bytes)
        return document

    def read_json(self, bucket: str, key: str, max_bytes: int = 1024 * 1024) -> Tuple[Any, Stamp]:
        """As CloudGateway's: the Stamp's times are this gateway's clock, standing for COS's."""
        self._op("GetObject")
        with self._lock:
            found = self._find(bucket, key, None)
            if found.storage_class in ("ARCHIVE", "DEEP_ARCHIVE"):
                raise CloudPermanentError(f"GetObject: {bucket}/{key} is archived", code="InvalidObjectState",
                                          status=403, operation="GetObject")
            raw = found.body[:max_bytes + 1]
            stamp = Stamp(etag=found.etag.strip('"'), last_modified=found.modified, server_time=int(self.clock()))
        return json_document(bucket, key, raw, max_bytes, stamp)

    def put_inventory(self, bucket: str, inventory_id: str, configuration: Dict[str, Any]) -> None:
        self._op("PutBucketInventory")
        with self._lock:
            self.inventories[(bucket, inventory_id)] = dict(configuration)

    def open_stream(self, bucket: str, key: str) -> Any:
        self._op("GetObject")
        with self._lock:
            return io.BytesIO(self._find(bucket, key, None).body)

    # -- CI virus detection (memory_ci.py) -------------------------------------------------------
    def submit_virus_job(self, bucket: str, key: str, callback: Optional[str],
                         version_id: Optional[str] = None, pinned: bool = False) -> str:
        self._op("SubmitVirusJob")
        return self.ci.submit(bucket, key, callback, version_id, pinned)

    def query_virus_job(self, bucket: str, job_id: str):
        self._op("QueryVirusJob")
        return self.ci.query(bucket, job_id)

    # -- the store -------------------------------------------------------------------------------
    def _op(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1
            fault = self.faults.get(operation)
        if fault is not None:
            raise fault

    def _bucket(self, name: str) -> StoredBucket:
        found = self._buckets.get(name)
        if found is None:
            raise NotFoundError(f"{name}: no such bucket", code="NoSuchBucket", status=404)
        return found

    def _find(self, bucket: str, key: str, version_id: Optional[str], missing_ok: bool = False) -> Any:
        with self._lock:
            versions = self._bucket(bucket).keys.get(key, [])
            if version_id:
                found = next((v for v in versions if v.version_id == version_id), None)
            else:
                found = versions[-1] if versions else None
            if found is None or (found.marker and not version_id):
                if missing_ok:
                    return None
                code = "NoSuchVersion" if version_id else "NoSuchKey"
                raise NotFoundError(f"{bucket}/{key}: {code}", code=code, status=404)
            if found.marker:
                raise CloudPermanentError(f"{bucket}/{key}: version {version_id} is a delete marker",
                                          code="MethodNotAllowed", status=405)
            return found

    def _store(self, bucket: str, key: str, body: bytes, metadata: Mapping[str, str], content_type: str,
               headers: Mapping[str, str], tags: Mapping[str, str], etag: str = "",
               forbid_overwrite: bool = False, operation: str = "PutObject") -> StoredVersion:
        meta = {str(k).lower(): str(v) for k, v in metadata.items()}
        if key_bytes(key) > MAX_KEY_BYTES or metadata_bytes(meta) > MAX_METADATA_BYTES:
            raise CloudPermanentError(f"{operation}: key or metadata too large", code="InvalidArgument",
                                      status=400, operation=operation)
        check_tags(tags, operation)
        with self._lock:
            state = self._bucket(bucket)
            versions = state.keys.setdefault(key, [])
            exists = bool(versions) and not versions[-1].marker
            if forbid_overwrite and exists and not state.versioning:
                raise PreconditionFailed(f"{operation}: {bucket}/{key} exists", code="FileAlreadyExists",
                                         status=409, operation=operation)
            version_id = {"enabled": uuid.uuid4().hex, "suspended": "null"}.get(state.versioning)
            written = StoredVersion(bytes(body), version_id, int(self.clock()), meta, content_type, dict(headers),
                               dict(tags), etag=etag or etag_of(body))
            if state.versioning == "enabled":
                versions.append(written)
            else:
                versions[:] = [v for v in versions if state.versioning and v.version_id != "null"] + [written]
            return written

    def _listing(self, bucket: str, prefix: str, marker: str) -> List[Dict[str, Any]]:
        with self._lock:
            keys = self._bucket(bucket).keys
            return [{"Key": key, "Size": str(len(v.body)), "ETag": v.etag, "LastModified": iso(v.modified),
                     "StorageClass": v.storage_class}
                    for key in sorted(keys) if key.startswith(prefix) and key > marker
                    for v in keys[key][-1:] if not v.marker]

    def _info(self, bucket: str, key: str, version: StoredVersion) -> ObjectInfo:
        return ObjectInfo(bucket=bucket, key=key, size=len(version.body), etag=version.etag,
                          storage_class=version.storage_class, version_id=version.version_id,
                          tag_count=len(version.tags), metadata=dict(version.metadata),
                          content_type=version.content_type, last_modified=version.modified,
                          object_type=version.object_type, content_headers=dict(version.content_headers),
                          crc64=str(crc64(version.body)))


__all__ = ["MAX_TAGS", "ManualClock", "MemoryGateway"]
