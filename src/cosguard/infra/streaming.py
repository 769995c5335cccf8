"""The copy COS will not make: an appendable object (APPEND Object, doc 436/7741) cannot be the
source of PUT Object - Copy, so quarantining or promoting one reads its bytes and writes them again.
The only path on which object bytes pass through cosguard; memory stays bounded by one part.

A mixin of `CloudGateway` (cloud.py): it uses the gateway's `_call` (SDK errors translated,
retried), `cos` client, `_multipart` and `stream_part_size`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional

from ..errors import CloudTransientError

if TYPE_CHECKING:
    from .cloud import ObjectInfo

STREAM_PART_SIZE = 8 * 1024 * 1024  # what a streamed copy holds in memory at a time


def written_version(answer: Mapping[str, str]) -> Optional[str]:
    """The version id a write's answer (headers, lower-cased) names; None for none, `null` included:
    COS answers `null` for a write to a bucket whose versioning is suspended (doc 436/7742), and the
    local COS, as moto, for a multipart write to a bucket that never had versioning, where HEAD
    refuses `versionId=null` (a stale promotion could not take such a copy back). A request naming
    no version reaches that same object."""
    version = answer.get("x-cos-version-id")
    return version if version and version != "null" else None


class StreamingCopy:
    """`stream_copy` for CloudGateway; the attributes below are the gateway's."""

    cos: Any
    stream_part_size: int
    _call: Callable[..., Any]
    _multipart: Callable[..., Dict[str, Any]]

    def stream_copy(self, source: "ObjectInfo", bucket: str, key: str,
                    metadata: Optional[Mapping[str, str]] = None) -> "ObjectInfo":
        """Copy exactly `source` by reading it and writing it again: for a source COS refuses to
        copy (an appendable object, doc 436/7741). The only path that moves object bytes through
        cosguard. Memory: one part of `stream_part_size` at a time; a source of more than one part
        goes by multipart upload (aborted on failure). Every read carries If-Match, so bytes
        appended after the scan are never written (PreconditionFailed instead)."""
        meta = dict(metadata) if metadata is not None else dict(source.metadata)
        kwargs: Dict[str, Any] = {"Metadata": {f"x-cos-meta-{k}": v for k, v in meta.items()}}
        if source.content_type:
            kwargs["ContentType"] = source.content_type
        kwargs.update(source.content_headers)   # as a copy sends them again (cloud.py CONTENT_HEADERS)
        part_size = max(self.stream_part_size, -(-source.size // 10000))  # COS allows 10,000 parts
        if source.size <= part_size:
            body = self._read_range(source, 0, source.size) if source.size else b""
            answer = self._call("PutObject", self.cos.put_object, Bucket=bucket, Key=key, Body=body, **kwargs)
        else:
            def stream_part(number: int, upload_id: str) -> str:
                offset = (number - 1) * part_size
                data = self._read_range(source, offset, min(part_size, source.size - offset))
                return self._call("UploadPart", self.cos.upload_part, Bucket=bucket, Key=key, Body=data,
                                  PartNumber=number, UploadId=upload_id)["ETag"]
            answer = self._multipart(bucket, key, kwargs, -(-source.size // part_size), stream_part)
        lower = {str(k).lower(): v for k, v in (answer or {}).items() if isinstance(v, str)}
        return source.replace(bucket=bucket, key=key, version_id=written_version(lower),
                              etag=lower.get("etag", source.etag), tag_count=0, metadata=meta,
                              object_type="")

    def _read_range(self, source: "ObjectInfo", offset: int, length: int) -> bytes:
        """`length` bytes of exactly `source` from `offset` (If-Match its ETag), or an error."""
        extra: Dict[str, Any] = {"VersionId": source.version_id} if source.version_id else {}
        if source.etag:
            extra["IfMatch"] = source.etag

        def read() -> bytes:
            response = self.cos.get_object(Bucket=source.bucket, Key=source.key,
                                           Range=f"bytes={offset}-{offset + length - 1}", **extra)
            return response["Body"].get_raw_stream().read(length + 1)
        data = self._call("GetObject", read)
        if len(data) != length:
            raise CloudTransientError(f"GetObject: {source.bucket}/{source.key} gave {len(data)} bytes "
                                      f"at {offset}, expected {length}", operation="GetObject")
        return data
