"""COS's per-object limits, which every copy cosguard writes must fit: an uploader can use all of
them, and a copy COS refuses would leave the infected original in place.

- Object keys: at most 850 bytes, UTF-8 (doc 436/13324). A quarantine or promotion key that would
  be longer ends in a digest of the original key instead (`fitting_key`); the manifest and the
  ledger keep the original key.
- User metadata (`x-cos-meta-*`): 2 KB (doc 436/7749; its Chinese edition says 2 KB a header and
  4 KB in all). How COS counts is not documented, so cosguard counts the strictest way: every
  header's full name and value, all together, at most 2048 bytes. What fits that fits either reading.
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Mapping, Tuple

MAX_KEY_BYTES = 850
MAX_METADATA_BYTES = 2048
META_HEADER_PREFIX = "x-cos-meta-"
DIGEST_KEY_MARK = "long-key-sha256-"


def key_bytes(key: str) -> int:
    return len(key.encode("utf-8"))


def digest_name(key: str) -> str:
    """What stands in for `key` where `<base><key>` would be too long (same key, same name)."""
    return DIGEST_KEY_MARK + hashlib.sha256(key.encode("utf-8")).hexdigest()


def fitting_key(base: str, key: str) -> str:
    """`base + key`, or `base + digest_name(key)` when that would exceed COS's 850 bytes."""
    full = base + key
    return full if key_bytes(full) <= MAX_KEY_BYTES else base + digest_name(key)


def metadata_bytes(metadata: Mapping[str, str]) -> int:
    """The size COS may count for these `x-cos-meta-<name>: value` headers (names without prefix)."""
    return sum(len((META_HEADER_PREFIX + name).encode("utf-8")) + len(value.encode("utf-8"))
               for name, value in metadata.items())


def fit_metadata(user: Mapping[str, str], room: int) -> Tuple[Dict[str, str], List[str]]:
    """The user's metadata that fits in `room` bytes, and the names dropped: the largest headers go
    first, so as many of the user's entries as possible survive, each unaltered."""
    kept = dict(user)
    dropped: List[str] = []
    by_size = sorted(kept, key=lambda name: (-metadata_bytes({name: kept[name]}), name))
    while kept and metadata_bytes(kept) > room:
        name = by_size.pop(0)
        del kept[name]
        dropped.append(name)
    return kept, sorted(dropped)


def fit_beside(own: Mapping[str, str], user: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """cosguard's own metadata (a manifest, a marker) first, then as much of the user's as fits
    beside it in COS's 2 KB; and the names of the user's that did not."""
    kept, dropped = fit_metadata(user, MAX_METADATA_BYTES - metadata_bytes(own))
    return dict(kept, **own), dropped
