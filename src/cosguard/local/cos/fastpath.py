"""The hot object operations answered straight from moto's S3 backend, without moto's Flask app.

Why: ~88% of a request's server CPU went to moto's app (Flask routing, BaseResponse set-up,
serialisers, request ids) around a backend call that costs little. For PutObject, HeadObject,
GetObject (incl. one Range), PutObjectTagging, CopyObject and DeleteObject this module calls the
same backend methods moto's app calls and returns the answer moto's app would give, as
`(status, S3 headers, body)`: the dialect then turns it into COS's answer exactly as it turns
moto's (header names, errors, CRC64, sizes, events), so that stays one code path.

Only the common, fully understood shapes are answered here. Anything else returns None and moto's
app answers it as before: every error except NoSuchKey on a GET/HEAD of a key never written
(PreconditionFailed, 304, NoSuchVersion, ...: reads have no side effects and a write is not started
before the fallback is decided), ACL, SSE, checksum, lock, website and conditional-date headers,
unusual query parameters, archived objects, and buckets with a policy, logging, default encryption
or object lock. `COSGUARD_LOCAL_FASTPATH=0` turns it off.
"""
from __future__ import annotations

import io
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from moto.s3.models import FakeKey
from moto.s3.utils import metadata_from_headers

from .naming import parse_copy_source
from .wire import content_length

MotoAnswer = Tuple[int, List[Tuple[str, str]], bytes]

OPERATIONS = frozenset({"PutObject", "HeadObject", "GetObject", "PutObjectTagging", "CopyObject",
                        "DeleteObject"})
_ARCHIVED = frozenset({"GLACIER", "DEEP_ARCHIVE"})   # moto refuses GET/copy of these until restored
# Request headers moto's object handlers do not act on (transport, our own signature, CORS).
_TRANSPORT = frozenset({"host", "authorization", "x-moto-account-id", "user-agent", "accept",
                        "accept-encoding", "connection", "date", "content-length", "expect",
                        "keep-alive", "te", "origin", "referer", "content-md5"})
_STORED_HEADERS = frozenset({"content-type", "cache-control", "content-disposition",
                             "content-encoding", "content-language", "expires"})
_HEADERS = {
    "PutObject": _STORED_HEADERS | {"x-amz-storage-class", "x-amz-tagging"},
    "CopyObject": _STORED_HEADERS | {"x-amz-copy-source", "x-amz-storage-class", "x-amz-tagging",
                                     "x-amz-metadata-directive", "x-amz-tagging-directive",
                                     # checked before either path answers (answers.py)
                                     "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                                     "x-amz-copy-source-if-modified-since",
                                     "x-amz-copy-source-if-unmodified-since"},
    "HeadObject": {"if-match", "if-none-match"},
    "GetObject": {"if-match", "if-none-match", "range"},
    "PutObjectTagging": {"content-type"},
    "DeleteObject": {"if-match"},
}
_META = ("x-amz-meta-",)
_QUERY = {"PutObject": set(), "CopyObject": set(), "HeadObject": {"versionId"},
          "GetObject": {"versionId"}, "PutObjectTagging": {"tagging", "versionId"},
          "DeleteObject": {"versionId"}}


