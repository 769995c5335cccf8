"""A worker pool that also runs things later, without a worker sleeping through the wait.

Scan delays and callback backoff are waits; holding a pool thread for each would cap throughput
at workers / delay. One timer thread keeps the due times and hands work to the pool when due.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Tuple

log = logging.getLogger(__name__.replace("cosguard.local", "cosguard_local", 1))


class Scheduler:
    """`call_soon` / `call_later` onto `workers` threads; `shutdown()` drops what is still queued."""

    def __init__(self, workers: int = 8, name: str = "ci") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._heap: List[Tuple[float, int, Callable[..., Any], tuple]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._timer = threading.Thread(target=self._run, name=f"{name}-timer", daemon=True)
        self._timer.start()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            if self._closed:
                return
            self._pool.submit(self._guard, fn, args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        if delay <= 0:
            self.call_soon(fn, *args)
            return
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), fn, args))
            self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        self._timer.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, fn, args = heapq.heappop(self._heap)
                self._pool.submit(self._guard, fn, args)

    @staticmethod
    def _guard(fn: Callable[..., Any], args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # a worker must never die silently
            log.exception("local CI background task %s failed", getattr(fn, "__name__", fn))
