"""What the in-memory gateway (memory.py) stores and the clock it stamps with: the injected
`ManualClock`, one key's versions per bucket, and the limits COS puts on what is stored (tags)."""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Dict, List, Mapping, Optional

import crcmod

from ..errors import CloudPermanentError
from .records import Factory, Record

MAX_TAGS = 10   # doc 436/42997
crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)  # ECMA-182


class ManualClock:
    """An injected clock (epoch seconds) that moves only when told: `advance(seconds)`.

    `ManualClock()` starts at a fixed moment; `ManualClock(start=None)` follows the wall clock plus
    whatever was advanced (for code that also waits on real work, such as the local cloud's)."""

    def __init__(self, start: Optional[float] = 1_800_000_000.0):
        self._start = start
        self.offset = 0.0

    def __call__(self) -> float:
        base = time.time() if self._start is None else self._start
        return base + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class StoredVersion(Record):
    """One stored write (or delete marker) of a key. Writes pass their ETag (`etag_of`)."""

    body: bytes
    version_id: Optional[str]     # None on a bucket that never had versioning; "null" once it had
    modified: int
    metadata: Dict[str, str] = Factory(dict)
    content_type: str = "application/octet-stream"
    content_headers: Dict[str, str] = Factory(dict)
    tags: Dict[str, str] = Factory(dict)
    storage_class: str = "STANDARD"
    object_type: str = ""
    etag: str = ""
    marker: bool = False          # a delete marker


def etag_of(body: bytes) -> str:
    """COS's ETag of a simple upload: the body's MD5, quoted."""
    return f'"{hashlib.md5(body).hexdigest()}"'


class StoredBucket(Record):
    versioning: str = ""          # "", "enabled" or "suspended"
    keys: Dict[str, List[StoredVersion]] = Factory(dict)   # oldest first


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def check_tags(tags: Mapping[str, str], operation: str) -> None:
        if len(tags) > MAX_TAGS:
            raise CloudPermanentError(f"{operation}: more than {MAX_TAGS} tags", code="BadRequest", status=400,
                                      operation=operation)
        for name, value in tags.items():
            if not name or len(name.encode("utf-8")) > 127 or len(str(value).encode("utf-8")) > 255:
                raise CloudPermanentError(f"{operation}: tag {name!r} out of bounds", code="InvalidTag",
                                          status=400, operation=operation)

__all__ = ["MAX_TAGS", "ManualClock", "StoredBucket", "StoredVersion", "check_tags", "crc64", "etag_of", "iso"]
