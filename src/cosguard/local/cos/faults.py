"""Fault knobs and request counters, one set per LocalCos instance (never shared class state)."""
from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Dict, Iterable, Mapping, Optional, Set, Tuple

from .operations import OPERATIONS


class Faults:
    """What a LocalCos does wrong on purpose, so callers' retry and error paths get exercised.

    `latency_ms` delays every request; `error_rate` / `throttle_rate` (0..1) answer that share of
    requests with 500 InternalError / 503 SlowDown; `deny(bucket, operations)` answers 403
    AccessDenied, and `deny_key(bucket, key, operations)` does for one object only (as a bucket
    policy denying one resource would). Rates draw from a per-instance generator; `seed()` makes a run repeatable.
    """

    def __init__(self) -> None:
        self.latency_ms: float = 0.0
        self.error_rate: float = 0.0
        self.throttle_rate: float = 0.0
        self._denied: Dict[str, Optional[Set[str]]] = {}
        self._denied_keys: Dict[Tuple[str, str], Optional[Set[str]]] = {}
        self._random = random.Random()
        self._lock = threading.Lock()

    def seed(self, value: int) -> None:
        with self._lock:
            self._random.seed(value)

    def deny(self, bucket: str, operations: Optional[Iterable[str]] = None) -> None:
        """403 AccessDenied for `operations` (COS API names, e.g. "PutObject") on `bucket`; all if None."""
        ops = None if operations is None else set(operations)
        unknown = sorted((ops or set()) - OPERATIONS)
        if unknown:
            raise ValueError(f"unknown COS operations {unknown}; known: {sorted(OPERATIONS)}")
        with self._lock:
            previous = self._denied.get(bucket, set())
            if ops is None or previous is None:
                self._denied[bucket] = None
            else:
                self._denied[bucket] = previous | ops

    def deny_key(self, bucket: str, key: str, operations: Optional[Iterable[str]] = None) -> None:
        """403 AccessDenied for `operations` (all if None) on the one object `bucket`/`key`."""
        ops = None if operations is None else set(operations)
        unknown = sorted((ops or set()) - OPERATIONS)
        if unknown:
            raise ValueError(f"unknown COS operations {unknown}; known: {sorted(OPERATIONS)}")
        with self._lock:
            self._denied_keys[(bucket, key)] = ops

    def allow(self, bucket: str) -> None:
        with self._lock:
            self._denied.pop(bucket, None)
            for denied in [k for k in self._denied_keys if k[0] == bucket]:
                del self._denied_keys[denied]

    def clear(self) -> None:
        """Back to a well-behaved service."""
        with self._lock:
            self.latency_ms = 0.0
            self.error_rate = 0.0
            self.throttle_rate = 0.0
            self._denied.clear()
            self._denied_keys.clear()

    def is_denied(self, bucket: str, operation: str, key: str = "") -> bool:
        with self._lock:
            for rule in (bucket, (bucket, key)):
                denied: Mapping[Any, Optional[Set[str]]] = \
                    self._denied if isinstance(rule, str) else self._denied_keys
                if rule in denied:
                    ops = denied[rule]
                    if ops is None or operation in ops:
                        return True
            return False

    def draw(self) -> Optional[Tuple[int, str, str]]:
        """(status, code, message) of an injected failure for this request, or None."""
        with self._lock:
            throttle, error = self.throttle_rate, self.error_rate
            if throttle > 0 and self._random.random() < throttle:
                return 503, "SlowDown", "Please reduce your request rate."
            if error > 0 and self._random.random() < error:
                return 500, "InternalError", "We encountered an internal error. Please try again."
        return None


class Counters:
    """Requests per COS API name as they arrive (denied and failed ones included), plus GetObject bytes.

    `counters["PutObject"]` is 0 until the first PutObject; `bytes_read` counts object bytes
    sent by successful GetObject answers; `injected` counts answers replaced by a fault.
    """

    def __init__(self) -> None:
        self._counts: Counter = Counter()
        self._bytes_read = 0
        self._injected = 0
        self._lock = threading.Lock()

    def __getitem__(self, operation: str) -> int:
        with self._lock:
            return self._counts[operation]

    @property
    def bytes_read(self) -> int:
        with self._lock:
            return self._bytes_read

    @property
    def injected(self) -> int:
        with self._lock:
            return self._injected

    def count(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def add_bytes_read(self, n: int) -> None:
        with self._lock:
            self._bytes_read += n

    def add_injected(self) -> None:
        with self._lock:
            self._injected += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._bytes_read = 0
            self._injected = 0

    def snapshot(self) -> Dict[str, int]:
        """Per-API counts plus `bytes_read` and `injected`, as a plain dict."""
        with self._lock:
            out = dict(self._counts)
            out["bytes_read"] = self._bytes_read
            out["injected"] = self._injected
            return out
