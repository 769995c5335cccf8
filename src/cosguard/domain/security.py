"""The callback URL's credentials: a per-bucket token derived from COSGUARD_CALLBACK_TOKEN.

The URL carries `bucket` and `token = HMAC-SHA256(secret, bucket)`, so the secret itself never
travels, and a token leaked for one bucket is worthless for another. Compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode, urlsplit, urlunsplit


def bucket_token(secret: str, bucket: str) -> str:
    return hmac.new(secret.encode("utf-8"), f"cosguard-callback\n{bucket}".encode("utf-8"),
                    hashlib.sha256).hexdigest()


def token_matches(secret: str, bucket: str, presented: str) -> bool:
    return hmac.compare_digest(bucket_token(secret, bucket).encode("ascii"),
                               presented.encode("utf-8", "replace"))


def callback_url(base: str, secret: str, bucket: str) -> str:
    """`base` with this bucket's `bucket` and `token` query parameters added."""
    parts = urlsplit(base)
    query = "&".join(q for q in (parts.query, urlencode({"bucket": bucket,
                                                         "token": bucket_token(secret, bucket)})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


RELEASED_META = "cosguard-released"


def released_marker(secret: str, bucket: str, key: str, etag: str) -> str:
    """Metadata a restore puts on the object it puts back, so the upload trigger does not scan it
    into quarantine again. Bound to the content (ETag): copying the header onto other bytes fails."""
    message = f"cosguard-released\n{bucket}\n{key}\n{etag.strip(chr(34))}"
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def is_released(secret: str, bucket: str, key: str, etag: str, metadata: dict) -> bool:
    presented = metadata.get(RELEASED_META, "")
    return bool(presented) and hmac.compare_digest(released_marker(secret, bucket, key, etag).encode("ascii"),
                                                   presented.encode("utf-8", "replace"))
