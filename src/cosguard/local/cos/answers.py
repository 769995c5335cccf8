"""Where moto's S3 answer differs from COS's, the COS answer: listing, bucket region,
versioning document, CRC64 headers, multipart part sizes, PUT Bucket's headers, CORS, APPEND Object.

`before` also checks, in one place, the request rules COS has and moto lacks: tag limits
(tagging.py), key and metadata sizes (limits.py), copy preconditions, appendable copy sources.
The dialect calls `before` (which may answer by itself, or prepare what `after` needs) and
`after` (which rewrites a successful answer); CORS is applied to every answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Dict, Optional, Tuple

from . import cors, listing, multipart, tagging
from .crc64 import CrcCache
from .naming import parse_copy_source
from .wire import CosError

CRC_HEADER = "x-cos-hash-crc64ecma"
Answer = Tuple[int, Dict[str, str], bytes]
# moto's fixed S3 owner (canonical id, display name "webfile") in ACL and listing answers.
_MOTO_OWNER_ID = b"75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
_MOTO_OWNER = re.compile(rb"<DisplayName>webfile</DisplayName><ID>[0-9a-f]+</ID>|"
                         rb"<ID>[0-9a-f]+</ID><DisplayName>webfile</DisplayName>")
_CRC_OPS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload", "GetObject",
                      "HeadObject", "UploadPart"})


_COPY_IF = "x-cos-copy-source-"
_COPY_CONDITIONS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


def _copy_conditions_hold(wanted: Dict[str, str], etag: str, last_modified: datetime) -> bool:
    """Each given condition against the source; a date that does not parse is ignored, as HTTP
    ignores one (RFC 9110 13.1.3/13.1.4). Dates compare at the second, HTTP-date's resolution."""
    if_match, if_none_match = wanted["if-match"].strip('"'), wanted["if-none-match"].strip('"')
    if (if_match and if_match != etag) or (if_none_match and if_none_match == etag):
        return False
    changed = _utc(last_modified).replace(microsecond=0)
    since, unmodified_since = _http_date(wanted["if-modified-since"]), _http_date(wanted["if-unmodified-since"])
    return not ((since is not None and changed <= since)
                or (unmodified_since is not None and changed > unmodified_since))


