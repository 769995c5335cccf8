"""How the sweep walks a ledger listing that one invocation may not finish: a page at a time from
where the last sweep stopped, each entry handed to a bounded pool, dispatch stopped before the
invocation's deadline, and the place it stopped saved for the next run.

Why: after a CI outage `jobs/` can hold more open jobs than one timer invocation settles (about
13,000 in 300 s at 50 ms a request). Listing them all first and never looking at the clock meant
SCF cut every run off and its report was lost. Now each run settles what fits, says it is partial
and where it stopped, and the next run goes on from there.

Round robin: a walk starts after the saved key, runs to the end of the listing and wraps round to
where it started, so entries that fail every time, even a crowd of them at the head of the listing,
cost one visit a round and never keep the sweep from the rest. A walk that gets all the way round
clears the saved place. Two sweeps at once (a timer run and an operator's) may visit an entry
twice: settling is idempotent (one action claim per verdict), and the later save wins.
"""
from __future__ import annotations

import contextvars
import math
import threading
from itertools import islice
from typing import Any, Callable, Dict, List, Optional

from ..domain.ledger import Ledger
from ..errors import CloudError
from ..infra.logs import event, get_logger

log = get_logger("cosguard.bulk.sweep")

MARGIN_SHARE = 0.1   # of the time at the start, kept back for the work in flight when dispatch stops


class Budget:
    """The time the sweep may dispatch in: its deadline (any object with `remaining()` seconds:
    the invocation's `infra.retry.Deadline`, or a test's) less a margin for the entries still in
    flight when dispatch stops: the larger of `floor` seconds and a tenth of the time there was at
    the start. No margin and no stop without a deadline (an operator's `cosguard reconcile`)."""

    def __init__(self, deadline: Any, floor: float):
        self.deadline = deadline
        start = deadline.remaining()
        self.margin = max(floor, MARGIN_SHARE * start) if math.isfinite(start) else 0.0

    def line(self, share: float = 1.0) -> float:
        """The remaining time at which work given `share` of the dispatchable time left now must
        stop dispatching (-inf: never)."""
        remaining = self.deadline.remaining()
        if not math.isfinite(remaining):
            return -math.inf
        return remaining - max(0.0, remaining - self.margin) * share

    def before(self, line: float) -> bool:
        return self.deadline.remaining() > line


def keys_after(ledger: Ledger, kind: str, after: str, limit: int) -> List[str]:
    """Up to `limit` ledger keys of `kind` after `after`, in COS's UTF-8 order (doc 436/7734: the
    marker itself excluded): one listing request (more only if COS answers short pages)."""
    listed = ledger.gateway.list(ledger.bucket, prefix=f"{ledger.prefix}{kind}/", marker=after, page_size=limit)
    return [str(item["Key"]) for item in islice(listed, limit)]


class Walk:
    """One round of the listing `<prefix><kind>/`: from after `start` to the end, then from the
    beginning up to `start` itself; a page at a time (`next_page`, None once the round is done)."""

    def __init__(self, ledger: Ledger, kind: str, start: str, page_size: int):
        self.ledger, self.kind, self.start, self.page_size = ledger, kind, start, page_size
        self._after = start
        self._wrapped = not start   # a walk from the beginning has nothing to wrap round to
        self._done = False

    def next_page(self) -> Optional[List[str]]:
        while not self._done:
            listed = keys_after(self.ledger, self.kind, self._after, self.page_size)
            keys = [k for k in listed if k <= self.start] if self._wrapped and self.start else listed
            if len(listed) < self.page_size or len(keys) < len(listed):  # the end, or back at the start
                self._done = self._wrapped
                self._wrapped, self._after = True, ""
            else:
                self._after = listed[-1]
            if keys:
                return keys
        return None


class Dispatcher:
    """Hands entries one at a time to at most `workers` threads, so that dispatch can stop between
    any two; `drain` waits for everything handed over so far. The pool starts with the first entry
    (a sweep with nothing open never starts it)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._slots = threading.Semaphore(workers)
        self._pool: Any = None
        self._futures: List[Any] = []

    def submit(self, work: Callable[[str], None], key: str, allowed: Callable[[], bool]) -> bool:
        """Run `work(key)` on the next free thread, unless `allowed()` says no once one is free."""
        self._slots.acquire()
        if not allowed():
            self._slots.release()
            return False
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cosguard-sweep")
        future = self._pool.submit(contextvars.copy_context().run, work, key)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)
        return True

    def drain(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def __enter__(self) -> "Dispatcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class Cursor:
    """The ledger's saved places (`sweep/cursor.json`), read once per sweep and written only when
    one moved. A save that fails is logged, not fatal: the next run then repeats some entries."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.places: Dict[str, str] = ledger.sweep_cursor()
        self._saved = dict(self.places)

    def start(self, kind: str) -> str:
        return self.places.get(kind, "")

    def mark(self, kind: str, after: str) -> None:
        self.places[kind] = after
        if {k: v for k, v in self.places.items() if v} == {k: v for k, v in self._saved.items() if v}:
            return
        try:
            self.ledger.save_sweep_cursor(self.places)
            self._saved = dict(self.places)
        except CloudError as exc:
            event(log, "sweep_cursor_not_saved", bucket=self.ledger.bucket, listing=kind,
                  reason=f"{exc.code or type(exc).__name__}: {exc}")


def not_started(ledger: Ledger, kind: str, start: str = "") -> Dict[str, Any]:
    """A walk's progress before its first entry, as the sweep reports it."""
    return {"ledger": f"{ledger.bucket}/{ledger.prefix}", "listing": kind, "visited": 0,
            "resumed_from": start or None, "stopped_at": None, "complete": False}


def walk(ledger: Ledger, kind: str, cursor: Cursor, page_size: int, dispatcher: Dispatcher,
         work: Callable[[str], None], in_time: Callable[[], bool]) -> Dict[str, Any]:
    """Dispatch one round of `kind`/ from the cursor, a page at a time, until the round is done or
    `in_time()` says stop; each page is finished before the next is listed, and the cursor moved
    past it once there is a next one, so a run cut off by SCF still resumes near where it was. Returns this walk's
    progress, as the sweep reports it."""
    start = cursor.start(kind)
    progress = not_started(ledger, kind, start)
    round_ = Walk(ledger, kind, start, page_size)
    last = ""
    while in_time():
        page = round_.next_page()
        if page is None:
            progress["complete"] = True
            break
        if last:   # the previous page is done: saved now, not after the last page (a round cleans up)
            cursor.mark(kind, last)
        for key in page:
            if not dispatcher.submit(work, key, in_time):
                break
            last = key
            progress["visited"] += 1
        dispatcher.drain()
        if last != page[-1]:   # stopped inside the page
            break
    if not progress["complete"]:
        progress["stopped_at"] = last or start or None
    cursor.mark(kind, "" if progress["complete"] else last or start)
    return progress
