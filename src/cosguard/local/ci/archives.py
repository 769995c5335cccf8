"""Opening containers for the engine: zip, tar, gzip and (when py7zr is installed) 7z.

Every member comes out as a stream; nothing is read whole into memory. Members that must be
materialised (7z, whose decoder writes rather than reads) go to spooled temporary files whose
bytes are charged to the scan's budget as they are written, so a bomb stops at the bound.
"""
from __future__ import annotations

import gzip
import inspect
import posixpath
import struct
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import IO, BinaryIO, Iterator, List, Optional, Tuple, cast

try:  # 7z is optional, as in the product's `local` extra
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory
except ImportError:  # pragma: no cover - exercised only without py7zr
    py7zr = None  # type: ignore[assignment]  # without it no archive is sniffed as 7z
    Py7zIO = WriterFactory = object  # type: ignore[assignment,misc]

ZIP, GZIP, TAR, SEVEN_ZIP = "zip", "gzip", "tar", "7z"
SNIFF_BYTES = 512  # a tar header's "ustar" magic sits at offset 257


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on one job's scan. Exceeding any of them ends the scan with a result, not a hang."""

    max_depth: int = 10                   # containers opened inside one another
    max_unpacked_bytes: int = 256 << 20   # bytes produced by unpacking, whole job
    max_entries: int = 10_000             # archive members, whole job
    max_seconds: float = 60.0             # wall time of one scan
    chunk_size: int = 64 << 10            # read size; the most held per stream at once
    spool_memory: int = 4 << 20           # a spooled member beyond this moves to a temp file


class Spool(tempfile.SpooledTemporaryFile):
    """A spooled temporary file that says what it can do. Python 3.9's SpooledTemporaryFile has
    no `seekable()`/`readable()`, which zipfile calls on a nested archive; 3.11 added them."""

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True


class ScanLimitExceeded(Exception):
    """One of the ScanLimits was reached; the message names which."""


class ArchiveUnreadable(Exception):
    """A container member that cannot be read (encrypted); the message names it."""


class Budget:
    """What one scan has consumed so far, checked against its limits."""

    def __init__(self, limits: ScanLimits) -> None:
        self.limits = limits
        self.unpacked_bytes = 0
        self.entries = 0
        self._deadline = time.monotonic() + limits.max_seconds

    def add_bytes(self, count: int) -> None:
        self.unpacked_bytes += count
        if self.unpacked_bytes > self.limits.max_unpacked_bytes:
            raise ScanLimitExceeded(
                f"unpacked content exceeds {self.limits.max_unpacked_bytes} bytes")
        self.check_time()

    def expect_bytes(self, count: int) -> None:
        """Refuse up front what an archive declares it will unpack beyond the budget."""
        if self.unpacked_bytes + count > self.limits.max_unpacked_bytes:
            raise ScanLimitExceeded(
                f"archive declares {count} unpacked bytes, beyond the "
                f"{self.limits.max_unpacked_bytes}-byte budget")

    def add_entries(self, count: int = 1) -> None:
        self.entries += count
        if self.entries > self.limits.max_entries:
            raise ScanLimitExceeded(f"more than {self.limits.max_entries} archive entries")

    def check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise ScanLimitExceeded(f"scan took longer than {self.limits.max_seconds} s")


@dataclass
class Member:
    """One thing inside a container.

    `transparent` marks a compression layer's payload (gzip): it adds a path element only when
    it is not itself an archive. `charged` means its bytes were already added to the budget.
    """

    name: str
    stream: IO[bytes]
    transparent: bool = False
    charged: bool = False