class FastPath:
    """Answers `OPERATIONS` from `backend()` (moto's S3 backend of one LocalCos), or returns None."""

    def __init__(self, backend: Any, moto_bucket: Any):
        self._backend = backend
        self._moto_bucket = moto_bucket   # COS bucket name -> moto bucket name

    def answer(self, environ: Dict[str, Any], req: Any, op: str, headers: Dict[str, str],
               query: str) -> Optional[MotoAnswer]:
        """moto's answer to this request, or None: moto's app must answer it (nothing was changed).

        `headers` are the request's S3 headers (lower-case), `query` the query moto would see.
        """
        if op not in OPERATIONS or not self._plain(op, headers):
            return None
        params = parse_qs(query, keep_blank_values=True) if query else {}
        if any(len(v) != 1 for v in params.values()) or not set(params) <= _QUERY[op]:
            return None
        backend = self._backend()
        bucket = backend.buckets.get(self._moto_bucket(req.bucket))
        if bucket is None or not _plain_bucket(bucket):
            return None
        version = params["versionId"][0] if "versionId" in params else None
        if op in ("GetObject", "HeadObject"):
            return self._read(backend, bucket, req, op, headers, version)
        if op == "PutObject":
            return self._put(environ, backend, bucket, req, headers)
        if op == "CopyObject":
            return self._copy(backend, bucket, req, headers)
        if op == "PutObjectTagging":
            return self._tag(environ, backend, bucket, req, version)
        return self._delete(backend, bucket, req, headers, version)

    @staticmethod
    def _plain(op: str, headers: Dict[str, str]) -> bool:
        allowed = _HEADERS[op]
        for name in headers:
            if name in _TRANSPORT or name in allowed:
                continue
            if name.startswith(_META) and op in ("PutObject", "CopyObject"):
                continue
            return False
        return "aws-chunked" not in headers.get("content-encoding", "")

    # -- reads ----------------------------------------------------------------------------
    def _read(self, backend: Any, bucket: Any, req: Any, op: str, headers: Dict[str, str],
              version: Optional[str]) -> Optional[MotoAnswer]:
        if version is not None and op == "HeadObject" and not bucket.is_versioned:
            return None   # moto answers 400
        if version is None and req.key not in bucket.keys:
            return _no_such_key(op)   # a ledger document not written yet: common, keep it fast
        key = _current(bucket, req.key, version)
        if key is None or (op == "GetObject" and key.storage_class in _ARCHIVED):
            return None
        if_match, if_none_match = headers.get("if-match"), headers.get("if-none-match")
        if op == "GetObject":
            if if_match and key.etag not in (if_match, f'"{if_match}"'):
                return None
            if if_none_match and key.etag in (if_none_match, f'"{if_none_match}"'):
                return None
        elif (if_match and key.etag != if_match) or (if_none_match and key.etag == if_none_match):
            return None
        key.advance()   # moto's get_object does this (restore progress)
        out: List[Tuple[str, str]] = []
        if op == "GetObject" and key.version_id != "null":
            out.append(("x-amz-version-id", str(key.version_id)))
        if op == "GetObject":
            out.extend(key.response_dict.items())
            out.extend(key.metadata.items())
        else:
            out.extend(key.metadata.items())
            out.extend(key.response_dict.items())
        out.append(("Accept-Ranges", "bytes"))
        if op == "HeadObject":
            return 200, _dedupe(out), b""
        body = key.value
        spec = headers.get("range", "")
        if spec:
            span = _single_range(spec, len(body))
            if span is None:
                return None
            begin, end = span
            out = [(n, v) for n, v in out if n.lower() != "content-length"]
            out += [("content-range", f"bytes {begin}-{end}/{len(body)}"),
                    ("content-length", str(end - begin + 1))]
            return 206, _dedupe(out), body[begin:end + 1]
        return 200, _dedupe(out), body

    # -- writes ---------------------------------------------------------------------------
    def _put(self, environ: Dict[str, Any], backend: Any, bucket: Any, req: Any,
             headers: Dict[str, str]) -> Optional[MotoAnswer]:
        tags = _header_tags(headers)
        if tags is None or not _valid_tags(backend, tags):
            return None
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        body = _read_body(environ, req)
        new_key = backend.put_object(self._moto_bucket(req.bucket), req.key, body,
                                     storage=headers.get("x-amz-storage-class", "STANDARD"))
        new_key.set_metadata(metadata_from_headers(_werkzeug_names(headers)))
        new_key.set_acl(bucket.acl)
        backend.put_object_tagging(new_key, tags)
        out = [(n, v) for n, v in new_key.response_dict.items() if n != "content-length"]
        return 200, out, b""

    def _copy(self, backend: Any, bucket: Any, req: Any, headers: Dict[str, str]
              ) -> Optional[MotoAnswer]:
        source = parse_copy_source(req.headers.get("x-cos-copy-source", ""))
        if source is None:
            return None
        source_bucket = backend.buckets.get(self._moto_bucket(source.bucket))
        if source_bucket is None or not _plain_bucket(source_bucket):
            return None
        original = _current(source_bucket, source.key, source.version_id)
        if (original is None or original.storage_class in _ARCHIVED or original.checksum_value
                or (source_bucket is bucket and source.key == req.key)):
            return None   # moto's errors, restore rules, checksums and copy-in-place rules
        tdirective = headers.get("x-amz-tagging-directive")
        tags = _header_tags(headers) if tdirective == "REPLACE" else {}
        if tags is None or not _valid_tags(backend, tags):
            return None
        backend.copy_object(original, self._moto_bucket(req.bucket), req.key,
                            storage=headers.get("x-amz-storage-class"),
                            mdirective=headers.get("x-amz-metadata-directive"),
                            metadata=metadata_from_headers(_werkzeug_names(headers)),
                            provided_version_id=source.version_id)
        new_key = _current(bucket, req.key, None)
        assert new_key is not None   # copy_object has just written it
        if bucket.acl is not None:
            new_key.set_acl(bucket.acl)
        if tdirective == "REPLACE":
            backend.put_object_tagging(new_key, tags)
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<CopyObjectResult>'
                f"<ETag>{escape(new_key.etag)}</ETag>"
                f"<LastModified>{new_key.last_modified_ISO8601}</LastModified>"
                "</CopyObjectResult>").encode("utf-8")
        out: List[Tuple[str, str]] = [("Content-Type", "application/xml")]
        if original.version_id != "null":
            out.append(("x-amz-copy-source-version-id", str(original.version_id)))
        out.extend(new_key.response_dict.items())
        out.append(("content-length", str(len(body))))
        return 200, _dedupe(out), body

    def _tag(self, environ: Dict[str, Any], backend: Any, bucket: Any, req: Any,
             version: Optional[str]) -> Optional[MotoAnswer]:
        key = _current(bucket, req.key, version)
        if key is None:
            return None   # missing key or version, or a delete marker: moto's errors
        body = _read_body(environ, req)
        tags = _xml_tags(body)
        if tags is None or not _valid_tags(backend, tags):
            environ["wsgi.input"] = io.BytesIO(body)   # moto's app reads it again
            return None
        backend.put_object_tagging(key, tags)
        return 200, [], b""

    def _delete(self, backend: Any, bucket: Any, req: Any, headers: Dict[str, str],
                version: Optional[str]) -> Optional[MotoAnswer]:
        if_match = headers.get("if-match")
        if if_match:
            key = _current(bucket, req.key, None)
            if key is None or if_match.replace('"', "") != key.etag.replace('"', ""):
                return None   # moto's NoSuchKey / PreconditionFailed
        _, meta = backend.delete_object(self._moto_bucket(req.bucket), req.key, version_id=version)
        return 204, [(f"x-amz-{name}", str(value)) for name, value in meta.items()], b""


