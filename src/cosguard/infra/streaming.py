"""The copy COS will not make: an appendable object (APPEND Object, doc 436/7741) cannot be the
source of PUT Object - Copy, so quarantining or promoting one reads its bytes and writes them again.
The only path on which object bytes pass through cosguard; memory stays bounded by one part.

A mixin of `CloudGateway` (cloud.py): it uses the gateway's `_call` (SDK errors translated,
retried), `cos` client, `_multipart` and `stream_part_size`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional

import crcmod  # the SDK's dependency (its downloads check CRC64 with it); in the layer

from ..errors import CloudTransientError, PreconditionFailed

if TYPE_CHECKING:
    from .cloud import ObjectInfo

STREAM_PART_SIZE = 8 * 1024 * 1024  # what a streamed copy holds in memory at a time
# CRC-64/ECMA-182 as COS computes x-cos-hash-crc64ecma (doc 436/40334); chained over the parts read
_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


class _ContentCheck:
    """The bytes a streamed copy read, in order, must have the CRC64 HEAD gave for the checked write
    (where COS keeps one): with the first append's ETag kept, an object deleted and appended again
    with the same first part and size in the same second passes If-Match and every identity check,
    and only its content tells it apart. PreconditionFailed before the last part is written (a
    multipart upload is then aborted), so such bytes are never copied."""

    def __init__(self, source: "ObjectInfo") -> None:
        self.source, self.crc = source, 0

    def read(self, data: bytes, last: bool) -> bytes:
        if not self.source.crc64:
            return data
        self.crc = _crc64(data, self.crc)
        if last and str(self.crc) != self.source.crc64:
            raise PreconditionFailed(f"GetObject: {self.source.bucket}/{self.source.key} read with CRC64 "
                                     f"{self.crc}, not the checked write's {self.source.crc64}",
                                     operation="GetObject")
        return data


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
        goes by multipart upload (aborted on failure). Every read carries If-Match, and the bytes
        read must have the checked write's CRC64 (_ContentCheck), so bytes appended or rewritten
        after the scan are never written (PreconditionFailed instead)."""
        meta = dict(metadata) if metadata is not None else dict(source.metadata)
        kwargs: Dict[str, Any] = {"Metadata": {f"x-cos-meta-{k}": v for k, v in meta.items()}}
        if source.content_type:
            kwargs["ContentType"] = source.content_type
        kwargs.update(source.content_headers)   # as a copy sends them again (cloud.py CONTENT_HEADERS)
        part_size = max(self.stream_part_size, -(-source.size // 10000))  # COS allows 10,000 parts
        check, count = _ContentCheck(source), -(-source.size // part_size)
        if source.size <= part_size:
            body = check.read(self._read_range(source, 0, source.size), last=True) if source.size else b""
            answer = self._call("PutObject", self.cos.put_object, Bucket=bucket, Key=key, Body=body, **kwargs)
        else:
            def stream_part(number: int, upload_id: str) -> str:   # called for 1..count, in order
                offset = (number - 1) * part_size
                data = check.read(self._read_range(source, offset, min(part_size, source.size - offset)),
                                  last=number == count)
                return self._call("UploadPart", self.cos.upload_part, Bucket=bucket, Key=key, Body=data,
                                  PartNumber=number, UploadId=upload_id)["ETag"]
            answer = self._multipart(bucket, key, kwargs, count, stream_part)
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
