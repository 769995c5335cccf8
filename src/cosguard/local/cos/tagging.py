"""COS's object tag limits, on every request that can set tags.

PUT Object tagging (doc 436/42997): at most 10 tags; a key is non-empty and under 128 bytes, a
value under 256 bytes (UTF-8). The object tag overview (doc 436/35665) says the same in
characters (key 1-127, value 1-255). moto checks S3's rule in characters (128 / 256), so a
128-byte key, or 43 CJK characters, passed it where COS refuses: the bytes are checked here,
before moto, for `PUT ?tagging` and for the `x-cos-tagging` header of PUT Object, PUT Object -
Copy (with `x-cos-tagging-directive: Replaced`) and Initiate Multipart Upload, and the
`x-cos-tagging` form field of POST Object.

COS documents the limits but not the error code of a breach: the answer is a 400 with S3's
codes, as moto gives them (`BadRequest` for more than 10 tags, `InvalidTag` otherwise).
"""
from __future__ import annotations

import io
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from defusedxml import ElementTree

from .wire import CosError, content_length

MAX_TAGS = 10
MAX_KEY_BYTES = 127     # "长度小于128字节"
MAX_VALUE_BYTES = 255   # "长度小于256字节"
_MAX_TAGGING_BODY = 64 * 1024
_HEADER_OPS = frozenset({"PutObject", "InitiateMultipartUpload"})

Tags = List[Tuple[str, str]]


def check(tags: Tags) -> None:
    """CosError unless `tags` fit COS's limits."""
    if len(tags) > MAX_TAGS:
        raise CosError(400, "BadRequest", f"Object tags cannot be greater than {MAX_TAGS}")
    for key, value in tags:
        if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise CosError(400, "InvalidTag", f"The tag key must be 1 to {MAX_KEY_BYTES} bytes: {key!r}")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise CosError(400, "InvalidTag", f"The tag value must be at most {MAX_VALUE_BYTES} bytes "
                                              f"(tag {key!r})")


def from_header(value: str) -> Tags:
    """`x-cos-tagging: k1=v1&k2=v2` (URL-encoded), as COS's docs write it."""
    return parse_qsl(value, keep_blank_values=True) if value else []


def check_request(environ: Dict[str, Any], req: Any, op: str) -> None:
    """COS's tag limits for a request that sets tags; other requests pass untouched."""
    header = req.headers.get("x-cos-tagging", "")
    if op in _HEADER_OPS or (op == "CopyObject" and req.headers.get(
            "x-cos-tagging-directive", "").lower() == "replaced"):
        check(from_header(header))
    elif op == "PutObjectTagging":
        tags = _body_tags(environ)
        if tags is not None:
            check(tags)


def check_form(fields: Dict[str, str]) -> Tags:
    """The tags of a POST Object form (its `x-cos-tagging` field), checked."""
    tags = from_header(fields.get("x-cos-tagging", ""))
    check(tags)
    return tags


def _body_tags(environ: Dict[str, Any]) -> Optional[Tags]:
    """The tags of a `PUT ?tagging` body, read and put back for moto; None if it is not a
    tag set (moto answers malformed XML as it does)."""
    length = content_length(environ)
    if length <= 0 or length > _MAX_TAGGING_BODY:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        root = ElementTree.fromstring(body)
    except Exception:   # malformed or hostile XML: left to moto
        return None
    tag_set = root.find("TagSet") if root.tag == "Tagging" else None
    if tag_set is None:
        return None
    return [((tag.findtext("Key") or ""), (tag.findtext("Value") or "")) for tag in tag_set
            if tag.tag == "Tag"]


def get_object_tagging(cos: Any, req: Any) -> Tuple[int, Dict[str, str], bytes]:
    """GET ?tagging, answered here: moto refuses it for archived objects, COS (like S3) does not."""
    version = req.query.get("versionId") or None
    if not cos.bucket_exists(req.bucket):
        raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
    obj = cos.store.find(req.bucket, req.key, version)
    if obj is None:
        raise (CosError(404, "NoSuchVersion", "The specified version does not exist.") if version
               else CosError(404, "NoSuchKey", "The specified key does not exist."))
    tags = cos.moto_backend().get_object_tagging(obj)["Tags"]
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Tagging><TagSet>'
            + "".join(f"<Tag><Key>{escape(t['Key'])}</Key><Value>{escape(t['Value'])}</Value></Tag>"
                      for t in tags)
            + "</TagSet></Tagging>").encode("utf-8")
    headers = {"Content-Type": "application/xml"}
    if obj.version_id not in (None, "null"):
        headers["x-cos-version-id"] = str(obj.version_id)
    return 200, headers, body
