"""The figures of one invocation, gathered where they happen and logged once, at its end.

The runtime binds a `Tally` for each invocation (`measuring`, a contextvar like the deadline in
retry.py, so the pools' threads started with `contextvars.copy_context()` add to the same one);
the domain adds what it already knows (`count`, `settled`, `pending`) and nothing reads anything
more for it. At the end the runtime logs one `metrics` line (docs/metrics.md): every counter, zero
or not, so a CLS query or alarm finds each field on every line. Outside an invocation (an
operator's command, a test) nothing is bound and every call here does nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import Any, Dict, Iterator, List, Optional

# Counters on every line: one per outcome of a `record` (a submission) or `verdict` (status.py's
# Outcome values), `viruses_found` (verdicts whose job CI found infected, whatever was done with
# the object), and the sweep's `retried` (failed submissions taken up again) and `overdue` jobs.
OUTCOME_COUNTERS = ("submitted", "skipped", "duplicate", "unscannable", "error", "pending", "clean", "promoted",
                    "infected", "quarantined", "deleted", "stale", "gone", "already_done", "released",
                    "resubmit")
COUNTERS = OUTCOME_COUNTERS + ("viruses_found", "retried", "overdue")


class Tally:
    """Counts, upload→verdict latencies and pending work of one invocation of `function`."""

    def __init__(self, function: str, clock=time.monotonic):
        self.function = function
        self.clock = clock
        self.started = clock()
        self.counts: Dict[str, int] = {}
        self.latencies: List[float] = []
        self.pending_jobs: Optional[int] = None      # known to the sweep only
        self.oldest_pending = 0.0
        self.failed = False
        self._lock = threading.Lock()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def settled(self, seconds: float) -> None:
        """A verdict acted on, `seconds` after its upload was written."""
        with self._lock:
            self.latencies.append(max(0.0, float(seconds)))

    def pending(self, jobs: int, oldest_seconds: float) -> None:
        with self._lock:
            self.pending_jobs = jobs
            self.oldest_pending = max(0.0, float(oldest_seconds))

    def fields(self) -> Dict[str, Any]:
        """The `metrics` line's fields: sorted, every counter present."""
        with self._lock:
            line: Dict[str, Any] = {"function": self.function, "failed": int(self.failed),
                                    "duration_ms": int((self.clock() - self.started) * 1000)}
            for name in COUNTERS:
                line[name] = self.counts.get(name, 0)
            for name, value in self.counts.items():   # a new outcome is never dropped
                line.setdefault(name, value)
            line["verdicts_settled"] = len(self.latencies)
            line["verdict_latency_avg_ms"] = (int(1000 * sum(self.latencies) / len(self.latencies))
                                              if self.latencies else 0)
            line["verdict_latency_max_ms"] = int(1000 * max(self.latencies)) if self.latencies else 0
            if self.pending_jobs is not None:
                line["pending_jobs"] = self.pending_jobs
                line["oldest_pending_seconds"] = int(self.oldest_pending)
            return dict(sorted(line.items()))


_CURRENT: "contextvars.ContextVar[Optional[Tally]]" = contextvars.ContextVar("cosguard_tally", default=None)


def current() -> Optional[Tally]:
    return _CURRENT.get()


@contextlib.contextmanager
def measuring(function: str) -> Iterator[Tally]:
    """Bind a fresh tally for the block; `failed` is set when the block raises."""
    tally = Tally(function)
    token = _CURRENT.set(tally)
    try:
        yield tally
    except BaseException:
        tally.failed = True
        raise
    finally:
        _CURRENT.reset(token)


def count(name: str, n: int = 1) -> None:
    tally = _CURRENT.get()
    if tally is not None and n:
        tally.count(name, n)


def settled(seconds: float) -> None:
    tally = _CURRENT.get()
    if tally is not None:
        tally.settled(seconds)


def pending(jobs: int, oldest_seconds: float) -> None:
    tally = _CURRENT.get()
    if tally is not None:
        tally.pending(jobs, oldest_seconds)
