"""How local CI reads objects from local COS: a small read-only seam, as CI reads COS in Tencent."""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, Optional, Protocol, Set, Tuple


class ObjectMissing(Exception):
    """No such bucket, key or version."""


@dataclass(frozen=True)
class StoredObject:
    """One object version as CI sees it; `open()` yields its bytes without loading them all."""

    bucket: str
    key: str
    size: int
    etag: str
    storage_class: str = "STANDARD"
    version_id: Optional[str] = None
    open: Callable[[], BinaryIO] = field(default=lambda: io.BytesIO(b""), repr=False, compare=False)


class ObjectStore(Protocol):
    def get(self, bucket: str, key: str, version_id: Optional[str] = None) -> StoredObject:
        """The object, or ObjectMissing."""

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists (CI refuses jobs for one that does not)."""


class MemoryObjectStore:
    """A dict-backed store for exercising local CI on its own (CI's own tests and benchmarks)."""

    def __init__(self) -> None:
        self._objects: Dict[Tuple[str, str], Tuple[bytes, str, Optional[int]]] = {}
        self._buckets: Set[str] = set()
        self._lock = threading.Lock()

    def create_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.add(bucket)

    def bucket_exists(self, bucket: str) -> bool:
        with self._lock:
            return bucket in self._buckets

    def put(self, bucket: str, key: str, body: bytes, storage_class: str = "STANDARD",
            reported_size: Optional[int] = None) -> None:
        with self._lock:
            self._buckets.add(bucket)
            self._objects[(bucket, key)] = (body, storage_class, reported_size)

    def get(self, bucket: str, key: str, version_id: Optional[str] = None) -> StoredObject:
        import hashlib

        with self._lock:
            try:
                body, storage_class, reported = self._objects[(bucket, key)]
            except KeyError:
                raise ObjectMissing(f"{bucket}/{key}") from None
        return StoredObject(bucket=bucket, key=key, size=len(body) if reported is None else reported,
                            etag='"%s"' % hashlib.md5(body).hexdigest(), storage_class=storage_class,
                            open=lambda: io.BytesIO(body))
