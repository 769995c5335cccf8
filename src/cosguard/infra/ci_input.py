"""How an object is named to CI's virus detection: `Input/Object`, or a pre-signed `Input/Url`.

cos-python-sdk-v5 writes the submit body with xmltodict, which escapes only `& < >`. COS keys may
hold characters XML 1.0 cannot carry at all (C0 controls other than TAB/LF/CR: CI answers
`MalformedXML`), or that a parser changes on the way (CR and CRLF become LF in element text, so CI
would scan another key), or that a service may trim (leading or trailing whitespace). Numeric
character references cannot help: XML 1.0 forbids `&#1;` too, and whether CI keeps a `&#13;` or
echoes it back intact is unknown. Such a key goes as `Input/Url` instead (spec: "choose one of
Object or Url"): a GET URL pre-signed for exactly that key (and version), on the bucket's own COS
host, which percent-encoding carries exactly. CI echoes the `Url` back, and `key_in_url` reads the
key out of it again to bind the job to its upload.

What it costs: CI downloads the object through the URL (COS bills the read as any GET; a bucket
policy that denies reads from outside the account makes the job fail, which the failed action
handles), and the URL is a read credential for that one key (or version) until it expires:
URL_TTL_SECONDS, or sooner when the temporary keys that signed it expire (COS Python SDK page,
doc 236/35153). It never appears in cosguard's logs, notifications or manifests.
"""
from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote, unquote, urlencode, urlsplit

from qcloud_cos.cos_exception import CosClientError

from ..errors import CloudPermanentError

# CI usually scans within minutes; a job whose URL expired before CI fetched it fails, and the
# failed action (tag `error` or quarantine) handles it.
URL_TTL_SECONDS = 6 * 3600
# C1 controls and the Unicode line separators: XML 1.0 carries them, but XML 1.1 parsers turn
# NEL/LS into LF; not risked either.
_LINE_LIKE = frozenset({0x85, 0x2028, 0x2029})


def object_form_carries(key: str) -> bool:
    """Whether `<Object>key</Object>` reaches any XML parser, and comes back, unchanged."""
    if not key or key != key.strip():
        return False
    for char in key:
        point = ord(char)
        if point < 0x20 or 0x7F <= point <= 0x9F or point in _LINE_LIKE or 0xD800 <= point <= 0xDFFF \
                or point in (0xFFFE, 0xFFFF):
            return False
    return True


def cos_host(bucket: str, region: str) -> str:
    """The bucket's own COS host, which CI can reach (never a configured private endpoint)."""
    return f"{bucket}.cos.{region}.myqcloud.com"


def url_path(key: str) -> str:
    """The key as cos-python-sdk-v5 puts it in a URL path (`./` escaped so no client folds it)."""
    return "/" + quote(key.encode("utf-8"), "/-_.~").replace("./", ".%2F")


def presigned_get_url(client: Any, settings: Any, bucket: str, key: str, version_id: Optional[str] = None,
                      expires: int = URL_TTL_SECONDS) -> str:
    """A GET URL for exactly `key` (and `version_id`) on the bucket's public COS host, signed by
    `client` (a CosS3Client) with the Host bound; the session token travels as
    `x-cos-security-token`. CloudPermanentError `UnsupportedKey` for a key with no UTF-8 spelling."""
    host = cos_host(bucket, settings.region)
    params = {"versionId": version_id} if version_id and version_id != "null" else {}
    try:
        authorization = client.get_auth(Method="GET", Bucket=bucket, Key=key, Expired=expires,
                                        Headers={"Host": host}, Params=dict(params), SignHost=True)
        path = url_path(key)
    except (UnicodeError, CosClientError) as exc:  # a lone surrogate: no URL (nor COS object) carries it
        raise CloudPermanentError(f"SubmitVirusJob: the key cannot be named in a URL ({exc})",
                                  code="UnsupportedKey", operation="SubmitVirusJob") from exc
    query = dict(item.split("=", 1) for item in authorization.split("&"))
    query.update(params)
    if settings.session_token:
        query["x-cos-security-token"] = settings.session_token
    scheme = "http" if str(settings.cos_endpoint or "").startswith("http://") else "https"
    return f"{scheme}://{host}{path}?{urlencode(query)}"


def key_in_url(url: str, bucket: str) -> str:
    """The key a pre-signed URL of `bucket` names; "" for a URL of any other host."""
    parts = urlsplit(url or "")
    if not (parts.hostname or "").startswith(f"{bucket}.cos.") or not parts.path.startswith("/"):
        return ""
    return unquote(parts.path[1:])


__all__ = ["URL_TTL_SECONDS", "cos_host", "key_in_url", "object_form_carries", "presigned_get_url", "url_path"]
