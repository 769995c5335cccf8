"""The callback URL's credentials and the release marker, both sealed (see seal.py).

Each submission gets its own callback URL: `bucket`, `ref` (a digest of bucket, key and upload
identity: the key never travels), `exp` (Unix seconds) and `token = seal("callback", bucket, ref,
exp)`. A URL seen by an uploader is therefore worth one object's re-checks until it expires,
never a bucket's. The callback then requires the job's sealed ledger entry to name the same `ref`.
The token names its key (seal.py): a URL issued before a rotation verifies under
COSGUARD_CALLBACK_TOKEN_PREVIOUS until its window closes, so a job in flight at the rotation is
still answered by its callback.
"""
from __future__ import annotations

import hashlib
import json
from typing import Mapping, Optional, Tuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from .seal import Sealer

# Whether and how long CI retries a callback is unknown (docs/tencent-facts.md); the local CI makes
# one attempt unless `callback_retries` says more. A week is far beyond any plausible queueing + retry window, and a lost callback is
# recovered by the sweep anyway, which needs no token.
CALLBACK_TOKEN_TTL = 7 * 24 * 3600


def object_ref(bucket: str, key: str, identity: str) -> str:
    """What a callback URL binds: one upload of one key in one bucket."""
    text = json.dumps([bucket, key, identity], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def callback_token(sealer: Sealer, bucket: str, ref: str, expires: str) -> str:
    return sealer.mac("callback", bucket, ref, expires)


def callback_url(base: str, sealer: Sealer, bucket: str, ref: str, expires: int) -> str:
    """`base` with this object's `bucket`, `ref`, `exp` and `token` query parameters added."""
    parts = urlsplit(base)
    params = {"bucket": bucket, "ref": ref, "exp": str(int(expires)),
              "token": callback_token(sealer, bucket, ref, str(int(expires)))}
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def upload_callback(base: Optional[str], sealer: Sealer, bucket: str, ref: str, now: float) -> Optional[str]:
    """One upload's own callback URL, expiring CALLBACK_TOKEN_TTL after `now`; None when no base
    URL is configured (its verdict then waits for the sweep)."""
    return callback_url(base, sealer, bucket, ref, int(now) + CALLBACK_TOKEN_TTL) if base else None


def check_callback_query(sealer: Sealer, query: Mapping[str, str], now: float) -> Tuple[bool, str]:
    """(valid, why not) for a callback's query parameters.

    The MAC is computed and compared (constant time) for every request, whatever the bucket and
    whether or not it has expired, so every refusal takes the same path.
    """
    bucket, ref = query.get("bucket", ""), query.get("ref", "")
    expires, presented = query.get("exp", ""), query.get("token", "")
    genuine = sealer.matches(presented, "callback", bucket, ref, expires)
    if not presented:
        return False, "missing token"
    if not genuine:
        return False, "bad token"
    if not expires.isdigit() or int(expires) < now:
        return False, "expired token"
    return True, ""


RELEASED_META = "cosguard-released"


def released_marker(sealer: Sealer, bucket: str, key: str, etag: str) -> str:
    """Metadata a restore puts on the object it puts back, so the upload trigger does not scan it
    into quarantine again."""
    return sealer.release_marker(bucket, key, etag)


def is_released(sealer: Sealer, bucket: str, key: str, etag: str, metadata: Mapping[str, str]) -> bool:
    presented: Optional[str] = metadata.get(RELEASED_META)
    return bool(presented) and sealer.matches(presented, "released", bucket, key, etag.strip('"'))
