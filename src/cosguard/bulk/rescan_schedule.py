"""Scheduled rescans: each timer run (reconcile_pending, after its sweep) rescans a slice of the
writes whose clean verdict is older than COSGUARD_RESCAN_AFTER_DAYS, oldest verdicts first.

- The slice comes from the rescan index (domain/rescans.py): a LIST from its start, stopping at the
  first verdict not yet due, so a run costs one LIST per 1,000 due writes, never a read of history.
- Never more than COSGUARD_RESCAN_DAILY_BUDGET a UTC day, across runs and concurrent instances: each
  rescan first takes a numbered slot `<state prefix>rescan-budget/<day>/<n>.json` with a
  forbid-overwrite write (doc 436/7749, `x-cos-forbid-overwrite`), so two instances never take the
  same slot and slot `budget + 1` is never taken.
- Not in COSGUARD_RESCAN_QUIET_HOURS (UTC), and not past the invocation's deadline (less the sweep's
  margin).
"""
from __future__ import annotations

import time
from itertools import islice
from typing import Any, Dict, Optional, Tuple

from ..domain.ledger import Ledger
from ..domain.rescanning import rescan_object
from ..domain.rescans import RescanIndex, is_due, read_verdict
from ..domain.status import Outcome
from ..errors import CloudError, PreconditionFailed
from ..infra.records import Factory, Record
from ..infra.retry import current_deadline

BUDGET = "rescan-budget"


class ScheduledReport(Record):
    counts: Dict[str, int] = Factory(dict)
    budget: int = 0
    used_today: int = 0
    stopped: str = ""     # why the run ended early: `quiet hours`, `daily budget`, `deadline`

    def as_dict(self) -> Dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "budget": self.budget,
                "used_today": self.used_today, "stopped": self.stopped}


def in_quiet_hours(hours: Optional[Tuple[int, int]], now: float) -> bool:
    if not hours:
        return False
    hour, (start, end) = time.gmtime(now).tm_hour, hours
    return start <= hour < end if start < end else (hour >= start or hour < end)


class DailyBudget:
    """The day's rescan slots in one ledger (shared by every instance of the timer)."""

    def __init__(self, ledger: Ledger, day: str, limit: int):
        self.ledger, self.limit = ledger, limit
        self.base = f"{ledger.prefix}{BUDGET}/{day}/"
        # one LIST: slots are taken in order, so the count is the next number to try
        self.taken = sum(1 for _ in islice(ledger.gateway.list(ledger.bucket, prefix=self.base), limit + 1))

    def take(self) -> bool:
        while self.taken < self.limit:
            self.taken += 1
            try:
                self.ledger._write(f"{self.base}{self.taken:08d}.json", {"slot": self.taken}, if_absent=True)
                return True
            except PreconditionFailed:   # another instance took it: try the next
                continue
        return False


def scheduled_rescans(scanner, deadline: Any = None, margin: Optional[float] = None) -> ScheduledReport:
    """One timer run's slice (module docstring)."""
    settings = scanner.settings
    report = ScheduledReport(budget=settings.rescan_daily_budget)
    if settings.rescan_after_days is None:
        return report
    now = scanner.clock()
    if in_quiet_hours(settings.rescan_quiet_hours, now):
        report.stopped = "quiet hours"
        return report
    deadline = current_deadline() if deadline is None else deadline
    margin = settings.sweep_margin_seconds if margin is None else margin
    before = now - settings.rescan_after_days * 86400
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    seen = set()
    for bucket in settings.buckets:
        ledger = scanner.ledger(bucket)
        if (ledger.bucket, ledger.prefix) in seen:   # one state location may serve several buckets
            continue
        seen.add((ledger.bucket, ledger.prefix))
        budget = DailyBudget(ledger, day, settings.rescan_daily_budget)
        try:
            _slice(scanner, ledger, budget, before, deadline, margin, report)
        finally:
            report.used_today = max(report.used_today, min(budget.taken, budget.limit))
        if report.stopped:
            break
    return report


def _slice(scanner, ledger: Ledger, budget: DailyBudget, before: float, deadline, margin: float,
           report: ScheduledReport) -> None:
    index = RescanIndex(ledger)
    for due in index.due(before):
        if deadline.remaining() < margin:
            report.stopped = "deadline"
            return
        record = read_verdict(ledger, due.name)
        if record is None or not is_due(record, before) or not scanner.settings.serves(str(record.get("bucket"))):
            _drop(ledger, due.key)   # a later verdict moved it, or the write is gone from the ledger
            continue
        if not budget.take():
            report.stopped = "daily budget"
            return
        result = rescan_object(scanner, str(record["bucket"]), str(record["key"]), before, str(record["token"]),
                               record=record)
        report.counts[result.outcome.value] = report.counts.get(result.outcome.value, 0) + 1
        if result.outcome in (Outcome.GONE, Outcome.NOT_DUE, Outcome.SKIPPED) or (
                result.version and result.version != record["token"]):
            _drop(ledger, due.key)   # overwritten or gone: the write it named will never be rescanned


def _drop(ledger: Ledger, key: str) -> None:
    try:
        ledger.gateway.delete(ledger.bucket, key)
    except CloudError:
        pass   # the next run drops it
