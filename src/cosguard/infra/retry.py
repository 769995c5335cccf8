"""Retries with exponential backoff and full jitter, bounded by the invocation's remaining time."""
from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Optional, TypeVar

from ..errors import CloudTransientError

T = TypeVar("T")

DEFAULT_BUDGET_SECONDS = 60.0


class Deadline:
    """The time this invocation has left; a retry never sleeps past it (minus a safety margin)."""

    def __init__(self, seconds: Optional[float] = None, margin: float = 1.0):
        self._end = None if seconds is None else time.monotonic() + seconds
        self.margin = margin

    @classmethod
    def from_context(cls, context: Any, default: float = DEFAULT_BUDGET_SECONDS) -> "Deadline":
        """SCF's context: a dict with `time_limit_in_ms` or an object with remaining-time helpers."""
        getter = getattr(context, "get_remaining_time_in_millis", None)
        if callable(getter):
            return cls(getter() / 1000.0)
        if isinstance(context, Mapping):
            for name in ("remaining_time_in_ms", "time_limit_in_ms"):
                value = context.get(name)
                if isinstance(value, (int, float)) and value > 0:
                    return cls(value / 1000.0, margin=min(2.0, value / 10000.0))
        return cls(default)

    def remaining(self) -> float:
        return float("inf") if self._end is None else self._end - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.remaining() - self.margin > seconds


UNBOUNDED = Deadline()   # outside an invocation: an operator's command, a test


_CURRENT: "contextvars.ContextVar[Deadline]" = contextvars.ContextVar("cosguard_deadline")


def current_deadline() -> Deadline:
    """The running invocation's deadline: leases and retries never outlive it. Set by `within`
    (the runtime, for each invocation); threads run with `contextvars.copy_context()` see it too."""
    return _CURRENT.get(UNBOUNDED)


@contextlib.contextmanager
def within(deadline: Deadline) -> Iterator[Deadline]:
    """Run the block under `deadline`, then restore the one before."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


class Backoff:
    """Full-jitter exponential backoff: sleep uniform(0, min(cap, base * 2**attempt))."""

    def __init__(self, base: float = 0.2, cap: float = 5.0, rng: Optional[random.Random] = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()
        self.sleep = sleep

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * (2 ** attempt)))


def call_with_retry(fn: Callable[[], T], *, attempts: int, deadline: Deadline,
                    backoff: Backoff) -> T:
    """Call `fn`, retrying CloudTransientError up to `attempts` times within `deadline`."""
    attempt = 0
    while True:
        try:
            return fn()
        except CloudTransientError:
            attempt += 1
            if attempt >= attempts:
                raise
            pause = backoff.delay(attempt)
            if not deadline.allows(pause):
                raise
            backoff.sleep(pause)


class TokenBucket:
    """At most `rate` tokens a second, `burst` at once; callers over budget wait their turn.

    A caller takes its tokens at once (the balance may go negative) and sleeps off the debt, so
    concurrent callers queue up fairly without holding the lock while they sleep.
    """

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.capacity, self.clock = float(rate), max(1.0, float(burst)), clock
        self.tokens, self.updated = self.capacity, clock()
        self._lock = threading.Lock()

    def reserve(self, n: float = 1.0) -> float:
        """Take `n` tokens; the seconds to wait before using them."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= n
            return max(0.0, -self.tokens / self.rate)