def _http_date(value: str) -> Optional[datetime]:
    try:
        return _utc(parsedate_to_datetime(value)) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _utc(moment: datetime) -> datetime:
    """Naive UTC (moto keeps naive UTC times; a parsed HTTP-date is aware)."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass
class Pending:
    answer: Optional[Answer] = None   # answered without moto
    crc: Optional[int] = None         # the CRC a completing multipart upload will have


class CosAnswers:
    """One LocalCos's COS-only answers; holds the CRC cache of its object versions."""

    def __init__(self, cos: Any):
        self._cos = cos
        self.crcs = CrcCache()

    def _bucket(self, bucket: str) -> Any:
        return self._cos.moto_backend().buckets.get(self._cos.names.to_moto(bucket))

    def _require_bucket(self, bucket: str) -> Any:
        found = self._bucket(bucket)
        if found is None:
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        return found

    # -- before moto ----------------------------------------------------------------------
    def before(self, environ: Dict[str, Any], req: Any, op: str) -> Pending:
        tagging.check_request(environ, req, op)                    # COS's tag limits (tagging.py)
        self._cos.limits.check_request(op, req.key, req.headers)   # key and metadata sizes
        appendables = self._cos.appendables   # APPEND Object, which moto lacks (append.py)
        if op == "AppendObject":
            return Pending(answer=appendables.append(environ, req)[0])
        if op in ("CopyObject", "UploadPartCopy"):
            appendables.refuse_copy_of_appendable(req.headers.get("x-cos-copy-source", ""))
            self._copy_preconditions(req)
        if op == "GetBucket" and "list-type" not in req.query:
            found = self._require_bucket(req.bucket)
            body = listing.render(req.bucket, found.keys, req.query,
                                  lambda key, size: self._cos.store.size_of(req.bucket, key, size))
            return Pending(answer=(200, {"Content-Type": "application/xml"}, body))
        if op == "GetBucketVersioning":
            found = self._require_bucket(req.bucket)
            status = found.versioning_status
            inner = f"<Status>{status}</Status>" if status in ("Enabled", "Suspended") else ""
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration>'
                    f"{inner}</VersioningConfiguration>").encode("utf-8")
            return Pending(answer=(200, {"Content-Type": "application/xml"}, body))
        if op == "GetBucketLocation":   # moto's is empty for its default region
            self._require_bucket(req.bucket)
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint>'
                    f"{self._cos.region}</LocationConstraint>").encode("utf-8")
            return Pending(answer=(200, {"Content-Type": "application/xml"}, body))
        if op == "CompleteMultipartUpload":
            body = multipart.read_complete_body(environ)
            req.body_read = True
            found = self._require_bucket(req.bucket)
            upload = found.multiparts.get(req.query.get("uploadId", ""))
            if upload is not None:
                return Pending(crc=multipart.check_complete(
                    upload, multipart.part_numbers(body), self.crcs))
        return Pending()

    def _copy_preconditions(self, req: Any) -> None:
        """`x-cos-copy-source-If-Match` / `-If-None-Match` / `-If-Modified-Since` /
        `-If-Unmodified-Since` (PUT Object - Copy, doc 436/10881; Upload Part - Copy, doc 436/8287):
        412 when one does not hold. moto ignores a copy's If-Match and dates; checked here, before
        either path or operation answers, so a copy of since-overwritten bytes never lands."""
        wanted = {name: req.headers.get(_COPY_IF + name, "") for name in _COPY_CONDITIONS}
        if not any(wanted.values()):
            return
        source = parse_copy_source(req.headers.get("x-cos-copy-source", ""))
        found = self._cos.store.find(source.bucket, source.key, source.version_id) if source else None
        if found is None:   # nothing to compare: moto answers the missing source or malformed header
            return
        if not _copy_conditions_hold(wanted, found.etag.strip('"'), found.last_modified):
            raise CosError(412, "PreconditionFailed", "At least one of the preconditions you specified did not hold.")

    # -- after a successful moto answer ---------------------------------------------------
    def after(self, req: Any, op: str, pending: Pending, out: Dict[str, str], body: bytes) -> bytes:
        """Rewrites `out` in place; returns the body, with moto's S3 owner made a COS one."""
        if op not in ("GetObject", "HeadObject") and (     # object bytes are never rewritten
                _MOTO_OWNER_ID in body or b"<DisplayName>webfile</DisplayName>" in body):
            account = req.bucket.rsplit("-", 1)[-1] if req.bucket else self._cos.account_id
            owner = f"qcs::cam::uin/{account}:uin/{account}"
            body = _MOTO_OWNER.sub(("<ID>%s</ID><DisplayName>%s</DisplayName>" % (
                owner, owner)).encode("utf-8"), body).replace(_MOTO_OWNER_ID, owner.encode("utf-8"))
        if op in ("GetObject", "HeadObject"):   # x-cos-object-type, for an appendable object only
            out.update(self._cos.appendables.headers_for(
                self._cos.store.find(req.bucket, req.key, req.query.get("versionId") or None)))
        if op == "HeadBucket":
            out["x-cos-bucket-region"] = self._cos.region
        elif op == "PutBucket":
            out.pop("Location", None)   # COS answers PUT Bucket with common headers only
        elif op in _CRC_OPS:
            crc = self._crc(req, op, pending, out)
            if crc is not None:
                out[CRC_HEADER] = str(crc)
        return body

    def _crc(self, req: Any, op: str, pending: Pending, out: Dict[str, str]) -> Optional[int]:
        if op == "UploadPart":
            found = self._bucket(req.bucket)
            upload = found.multiparts.get(req.query.get("uploadId", "")) if found else None
            part = upload.parts.get(int(req.query.get("partNumber", "0"))) if upload else None
            return self.crcs.of(part) if part is not None else None
        version = req.query.get("versionId") if op in ("GetObject", "HeadObject") \
            else out.get("x-cos-version-id")
        stored = self._cos.store.find(req.bucket, req.key, version)
        if stored is None:
            return None
        if op == "CompleteMultipartUpload" and pending.crc is not None:
            return self.crcs.remember(stored, pending.crc)
        return self.crcs.of(stored)

    # -- CORS -----------------------------------------------------------------------------
    def preflight(self, req: Any) -> Answer:
        found = self._require_bucket(req.bucket)
        return 200, cors.preflight(cors.rules_of(found), req.headers), b""

    def cors_headers(self, req: Any) -> Dict[str, str]:
        if "origin" not in req.headers or not req.bucket:
            return {}
        found = self._bucket(req.bucket)
        return cors.actual(cors.rules_of(found), req.method, req.headers) if found else {}
