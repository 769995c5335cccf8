"""How local CI reads local COS: moto's backend read in-process, behind `ObjectStore`."""
from __future__ import annotations

import io
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

from moto.s3.exceptions import MissingBucket, MissingKey, MissingVersion
from moto.s3.models import FakeKey

from ..store import ObjectMissing, StoredObject
from .naming import BucketNames, cos_storage_class


class MotoObjectStore:
    """`cosguard.local.store.ObjectStore` over one LocalCos's buckets (COS names in, COS names out).

    Sizes set with `LocalCos.simulate_size` win over the stored bytes, so a ≥ 1 GB object can be
    simulated; `open()` still yields the bytes actually stored.
    """

    def __init__(self, backend: Callable[[], Any], names: BucketNames,
                 simulated_sizes: Dict[Tuple[str, str], int]):
        self._backend = backend
        self._names = names
        self._sizes = simulated_sizes

    def find(self, bucket: str, key: str, version_id: Optional[str] = None) -> Optional[FakeKey]:
        """moto's key for a COS object, or None (missing bucket, key, version, or a delete marker)."""
        try:
            obj = self._backend().get_object(self._names.to_moto(bucket), key,
                                             version_id=version_id or None)
        except (MissingBucket, MissingKey, MissingVersion):
            return None
        return obj if isinstance(obj, FakeKey) else None

    def bucket_exists(self, bucket: str) -> bool:
        return self._names.to_moto(bucket) in self._backend().buckets

    def size_of(self, bucket: str, key: str, actual: int) -> int:
        return self._sizes.get((bucket, key), actual)

    def get(self, bucket: str, key: str, version_id: Optional[str] = None) -> StoredObject:
        obj = self.find(bucket, key, version_id)
        if obj is None:
            what = f"{bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")
            raise ObjectMissing(what)
        vid = str(obj.version_id) if obj.version_id not in (None, "null") else None
        found: FakeKey = obj

        def open_body(obj: FakeKey = found) -> BinaryIO:
            try:
                return io.BytesIO(obj.value)
            except ValueError:  # moto closed the buffer: the version was overwritten or deleted
                raise ObjectMissing(f"{bucket}/{key} is gone") from None

        return StoredObject(bucket=bucket, key=key, size=self.size_of(bucket, key, obj.size),
                            etag=obj.etag, storage_class=cos_storage_class(obj.storage_class),
                            version_id=vid, open=open_body)
