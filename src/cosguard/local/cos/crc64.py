"""CRC64-ECMA as COS reports it in `x-cos-hash-crc64ecma`, computed once per stored object.

The polynomial and conventions are the SDK's own (qcloud_cos' ResumableDownLoader checks a
download with `crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=~0, rev=True)`), i.e.
CRC-64/XZ. A multipart object's CRC is combined from its parts' CRCs, as COS does, so completing
an upload never rereads the parts.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Iterable, List, Optional, Tuple

import crcmod

_MASK = 0xFFFFFFFFFFFFFFFF
_REFLECTED_POLY = 0xC96C5795D7870F42
_crc = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=_MASK, rev=True)


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC64-ECMA of `data`, continuing from `crc` (the CRC of what came before)."""
    return _crc(data, crc)


def _times(matrix: List[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _square(matrix: List[int]) -> List[int]:
    return [_times(matrix, matrix[n]) for n in range(64)]


def combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC of A+B from crc(A), crc(B) and len(B): zlib's crc32_combine, on 64 bits."""
    if length2 <= 0:
        return crc1
    odd = [_REFLECTED_POLY] + [1 << n for n in range(63)]   # one zero bit
    even = _square(odd)                                      # two zero bits
    odd = _square(even)                                      # four zero bits
    while True:
        even = _square(odd)
        if length2 & 1:
            crc1 = _times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _square(even)
        if length2 & 1:
            crc1 = _times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return (crc1 ^ crc2) & _MASK


def combine_all(parts: Iterable[Tuple[int, int]]) -> int:
    """CRC of the concatenation of parts given as (crc, length), in order."""
    total = 0
    for part_crc, length in parts:
        total = combine(total, part_crc, length)
    return total


class CrcCache:
    """The CRC of each stored object version (moto's key objects), computed at most once.

    Keyed weakly by moto's key object: an overwritten or deleted version drops out by itself.
    """

    def __init__(self) -> None:
        self._known: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def remember(self, stored: Any, value: int) -> int:
        with self._lock:
            self._known[stored] = value
        return value

    def of(self, stored: Any, read: Optional[Callable[[], bytes]] = None) -> int:
        """The cached CRC of `stored`, else computed from `read()` (default: its bytes) once."""
        with self._lock:
            known = self._known.get(stored)
        if known is not None:
            return known
        return self.remember(stored, crc64(read() if read else stored.value))
