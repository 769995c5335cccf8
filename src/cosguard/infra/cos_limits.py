"""COS's per-object limits, as COS counts them: what a write must fit (domain/limits.py decides
how cosguard's copies fit them; the in-memory gateway refuses what COS would).

- Object keys: at most 850 bytes, UTF-8 (doc 436/13324).
- User metadata (`x-cos-meta-*`): 2 KB (doc 436/7749; its Chinese edition says 2 KB a header and
  4 KB in all). How COS counts is not documented, so cosguard counts the strictest way: every
  header's full name and value, all together, at most 2048 bytes. What fits that fits either reading.
"""
from __future__ import annotations

from typing import Mapping

MAX_KEY_BYTES = 850
MAX_METADATA_BYTES = 2048
META_HEADER_PREFIX = "x-cos-meta-"


def key_bytes(key: str) -> int:
    return len(key.encode("utf-8"))


def metadata_bytes(metadata: Mapping[str, str]) -> int:
    """The size COS may count for these `x-cos-meta-<name>: value` headers (names without prefix)."""
    return sum(len((META_HEADER_PREFIX + name).encode("utf-8")) + len(value.encode("utf-8"))
               for name, value in metadata.items())
