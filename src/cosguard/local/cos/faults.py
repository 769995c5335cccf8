"""Fault knobs and request counters, one set per LocalCos instance (never shared class state)."""
from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from .operations import OPERATIONS


class Faults:
    """What a LocalCos does wrong on purpose, so callers' retry and error paths get exercised.

    `latency_ms` delays every request; `error_rate` / `throttle_rate` (0..1) answer that share of
    requests with 500 InternalError / 503 SlowDown; `deny(bucket, operations)` answers 403
    AccessDenied, and `deny_key(bucket, key, operations)` does for one object only (as a bucket
    policy denying one resource would). Rates draw from a per-instance generator; `seed()` makes a run repeatable.
    `before(callback, ...)` runs a test's callback once, just before the first matching request is
    served: another client's write lands at an exact point of a sequence, without sleeping.
    """

    def __init__(self) -> None:
        self.latency_ms: float = 0.0
        self.error_rate: float = 0.0
        self.throttle_rate: float = 0.0
        self._denied: Dict[str, Optional[Set[str]]] = {}
        self._denied_keys: Dict[Tuple[str, str], Optional[Set[str]]] = {}
        self._random = random.Random()
        self._lock = threading.Lock()
        self._hooks: List[Tuple[Optional[str], Optional[str], Optional[str], str, Callable[[], Any]]] = []
        self.hook_errors: List[BaseException] = []

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

    def before(self, callback: Callable[[], Any], operation: Optional[str] = None, bucket: Optional[str] = None,
               key: Optional[str] = None, prefix: str = "") -> None:
        """Run `callback()` once, before the first request that matches is served: `operation` (a COS
        API name, any if None) on `bucket` (any if None), for exactly `key` or any key starting with
        `prefix`. It runs on the request's server thread (it may make requests of its own; the
        matching request waits for it); what it raises is kept in `hook_errors`, and the request is
        then served as usual."""
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown COS operation {operation!r}; known: {sorted(OPERATIONS)}")
        with self._lock:
            self._hooks.append((operation, bucket, key, prefix, callback))

    def run_hooks(self, operation: str, bucket: str, key: str) -> None:
        """Called by the server for every request, before anything else is done with it."""
        with self._lock:
            due = [hook for hook in self._hooks
                   if hook[0] in (None, operation) and hook[1] in (None, bucket)
                   and (key == hook[2] if hook[2] is not None else key.startswith(hook[3]))]
            for hook in due:
                self._hooks.remove(hook)
        for hook in due:
            try:
                hook[4]()
            except BaseException as exc:  # noqa: BLE001 - reported to the test, the request goes on
                self.hook_errors.append(exc)

    def clear(self) -> None:
        """Back to a well-behaved service."""
        with self._lock:
            self._hooks.clear()
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
