"""APPEND Object (doc 436/7741): `POST /<key>?append&position=N`, which moto's S3 does not have.

COS's documented rules: the first append creates an *appendable* object (`x-cos-object-type:
appendable` on HEAD/GET), any other upload makes the key *normal* again; appending to a normal
object answers 409 ObjectNotAppendable; `position` must equal the current length (409); an
appendable object grows to 5 GB at most; the answer carries `x-cos-next-append-position` and the
ETag; appendable objects cannot be copied and take no part in versioning. Its key and user metadata obey
the rules of every other write (limits.py, checked before this module is reached: doc 436/7741 gives
x-cos-meta-* the same 2 KB as PUT Object).

Where the doc is silent, this module takes the answer worse for a scanner:
- the 409 for a wrong position is coded `PositionNotEqualToLength` (the doc gives the status only);
- metadata and Content-Type are taken from the first append and kept (later appends' are ignored);
- on a versioned bucket the object is kept outside versioning: one `null` version, rewritten in place,
  with no `x-cos-version-id`, so a scanner cannot name the bytes it scanned by version;
- object tags survive an append (a `cosguard-status=clean` tag stays on bytes never scanned);
- the ETag stays the first append's (`LocalCos.append_keeps_etag`, default on): whether COS gives each
  append a new one is not documented, and a kept ETag makes two appends in one second (COS's
  Last-Modified resolution) look like one write; off, each append's ETag is the MD5 of the whole object;
- a copy of an appendable source answers 400 `InvalidRequest` (COS documents the refusal, not its code).
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any, Dict, Optional, Tuple

from moto.s3.models import FakeKey
from moto.s3.utils import metadata_from_headers

from .naming import moto_storage_class, parse_copy_source
from .wire import CosError, content_length

MAX_APPENDABLE_SIZE = 5 * 1024 ** 3   # doc 436/7741: an appendable object is at most 5 GB
OBJECT_TYPE_HEADER = "x-cos-object-type"
NEXT_POSITION_HEADER = "x-cos-next-append-position"
_FIRST_APPEND_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding",
                         "expires")
Answer = Tuple[int, Dict[str, str], bytes]


class Appendables:
    """Which stored versions (moto's key objects) are appendable, and the APPEND operation itself.

    Held weakly: any other write of the key replaces moto's key object, so the key is normal again
    without anyone forgetting it here.
    """

    def __init__(self, cos: Any):
        self._cos = cos
        self._known: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._lock = threading.Lock()   # one append at a time: position check and write together

    def is_appendable(self, stored: Any) -> bool:
        return stored is not None and stored in self._known

    def headers_for(self, stored: Any) -> Dict[str, str]:
        """What HEAD and GET add for an appendable object (nothing for a normal one)."""
        if not self.is_appendable(stored):
            return {}
        size = self._cos.store.size_of(self._bucket_of(stored), stored.name, stored.size)
        return {OBJECT_TYPE_HEADER: "appendable", NEXT_POSITION_HEADER: str(size)}

    def refuse_copy_of_appendable(self, copy_source: str) -> None:
        """Doc 436/7741: "Appendable 的对象不可以被复制" (PUT Object - Copy and Upload Part - Copy)."""
        source = parse_copy_source(copy_source)
        if source is None:
            return
        stored = self._cos.store.find(source.bucket, source.key, source.version_id)
        if self.is_appendable(stored):
            raise CosError(400, "InvalidRequest",
                           "The source object is appendable; appendable objects cannot be copied.")

    def append(self, environ: Dict[str, Any], req: Any) -> Tuple[Answer, Any]:
        """Store one append; returns the answer and moto's new key object. The answer's headers
        are doc 436/7741's sample: ETag, x-cos-next-append-position, x-cos-content-sha1 (of this
        part); its CRC64 is on HEAD/GET, as for every object."""
        cos = self._cos
        raw_position = req.query.get("position")
        if raw_position is None or not raw_position.isdigit():
            raise CosError(400, "InvalidArgument", "position is required and must be a non-negative integer.")
        if "CONTENT_LENGTH" not in environ or environ["CONTENT_LENGTH"] in ("", None):
            raise CosError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        position, length = int(raw_position), content_length(environ)
        if not cos.bucket_exists(req.bucket):
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        if length > MAX_APPENDABLE_SIZE:
            raise CosError(400, "EntityTooLarge", "An appendable object cannot grow past 5 GB.")
        req.body_read = True   # read before the lock: a slow client holds up no other append
        chunk = environ["wsgi.input"].read(length) if length > 0 else b""
        if len(chunk) != length:
            raise CosError(400, "IncompleteBody", "The request body is shorter than Content-Length.")
        with self._lock:
            current = cos.store.find(req.bucket, req.key)
            if current is not None and not self.is_appendable(current):
                raise CosError(409, "ObjectNotAppendable",
                               "The operation is not valid for the current state of the object.")
            size = cos.store.size_of(req.bucket, req.key, current.size) if current is not None else 0
            if position != size:
                raise CosError(409, "PositionNotEqualToLength",
                               f"Position ({position}) is not equal to the object length ({size}).")
            if size + length > MAX_APPENDABLE_SIZE:
                raise CosError(400, "EntityTooLarge", "An appendable object cannot grow past 5 GB.")
            new_key = self._store(req, current, chunk)
        headers = {"ETag": new_key.etag, NEXT_POSITION_HEADER: str(size + length),
                   "x-cos-content-sha1": hashlib.sha1(chunk).hexdigest()}
        return (200, headers, b""), new_key

    def _store(self, req: Any, current: Optional[FakeKey], chunk: bytes) -> FakeKey:
        """A new moto key holding the old bytes plus `chunk`, as the key's only `null` version."""
        cos = self._cos
        backend = cos.moto_backend()
        bucket = backend.buckets[cos.names.to_moto(req.bucket)]
        value = (current.value if current is not None else b"") + chunk
        new_key = FakeKey(name=req.key, bucket_name=bucket.name, value=value,
                          account_id=backend.account_id, region_name=backend.region_name,
                          storage=current.storage_class if current is not None else
                          _storage(req.headers), is_versioned=False, version_id="null")
        if current is not None:
            new_key.set_metadata(dict(current.metadata))
            if cos.append_keeps_etag:
                new_key._etag = current.etag.strip('"')   # moto's FakeKey computes it only when unset
        else:
            s3_names = {("x-amz-meta-" + n[len("x-cos-meta-"):]).title() if n.startswith("x-cos-meta-")
                        else n.title(): v for n, v in req.headers.items()
                        if n in _FIRST_APPEND_HEADERS or n.startswith("x-cos-meta-")}
            new_key.set_metadata(metadata_from_headers(s3_names))
        new_key.set_acl(bucket.acl)
        versions = [k for k in bucket.keys.getlist(req.key, []) if k is not current]
        bucket.keys.setlist(req.key, versions + [new_key])
        self._known.add(new_key)   # under self._lock (append holds it)
        return new_key

    def _bucket_of(self, stored: Any) -> str:
        return self._cos.names.to_cos(stored.bucket_name)


def _storage(headers: Dict[str, str]) -> str:
    return moto_storage_class(headers.get("x-cos-storage-class", "STANDARD")) or "STANDARD"

