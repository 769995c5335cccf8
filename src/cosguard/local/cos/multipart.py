"""Multipart uploads as COS sizes and checksums them.

COS takes parts of 1 MB to 5 GB, the last one smaller (moto keeps S3's 5 MiB minimum, which
refuses the 1 MB parts both official SDKs' managed uploads send); completing with a smaller part
anywhere but last fails `EntityTooSmall`, as on COS. The object's CRC64 is combined from its
parts' CRCs, which were computed once as each part arrived.
"""
from __future__ import annotations

import datetime
import io
import re
from typing import Any, Dict, List, Tuple

import moto.s3.models as moto_models

from .crc64 import CrcCache, combine_all
from .wire import CosError, content_length

MIN_PART_SIZE = 1024 * 1024   # COS: "每个分块大小为1MB - 5GB，最后一个分块可以小于1MB"
_MAX_COMPLETE_BODY = 4 * 1024 * 1024
_PART = re.compile(rb"<Part>(.*?)</Part>", re.S)
_NUMBER = re.compile(rb"<PartNumber>\s*(\d+)\s*</PartNumber>")
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")

# COS's rule is applied in `check_complete`; moto's own (S3's 5 MiB) must not refuse first.
moto_models.S3_UPLOAD_PART_MIN_SIZE = 0


def read_complete_body(environ: Dict[str, Any]) -> bytes:
    """The CompleteMultipartUpload XML, read here and put back for moto to read again."""
    length = content_length(environ)
    if length > _MAX_COMPLETE_BODY:
        raise CosError(400, "EntityTooLarge", "The CompleteMultipartUpload body is too large.")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def part_numbers(body: bytes) -> List[int]:
    numbers = []
    for part in _PART.findall(body):
        found = _NUMBER.search(part)
        if found:
            numbers.append(int(found.group(1)))
    return numbers


def check_complete(upload: Any, numbers: List[int], crcs: CrcCache) -> int:
    """COS's part-size rule for completing `upload` (moto's multipart) with `numbers`; returns
    the completed object's CRC64. Unknown parts are left for moto to refuse (InvalidPart)."""
    sized: List[Tuple[int, int]] = []
    for index, number in enumerate(numbers):
        part = upload.parts.get(number)
        if part is None:
            return 0
        if part.size < MIN_PART_SIZE and index < len(numbers) - 1:
            raise CosError(400, "EntityTooSmall",
                           f"Part {number} is {part.size} bytes; every part but the last must be "
                           f"at least {MIN_PART_SIZE} bytes.")
        sized.append((crcs.of(part), part.size))
    return combine_all(sized)


def note_initiation(cos: Any, answer: bytes) -> None:
    """Remember when the upload in Initiate's `answer` began (COS's clock), for `date_completed`."""
    found = _UPLOAD_ID.search(answer)
    if found:
        cos.multipart_started[found.group(1).decode("utf-8", "replace")] = cos.clock()


def date_completed(cos: Any, upload_id: str, obj: Any) -> None:
    """The Last-Modified of the object `upload_id` completed: which time COS reports is
    undocumented (docs 436/7742, 436/7746 do not say), so `cos.multipart_last_modified` chooses:
    `initiation` (the default, the worse: earlier than the write and its event) or `completion`."""
    started = cos.multipart_started.pop(upload_id, None)
    if started is not None and cos.multipart_last_modified == "initiation":
        obj.last_modified = datetime.datetime.fromtimestamp(
            started, datetime.timezone.utc).replace(tzinfo=None)