def sniff(head: bytes) -> Optional[str]:
    """The container format from a file's first bytes, or None for anything else."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return SEVEN_ZIP if py7zr is not None else None
    if len(head) >= 262 and head[257:262] == b"ustar":
        return TAR
    return None


def members(kind: str, fileobj: IO[bytes], name: str, budget: Budget) -> Iterator[Member]:
    """The members of a seekable container, each counted against `budget` as an entry."""
    if kind == ZIP:
        return _zip_members(fileobj, budget)
    if kind == TAR:
        return _tar_members(fileobj, budget)
    if kind == GZIP:
        return _gzip_members(fileobj, name, budget)
    if kind == SEVEN_ZIP:
        return _seven_zip_members(fileobj, budget)
    raise ValueError(f"not a container kind: {kind}")


def clean_name(name: str) -> str:
    """Member names as displayed: forward slashes, no leading `/` or `./`."""
    name = name.replace("\\", "/")
    while name.startswith(("/", "./")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name or "(unnamed)"


def _zip_members(fileobj: IO[bytes], budget: Budget) -> Iterator[Member]:
    declared = _zip_declared_entries(fileobj)
    if declared is not None and budget.entries + declared > budget.limits.max_entries:
        raise ScanLimitExceeded(f"zip declares {declared} entries, beyond {budget.limits.max_entries}")
    with zipfile.ZipFile(fileobj) as archive:
        for info in archive.infolist():
            budget.add_entries()
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:  # encrypted: unreadable, so never counted as clean
                raise ArchiveUnreadable(f"{clean_name(info.filename)} is encrypted")
            with archive.open(info) as stream:
                yield Member(clean_name(info.filename), stream)


def _zip_declared_entries(fileobj: IO[bytes]) -> Optional[int]:
    """The entry count from the end-of-central-directory record, before ZipFile reads them all."""
    end = getattr(zipfile, "_EndRecData", None)
    if end is None:  # pragma: no cover - present in every CPython 3.x
        return None
    try:
        record = end(fileobj)
    finally:
        fileobj.seek(0)
    return None if not record else int(record[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def _tar_members(fileobj: IO[bytes], budget: Budget) -> Iterator[Member]:
    with tarfile.open(fileobj=fileobj, mode="r:") as archive:
        while True:
            info = archive.next()
            if info is None:
                return
            budget.add_entries()
            if not info.isfile():
                continue
            stream = archive.extractfile(info)
            if stream is not None:
                with stream:
                    yield Member(clean_name(info.name), stream)


def _gzip_members(fileobj: IO[bytes], name: str, budget: Budget) -> Iterator[Member]:
    header = fileobj.read(SNIFF_BYTES * 2)
    fileobj.seek(0)
    budget.add_entries()
    inner = gzip_inner_name(header) or _strip_gzip_suffix(posixpath.basename(name))
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as stream:
        yield Member(clean_name(inner), stream, transparent=True)  # type: ignore[arg-type]


def gzip_inner_name(header: bytes) -> Optional[str]:
    """The original file name (FNAME, RFC 1952 §2.3) stored in a gzip header, if any."""
    if len(header) < 10 or not header[3] & 0x08:
        return None
    offset = 10
    if header[3] & 0x04:  # FEXTRA comes first
        if len(header) < 12:
            return None
        offset += 2 + struct.unpack("<H", header[10:12])[0]
    end = header.find(b"\x00", offset)
    if end < 0:
        return None
    return header[offset:end].decode("latin-1") or None


def _strip_gzip_suffix(name: str) -> str:
    lowered = name.lower()
    if lowered.endswith(".tgz"):
        return name[:-4] + ".tar"
    if lowered.endswith(".gz"):
        return name[:-3]
    return name or "(gzip content)"


class _ChargedSpool(Py7zIO):
    """A 7z member written by py7zr into a spooled file, charged to the budget as it arrives."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.file = Spool(max_size=budget.limits.spool_memory)
        self._size = 0

    def write(self, data) -> int:  # noqa: ANN001 - bytes or bytearray
        self._budget.add_bytes(len(data))
        self._size += len(data)
        return self.file.write(data)

    def read(self, size: Optional[int] = None) -> bytes:
        return self.file.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def flush(self) -> None:
        self.file.flush()

    def size(self) -> int:
        return self._size


class _ChargedFactory(WriterFactory):
    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self.products: List[Tuple[str, _ChargedSpool]] = []

    def create(self, filename: str) -> _ChargedSpool:
        product = _ChargedSpool(self._budget)
        self.products.append((filename, product))
        return product


def _seven_zip_members(fileobj: IO[bytes], budget: Budget) -> Iterator[Member]:
    with py7zr.SevenZipFile(cast(BinaryIO, fileobj), mode="r") as archive:  # py7zr 1.0 (3.9) wants BinaryIO
        infos = archive.list()
        budget.add_entries(len(infos))
        budget.expect_bytes(sum(info.uncompressed or 0 for info in infos if not info.is_directory))
        if "factory" not in inspect.signature(archive.extract).parameters:  # py7zr < 1.0
            for filename, data in (archive.readall() or {}).items():
                budget.add_bytes(len(data.getbuffer()))
                yield Member(clean_name(filename), data, charged=True)
            return
        factory = _ChargedFactory(budget)
        try:
            archive.extract(factory=factory)
            for filename, product in factory.products:
                product.file.seek(0)
                yield Member(clean_name(filename), product.file, charged=True)
        finally:
            for _, product in factory.products:
                product.file.close()