def _no_such_key(op: str) -> MotoAnswer:
    """moto's app's answer for a key never written (or gone): HEAD's has no body, and Flask's
    default content type, which the dialect passes on as it does moto's."""
    if op == "HeadObject":
        return 404, [("Content-Type", "text/html; charset=utf-8")], b""
    return 404, [("Content-Type", "application/xml")], (
        b'<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>NoSuchKey</Code>'
        b"<Message>The specified key does not exist.</Message></Error>")


def _plain_bucket(bucket: Any) -> bool:
    """No policy, logging, default encryption or object lock: moto's app would act on those."""
    return not (bucket.policy or getattr(bucket, "logging", None) or bucket.encryption
                or getattr(bucket, "object_lock_enabled", False))


def _current(bucket: Any, key: str, version: Optional[str]) -> Optional[FakeKey]:
    """The key (or the given version) as moto's backend finds it; None for a delete marker."""
    if version is None:
        found = bucket.keys.get(key) if key in bucket.keys else None
    else:
        found = next((k for k in bucket.keys.getlist(key, []) if str(k.version_id) == str(version)),
                     None)
    return found if isinstance(found, FakeKey) else None


def _read_body(environ: Dict[str, Any], req: Any) -> bytes:
    req.body_read = True
    length = content_length(environ)
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _single_range(spec: str, length: int) -> Optional[Tuple[int, int]]:
    """(first, last) byte of one satisfiable `bytes=` range; None for anything moto treats otherwise."""
    unit, _, ranges = spec.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first, sep, last = ranges.strip().partition("-")
    if not sep or not (first.isdigit() or last.isdigit()) or any(
            part and not part.isdigit() for part in (first, last)):
        return None
    if first:
        begin = int(first)
        end = length - 1 if not last else min(int(last), length - 1)
    else:
        if int(last) == 0:
            return None
        begin, end = max(length - int(last), 0), length - 1
    if begin > end or begin >= length:
        return None   # moto's 416 or whole-object answers
    return begin, end


def _header_tags(headers: Dict[str, str]) -> Optional[Dict[str, str]]:
    value = headers.get("x-amz-tagging")
    if not value:
        return {}
    parsed = parse_qs(value, keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def _xml_tags(body: bytes) -> Optional[Dict[str, str]]:
    """`<Tagging><TagSet><Tag><Key/><Value/></Tag>…` as a dict; None when shaped otherwise."""
    try:
        root = ElementTree.fromstring(body)
    except Exception:   # malformed or hostile XML: moto's app answers it
        return None
    tag_set = root.find("TagSet") if root.tag == "Tagging" else None
    if tag_set is None or len(tag_set) == 0:
        return None
    tags: Dict[str, str] = {}
    for tag in tag_set:
        key = tag.find("Key")
        if tag.tag != "Tag" or key is None or not key.text:
            return None
        value = tag.find("Value")
        tags[key.text] = (value.text if value is not None else None) or ""
    return tags


def _valid_tags(backend: Any, tags: Dict[str, str]) -> bool:
    """The checks moto's put_object_tagging makes before it changes anything."""
    if not tags:
        return True
    if len(tags) > 10 or any(name.startswith("aws") for name in tags):
        return False
    return not backend.tagger.validate_tags(backend.tagger.convert_dict_to_tags_input(tags))


def _werkzeug_names(headers: Dict[str, str]) -> Dict[str, str]:
    """Header names spelled as moto's app sees them (werkzeug title-cases them)."""
    return {name.title(): value for name, value in headers.items()}


def _dedupe(headers: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Later values win, as in moto's header dicts (case-sensitive names, like moto's)."""
    merged: Dict[str, str] = {}
    for name, value in headers:
        merged[name] = value
    return list(merged.items())
