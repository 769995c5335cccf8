"""The backfill's set of handled uploads, 8 bytes each instead of a Python string each.

A ledger name is `key_digest (16 hex) + identity digest (24 hex)` (domain/entries.py). The set keeps
64 bits of the identity digest, a SHA-256 over bucket, key and upload identity, in one sorted
`array('Q')`: a million claims take 8 MB, where a set of names took ~150 MB. A false "already
scanned" needs a 64-bit collision with a handled upload: ~n/2^64 per object (5e-14 for a million
claims), and no one can aim for one without a 2^64 search. How many claims there are at all is
bounded by retention (docs/retention.md: claims/ expire after COSGUARD_RETAIN_CLAIMS_DAYS).
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Iterable

NAME_CHARS = 40


def _bits(name: str) -> int:
    return int(name[16:32], 16)


class ClaimSet:
    """Ledger names added while listing, then frozen (sorted, deduplicated) for lookups."""

    def __init__(self, names: Iterable[str] = ()):
        self._items = array("Q")
        self._frozen = False
        for name in names:
            self.add(name)

    def add(self, name: str) -> None:
        if len(name) == NAME_CHARS:
            try:
                self._items.append(_bits(name))
            except ValueError:   # not hex: not a name cosguard writes
                return
            self._frozen = False

    def freeze(self) -> "ClaimSet":
        if not self._frozen:
            self._items = array("Q", sorted(set(self._items)))
            self._frozen = True
        return self

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or len(name) != NAME_CHARS:
            return False
        self.freeze()
        bits = _bits(name)
        at = bisect_left(self._items, bits)
        return at < len(self._items) and self._items[at] == bits

    def __len__(self) -> int:
        return len(self.freeze()._items)

    @property
    def memory_bytes(self) -> int:
        return self._items.itemsize * len(self._items)
