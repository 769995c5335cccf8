"""Verifies COS's `q-sign-algorithm=sha1` signature, as COS and CI do.

The algorithm (reference/tencent-formats.md §2.4) signs the method, the *decoded* path, the
parameters named in `q-url-param-list` and the headers named in `q-header-list`. It arrives either
in the Authorization header or, for a pre-signed URL, as the query parameters `q-sign-algorithm`,
`q-ak`, … `q-signature` (plus `x-cos-security-token` for temporary keys); both verify alike.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional
from urllib.parse import quote, unquote


@dataclass(frozen=True)
class Credentials:
    """The key pair the local cloud accepts; `token` set means a security token is required too."""

    secret_id: str
    secret_key: str
    token: Optional[str] = None


class SignatureError(Exception):
    """A request whose signature does not verify; rendered as a 403 with COS's XML error body."""

    status = 403

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _hmac_sha1(key: str, msg: str) -> str:
    return hmac.new(key.encode("utf-8"), msg.encode("utf-8"), hashlib.sha1).hexdigest()


def sign(secret_key: str, method: str, path: str, params: Mapping[str, str],
         headers: Mapping[str, str], key_time: str) -> str:
    """The q-signature for a request; `path` is the decoded path, maps are already filtered."""
    fmt_params = "&".join(f"{_encode(k).lower()}={_encode(v)}" for k, v in
                          sorted(((k.lower(), v) for k, v in params.items())))
    fmt_headers = "&".join(f"{_encode(k).lower()}={_encode(v)}" for k, v in
                           sorted(((k.lower(), v) for k, v in headers.items())))
    http_string = f"{method.lower()}\n{path}\n{fmt_params}\n{fmt_headers}\n"
    string_to_sign = f"sha1\n{key_time}\n{hashlib.sha1(http_string.encode('utf-8')).hexdigest()}\n"
    sign_key = _hmac_sha1(secret_key, key_time)
    return _hmac_sha1(sign_key, string_to_sign)


def parse_authorization(value: str) -> dict:
    """The Authorization header's fields; raises SignatureError when it is not COS's sha1 form."""
    fields = {}
    for part in value.split("&"):
        name, sep, val = part.partition("=")
        if not sep:
            raise SignatureError("AccessDenied", "Authorization header is malformed")
        fields[name] = val
    required = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list",
                "q-url-param-list", "q-signature")
    missing = [name for name in required if name not in fields]
    if missing:
        raise SignatureError("AccessDenied", "Signature lacks " + ", ".join(missing))
    if fields["q-sign-algorithm"] != "sha1":
        raise SignatureError("AccessDenied", "q-sign-algorithm must be sha1")
    return fields


PRESIGN_FIELDS = frozenset(("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time",
                            "q-header-list", "q-url-param-list", "q-signature"))


def is_presigned(query: Mapping[str, str]) -> bool:
    """A pre-signed URL: the signature is in the query (an Authorization header still wins)."""
    return any(name.lower() == "q-signature" for name in query)


def _signature_fields(lower_headers: Mapping[str, str], lower_query: Mapping[str, str]) -> dict:
    auth = lower_headers.get("authorization", "")
    if auth:
        return parse_authorization(auth)
    if "q-signature" in lower_query:
        return parse_authorization("&".join(f"{name}={lower_query[name]}"
                                            for name in PRESIGN_FIELDS if name in lower_query))
    raise SignatureError("AccessDenied", "Access Denied: no Authorization header or signed URL")


def verify(credentials: Credentials, method: str, raw_path: str, query: Mapping[str, str],
           headers: Mapping[str, str], now: Optional[float] = None,
           other_paths: Iterable[str] = ()) -> None:
    """Raise SignatureError unless the request is signed by `credentials` and not expired.

    `raw_path` is the path as it arrived (percent-encoded); `query` the decoded query parameters;
    `headers` any case-insensitive mapping of the request headers. `other_paths` are further raw
    paths the client may have signed for the same resource (path-style addressing, see
    cos/addressing.py); the signature must match one of them.
    """
    lower_headers = {k.lower(): v for k, v in headers.items()}
    lower_query = {k.lower(): v for k, v in query.items()}
    fields = _signature_fields(lower_headers, lower_query)
    if fields["q-ak"] != credentials.secret_id:
        raise SignatureError("InvalidAccessKeyId", "The access key Id format you provided is invalid")
    key_time = fields["q-key-time"]
    try:
        start, end = (int(x) for x in fields["q-sign-time"].split(";"))
    except ValueError:
        raise SignatureError("AccessDenied", "q-sign-time is malformed") from None
    now = time.time() if now is None else now
    if not start <= now <= end:
        raise SignatureError("AccessDenied", "Request has expired")
    header_names = [h for h in fields["q-header-list"].split(";") if h]
    param_names = [p for p in fields["q-url-param-list"].split(";") if p]
    try:
        signed_headers = {name: lower_headers[name] for name in header_names}
        signed_params = {name: lower_query[name] for name in param_names}
    except KeyError as exc:
        raise SignatureError("AccessDenied", f"signed field {exc.args[0]!r} is not in the request") from None
    matches = [hmac.compare_digest(sign(credentials.secret_key, method, unquote(path),
                                        signed_params, signed_headers, key_time),
                                   fields["q-signature"])
               for path in (raw_path, *other_paths)]
    if not any(matches):
        raise SignatureError("SignatureDoesNotMatch",
                             "The calculated signature does not match the signature you provided")
    if credentials.token is not None:
        presented = (lower_headers.get("x-cos-security-token") or lower_headers.get("x-ci-security-token")
                     or lower_query.get("x-cos-security-token") or lower_query.get("x-ci-security-token"))
        if not presented or not hmac.compare_digest(presented, credentials.token):
            raise SignatureError("InvalidAccessKeyId", "The security token is missing or invalid")
