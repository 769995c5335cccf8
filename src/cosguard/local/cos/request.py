"""One request as COS sees it (the bucket from Host, the decoded key, lower-cased headers) and as
moto's S3 gets it: `x-cos-*` headers as `x-amz-*`, COS's copy source as a moto path, the query minus
a pre-signed URL's fields (dialect.py forwards it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, quote

from ..auth import PRESIGN_FIELDS
from .addressing import resolve
from .naming import moto_storage_class, parse_copy_source
from .wire import CosError

_DIRECTIVES = {"copy": "COPY", "replaced": "REPLACE"}
# Headers the dialect consumes itself, or that moto must not see.
_CONSUMED = {"x-cos-security-token", "x-cos-forbid-overwrite", "x-cos-sdk-retry",
             "x-cos-traffic-limit", "authorization", "host", "x-moto-account-id"}
_EMPTY_MEANS_ABSENT = {"marker", "key-marker", "version-id-marker", "upload-id-marker",
                       "part-number-marker", "delimiter"}
_PRESIGN_PARAMS = PRESIGN_FIELDS | {"x-cos-security-token"}   # a pre-signed URL's, not moto's


@dataclass
class CosRequest:
    """One request as COS sees it: the bucket from Host, the decoded key, lower-cased headers."""

    method: str
    host: str
    bucket: str
    region: Optional[str]
    key: str
    raw_path: str
    query_string: str
    query: Dict[str, str]
    headers: Dict[str, str]
    source_ip: str
    signed_paths: Tuple[str, ...] = ()   # raw paths the client may have signed (addressing.py)
    body_read: bool = False     # moto has consumed the request body
    after_response: List[Callable[[], None]] = field(default_factory=list)

    @property
    def resource(self) -> str:
        return f"{self.host}{self.raw_path}"


def parse_request(environ: Dict[str, Any]) -> CosRequest:
    headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.lower().replace("_", "-")] = environ[name]
    query_string = environ.get("QUERY_STRING", "")
    host = headers.get("host", "")
    address = resolve(environ, host)
    return CosRequest(method=environ.get("REQUEST_METHOD", "GET").upper(), host=host,
                      bucket=address.bucket, region=address.region, key=address.key,
                      raw_path=address.raw_path, query_string=query_string,
                      query=dict(parse_qsl(query_string, keep_blank_values=True)),
                      headers=headers, source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
                      signed_paths=address.signed_paths())


def moto_query(query_string: str) -> str:
    """The query minus empty pagination markers (COS reads `key-marker=` as absent, moto as a
    marker that skips the first version) and minus a pre-signed URL's signature."""
    if not query_string:
        return ""
    kept = [part for part in query_string.split("&")
            if (part.split("=", 1)[0].lower() not in _EMPTY_MEANS_ABSENT or part.partition("=")[2])
            and part.split("=", 1)[0].lower() not in _PRESIGN_PARAMS]
    return "&".join(kept)


def translate_headers(req: CosRequest, cos: Any) -> Dict[str, str]:
    """COS request headers as moto's S3 wants them."""
    out: Dict[str, str] = {}
    for name, value in req.headers.items():
        if name in _CONSUMED:
            continue
        if not name.startswith("x-cos-"):
            out[name] = value
            continue
        s3_name = "x-amz-" + name[len("x-cos-"):]
        if name == "x-cos-storage-class":
            value = moto_storage_class(value) or ""
            if not value:
                raise CosError(400, "InvalidStorageClass",
                               f"The storage class you specified is not valid: {req.headers[name]}")
        elif name in ("x-cos-metadata-directive", "x-cos-tagging-directive"):
            value = _DIRECTIVES.get(value.lower(), value)
        elif name == "x-cos-acl" and value == "default":
            continue   # COS's "inherit the bucket ACL"; S3 has no such canned ACL
        elif name == "x-cos-copy-source":
            value = _copy_source(value, cos)
        out[s3_name] = value
    out["x-moto-account-id"] = cos.account_id
    out["host"] = "localhost"   # moto reads the bucket from the path for this host
    out["authorization"] = "cosguard-local"   # checked above; without one moto acts anonymous
    return out

def _copy_source(value: str, cos: Any) -> str:
    source = parse_copy_source(value)
    if source is None:
        raise CosError(400, "InvalidArgument", f"x-cos-copy-source is malformed: {value}")
    if source.region is not None and source.region != cos.region:
        raise CosError(404, "NoSuchBucket", "The copy source bucket does not exist here.")
    path = f"/{cos.names.to_moto(source.bucket)}/{quote(source.key, safe='/-_.~')}"
    if source.version_id:
        path += f"?versionId={quote(source.version_id, safe='')}"
    return path


__all__ = ["CosRequest", "moto_query", "parse_request", "translate_headers"]
