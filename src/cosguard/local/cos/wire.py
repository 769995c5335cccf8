"""COS on the wire: request ids, the XML error body, and moto's S3 answers rewritten as COS's.

Only metadata of answers is rewritten here (headers, listing and result XML); object bytes never are.
"""
from __future__ import annotations

import base64
import html
import itertools
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote
from xml.sax.saxutils import escape

from .naming import BucketNames, cos_storage_class

_sequence = itertools.count(1)


class CosError(Exception):
    """An answer COS gives instead of doing the work: status, code, message (rendered as XML)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def content_length(environ: Dict[str, Any]) -> int:
    """The request's declared body length; 0 when absent or not a number."""
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def new_request_id() -> str:
    """Shaped like COS's: base64 of `<hex time>_<hex>_<n>_<hex>` (the §3.4 sample decodes so)."""
    raw = f"{int(time.time()):x}_{os.urandom(4).hex()}_{next(_sequence) % 10000}_{os.urandom(3).hex()}"
    return base64.b64encode(raw.encode()).decode()


def new_trace_id() -> str:
    return base64.b64encode(os.urandom(48)).decode()


def error_body(code: str, message: str, resource: str, request_id: str, trace_id: str) -> bytes:
    """COS's error document (reference §2.6): Code, Message, Resource, RequestId, TraceId."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"\t<Code>{escape(code)}</Code>\n\t<Message>{escape(message)}</Message>\n"
            f"\t<Resource>{escape(resource)}</Resource>\n\t<RequestId>{escape(request_id)}</RequestId>\n"
            f"\t<TraceId>{escape(trace_id)}</TraceId>\n</Error>").encode("utf-8")


_CODE = re.compile(rb"<Code>(.*?)</Code>", re.S)
_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)


def parse_error(body: bytes) -> Optional[Tuple[str, str]]:
    """(code, message) from moto's S3 error body, None when it carries none (HEAD answers)."""
    code = _CODE.search(body or b"")
    if not code:
        return None
    message = _MESSAGE.search(body)
    text = message.group(1).decode("utf-8", "replace") if message else ""
    if text.startswith("<![CDATA[") and text.endswith("]]>"):   # moto 5.1's templates
        return html.unescape(code.group(1).decode("utf-8", "replace")), text[9:-3]
    return html.unescape(code.group(1).decode("utf-8", "replace")), html.unescape(text)


# moto's headers that have no COS counterpart.
_DROP_RESPONSE_HEADERS = {"x-amz-request-id", "x-amz-id-2", "server", "x-amzn-requestid",
                          "content-length", "connection", "date"}
# The only other headers of moto's that reach a client (x-amz-* ones are renamed x-cos-*): COS's
# common and object response headers (docs 436/7729, 436/7753). Anything else moto adds (5.2.6's
# `status` on copies, say) is dropped: COS never sends it.
_KEPT_RESPONSE_HEADERS = {"content-type", "content-encoding", "content-disposition", "content-language",
                          "content-range", "cache-control", "expires", "last-modified", "etag",
                          "accept-ranges", "location"}


def canonical_header(name: str) -> str:
    """COS's spelling: `x-cos-*` lower-case, `ETag`, others capitalised (`Content-Type`).

    The SDK returns `dict(response.headers)`, so callers index it with exactly these names.
    """
    lower = name.lower()
    if lower.startswith("x-cos-"):
        return lower
    if lower == "etag":
        return "ETag"
    return "-".join(part.capitalize() for part in lower.split("-"))


def translate_response_headers(headers: List[Tuple[str, str]], names: BucketNames
                               ) -> Dict[str, str]:
    """moto's headers renamed for COS: x-amz-* -> x-cos-*, storage classes by their COS names."""
    out: Dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _DROP_RESPONSE_HEADERS or lower.startswith("access-control-"):
            continue   # moto's own CORS headers: answers.py applies the bucket's rules instead
        if not lower.startswith("x-amz-") and lower not in _KEPT_RESPONSE_HEADERS:
            continue
        if lower.startswith("x-amz-"):
            lower = "x-cos-" + lower[len("x-amz-"):]
            if lower == "x-cos-storage-class":
                value = cos_storage_class(value)
            value = names.strip(value)
        elif lower == "content-type" and value == "binary/octet-stream":
            value = "application/octet-stream"   # COS's default content type
        out.setdefault(canonical_header(lower), value)
    return out


_STORAGE_CLASS = re.compile(rb"<StorageClass>([A-Z_]+)</StorageClass>")
_XMLNS = re.compile(rb' xmlns="http://s3\.amazonaws\.com/doc/2006-03-01/?"')
_LOCATION = re.compile(rb"<Location>[^<]*</Location>")
_ENTRY = re.compile(rb"<(Contents|Version)>(.*?)</\1>", re.S)
_KEY = re.compile(rb"<Key>(.*?)</Key>", re.S)
_SIZE = re.compile(rb"<Size>\d+</Size>")


def translate_xml_body(body: bytes, names: BucketNames, location: Optional[str] = None,
                       url_encoded_keys: bool = False,
                       size_of: Optional[Callable[[str], Optional[int]]] = None) -> bytes:
    """A moto XML answer as COS writes it: COS bucket names and storage classes, no S3 namespace.

    `location` replaces <Location> (CompleteMultipartUpload); `size_of(key)` returns a
    simulated size for a listed key, or None to keep the stored one.
    """
    body = names.strip(body.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    body = _XMLNS.sub(b"", body)
    body = _STORAGE_CLASS.sub(
        lambda m: b"<StorageClass>" + cos_storage_class(m.group(1).decode()).encode() + b"</StorageClass>",
        body)
    if location is not None:
        body = _LOCATION.sub(b"<Location>" + escape(location).encode("utf-8") + b"</Location>", body)
    if size_of is not None:
        def resize(entry: "re.Match[bytes]") -> bytes:
            key_match = _KEY.search(entry.group(2))
            if not key_match:
                return entry.group(0)
            key = html.unescape(key_match.group(1).decode("utf-8"))
            size = size_of(unquote(key) if url_encoded_keys else key)
            if size is None:
                return entry.group(0)
            inner = _SIZE.sub(f"<Size>{size}</Size>".encode(), entry.group(2))
            return b"<%s>%s</%s>" % (entry.group(1), inner, entry.group(1))
        body = _ENTRY.sub(resize, body)
    return body
