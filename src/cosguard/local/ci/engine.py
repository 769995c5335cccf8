"""The local detection engine: EICAR, ClamAV hash signatures, archives opened recursively.

FileName convention (`Detection.file_name`): a file that is not a container is reported under
the name the job was given (the object key, or the Url). Anything found inside a container is
reported by its path *inside* the object: member names joined by `/`, outermost first, e.g.
`inner.zip/eicar.com` for an `outer.tar.gz` holding `inner.zip` holding `eicar.com`. A pure
compression layer (gzip) adds no element when it holds an archive (`x.tar.gz` is one level),
and adds its stored FNAME (or the name minus `.gz`) when it holds a plain file.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import IO, Iterable, List, Optional, Tuple, Union

from . import archives
from .archives import Budget, ScanLimitExceeded, ScanLimits
from .signatures import EICAR_MAX_SIZE, EICAR_NAME, Digests, SignatureDb, is_eicar

log = logging.getLogger(__name__.replace("cosguard.local", "cosguard_local", 1))


@dataclass(frozen=True)
class Detection:
    """One finding: `file_name` per the module's convention, `virus_name` as the engine names it."""

    file_name: str
    virus_name: str


@dataclass
class ScanReport:
    """What one scan found; `limit_exceeded` says which bound stopped it early, if any;
    `unreadable` names the containers (or members) that could not be opened: such a scan is
    incomplete, and CI's job must not call it clean."""

    detections: List[Detection] = field(default_factory=list)
    limit_exceeded: Optional[str] = None
    unreadable: List[str] = field(default_factory=list)
    unpacked_bytes: int = 0
    entries: int = 0

    @property
    def infected(self) -> bool:
        return bool(self.detections)


class _Scan:
    """State of one scan: its budget and findings."""

    def __init__(self, limits: ScanLimits) -> None:
        self.budget = Budget(limits)
        self.report = ScanReport()

    def read(self, stream: IO[bytes], size: int, charge: bool) -> bytes:
        chunk = stream.read(size)
        if charge:
            self.budget.add_bytes(len(chunk))
        else:
            self.budget.check_time()
        return chunk


class Engine:
    """Scans one stream at a time; thread-safe (all per-scan state lives in `_Scan`)."""

    def __init__(self, signatures: Optional[SignatureDb] = None,
                 limits: Optional[ScanLimits] = None) -> None:
        self.signatures = signatures if signatures is not None else SignatureDb()
        self.limits = limits or ScanLimits()

    @classmethod
    def from_files(cls, paths: Iterable[Union[str, "os.PathLike[str]"]],
                   limits: Optional[ScanLimits] = None) -> "Engine":
        return cls(SignatureDb.from_files(paths), limits)

    def scan(self, stream: IO[bytes], name: str) -> ScanReport:
        """Scan `stream` (read to its end, never wholly into memory), reported under `name`."""
        scan = _Scan(self.limits)
        try:
            self._scan(scan, stream, (), name, depth=0, charge=False)
        except ScanLimitExceeded as exc:
            scan.report.limit_exceeded = str(exc)
        scan.report.unpacked_bytes = scan.budget.unpacked_bytes
        scan.report.entries = scan.budget.entries
        return scan.report

    def _scan(self, scan: _Scan, stream: IO[bytes], path: Tuple[str, ...], leaf: Optional[str],
              depth: int, charge: bool) -> None:
        head = self._read_head(scan, stream, charge)
        display = "/".join(path + ((leaf,) if leaf else ()))
        kind = archives.sniff(head)
        if kind is None:
            self._scan_plain(scan, head, stream, display, charge)
            return
        if depth >= self.limits.max_depth:
            raise ScanLimitExceeded(
                f"containers nested deeper than {self.limits.max_depth} levels at {display}")
        container, digests = self._materialise(scan, head, stream, charge)
        try:
            found = digests.match()
            if found:
                scan.report.detections.append(Detection(display, found))
            self._scan_members(scan, kind, container, path, leaf, display, depth)
        finally:
            if container is not stream:
                container.close()

    def _scan_members(self, scan: _Scan, kind: str, container: IO[bytes], path: Tuple[str, ...],
                      leaf: Optional[str], display: str, depth: int) -> None:
        try:
            for member in archives.members(kind, container, leaf or (path[-1] if path else ""),
                                           scan.budget):
                if member.transparent:
                    inner_path, inner_leaf = path, member.name
                else:
                    inner_path, inner_leaf = path + (member.name,), None
                try:
                    self._scan(scan, member.stream, inner_path, inner_leaf, depth + 1,
                               charge=not member.charged)
                except ScanLimitExceeded:
                    raise
                except Exception as exc:  # a corrupt member: note it, keep scanning the rest
                    self._unreadable(scan, "/".join(inner_path + ((inner_leaf,) if inner_leaf else ())), exc)
        except ScanLimitExceeded:
            raise
        except Exception as exc:  # a corrupt container: its own bytes were still hashed
            self._unreadable(scan, display, exc)

    @staticmethod
    def _unreadable(scan: _Scan, name: str, exc: Exception) -> None:
        log.warning("cannot unpack %s: %s: %s", name, type(exc).__name__, exc)
        scan.report.unreadable.append(name)

    def _read_head(self, scan: _Scan, stream: IO[bytes], charge: bool) -> bytes:
        """At least SNIFF_BYTES (unless the stream is shorter), at most one chunk."""
        head = b""
        while len(head) < archives.SNIFF_BYTES:
            chunk = scan.read(stream, self.limits.chunk_size - len(head), charge)
            if not chunk:
                break
            head += chunk
        return head

    def _scan_plain(self, scan: _Scan, head: bytes, stream: IO[bytes], display: str,
                    charge: bool) -> None:
        digests = Digests(self.signatures)
        digests.update(head)
        first = head[:EICAR_MAX_SIZE]
        while True:
            chunk = scan.read(stream, self.limits.chunk_size, charge)
            if not chunk:
                break
            digests.update(chunk)
        if is_eicar(first, digests.size):
            scan.report.detections.append(Detection(display, EICAR_NAME))
            return
        found = digests.match()
        if found:
            scan.report.detections.append(Detection(display, found))

    def _materialise(self, scan: _Scan, head: bytes, stream: IO[bytes],
                     charge: bool) -> Tuple[IO[bytes], Digests]:
        """A seekable copy of a container (the stream itself when it is a seekable top level),
        hashed on the way, since a hash signature may name an archive as a whole."""
        digests = Digests(self.signatures)
        digests.update(head)
        if not charge and _seekable(stream):
            while True:
                chunk = scan.read(stream, self.limits.chunk_size, charge)
                if not chunk:
                    break
                digests.update(chunk)
            stream.seek(0)
            return stream, digests
        spool = archives.Spool(max_size=self.limits.spool_memory)
        try:
            spool.write(head)
            while True:
                chunk = scan.read(stream, self.limits.chunk_size, charge)
                if not chunk:
                    break
                digests.update(chunk)
                spool.write(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool, digests


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False
