"""How every copy cosguard writes fits COS's per-object limits (infra/cos_limits.py): an uploader
can use all of them, and a copy COS refuses would leave the infected original in place.

- Object keys (850 bytes): a quarantine or promotion key that would be longer ends in a digest of
  the original key instead (`fitting_key`); the manifest and the ledger keep the original key.
- User metadata (2 KB, counted the strictest way): cosguard's own entries first, then as many of
  the user's as fit, each unaltered (`fit_beside`).
"""
from __future__ import annotations

import hashlib
from typing import Dict, List, Mapping, Tuple

from ..infra.cos_limits import MAX_KEY_BYTES, MAX_METADATA_BYTES, key_bytes, metadata_bytes

DIGEST_KEY_MARK = "long-key-sha256-"


def digest_name(key: str) -> str:
    """What stands in for `key` where `<base><key>` would be too long (same key, same name)."""
    return DIGEST_KEY_MARK + hashlib.sha256(key.encode("utf-8")).hexdigest()


def fitting_key(base: str, key: str) -> str:
    """`base + key`, or `base + digest_name(key)` when that would exceed COS's 850 bytes."""
    full = base + key
    return full if key_bytes(full) <= MAX_KEY_BYTES else base + digest_name(key)


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


__all__ = ["DIGEST_KEY_MARK", "MAX_KEY_BYTES", "MAX_METADATA_BYTES", "digest_name", "fit_beside", "fit_metadata",
           "fitting_key", "key_bytes", "metadata_bytes"]
