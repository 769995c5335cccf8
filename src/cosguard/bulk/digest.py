"""The daily digest (COSGUARD_DIGEST_HOUR): once a day the reconcile timer tells the webhook what
cosguard did in the last 24 hours, what is pending and since when, and what needs a human.

Once a day across timer runs and concurrent instances: the first run at or after the hour (UTC)
writes the day's marker, `<state prefix>digests/<YYYY-MM-DD>.json`, in the state bucket of the
first served bucket, as a conditional write (`x-cos-forbid-overwrite`, cloud.py's `if_absent`);
every other run finds it there and sends nothing. A digest the webhook did not take removes its
marker again, so the next timer run tries once more. The marker holds nothing cosguard trusts:
one forged by whoever can write the state prefix only suppresses that day's digest, which a
private state bucket (docs/operations.md) rules out.

The figures are the operator report's (bulk/figures.py, `collect_figures` over the last 24 hours:
the history index, open work and quarantine listings, never a read per job of the day), with the
overdue jobs this sweep found. When they cannot be collected, the digest says so and carries what
the sweep itself knows (its SweepReport).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..domain.ledger import Ledger
from ..domain.status import Outcome
from ..errors import CloudError, PreconditionFailed
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.notify import Notifier
from .figures import collect_figures
from .figures_model import Figures
from .sweep import SweepReport

log = get_logger("cosguard.bulk.digest")

MAX_ITEMS = 10   # objects listed by name; the rest counted (a robot message is bounded: 4096 bytes)
PERIOD = 86400
FROM_FIGURES = "the last 24 hours (cosguard report's figures), and the jobs this sweep found overdue"
FROM_SWEEP = "the report's figures could not be read: this reconcile run's own (pending and failed work now)"


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def due(settings: Settings, now: float) -> bool:
    return settings.digest_hour is not None and time.gmtime(now).tm_hour >= settings.digest_hour


def _overdue(report: SweepReport) -> List[Dict[str, Any]]:
    return [{"what": "overdue", "bucket": job["bucket"], "key": job["key"],
             "detail": f"pending {int(job['age_seconds'])} s ({job.get('state', '')})"}
            for job in sorted(report.overdue, key=lambda j: -int(j.get("age_seconds", 0)))]


def _from_figures(figures: Figures, report: SweepReport) -> tuple:
    totals = figures.totals()
    numbers = {"verdicts": sum(totals.values()), "clean": totals["clean"], "infected": totals["infected"],
               "unscannable": totals["unscannable"], "error": totals["error"], "pending": figures.pending_total,
               "overdue": len(report.overdue), "needs a human": len(figures.needs_human),
               "in quarantine": len(figures.quarantine), "restored": figures.restores_total,
               "upload_to_verdict_p50_seconds": figures.upload_latency.p50,
               "upload_to_verdict_p95_seconds": figures.upload_latency.p95,
               "oldest_pending_seconds": figures.oldest_pending_seconds,
               "rescans": sum(figures.rescans.totals().values()), "found on rescan": figures.rescans.found_total}
    if figures.rescans.backlog is not None:
        numbers["due for rescan"] = figures.rescans.backlog
    attention = [{"what": item.kind, "bucket": item.bucket, "key": item.key, "detail": item.reason}
                 for item in figures.needs_human] + _overdue(report)
    # served as clean until a rescan: listed before the uploads found infected
    attention += [{"what": "found on rescan", "bucket": item.bucket, "key": item.key,
                   "detail": f"{', '.join(item.viruses)}; clean on {item.first_verdict or '?'}, infected on "
                             f"{item.when}; {item.handled}; now at {item.now_at}"}
                  for item in figures.rescans.found]
    attention += [{"what": "infected", "bucket": item.bucket, "key": item.key,
                   "detail": f"{', '.join(item.viruses)}; {item.handled}; now at {item.now_at}"}
                  for item in figures.infections]
    viruses = [{"name": v.name, "count": v.count} for v in figures.viruses[:5]]
    return numbers, attention, viruses, list(figures.unreadable)


def _from_sweep(report: SweepReport) -> tuple:
    numbers = {"pending": report.pending, "overdue": len(report.overdue), "needs a human": len(report.unresolved),
               "unauthenticated ledger documents": len(report.unauthenticated),
               "verdicts applied by the sweep": sum(n for outcome, n in report.applied.items()
                                                    if outcome != Outcome.PENDING.value),
               "oldest_pending_seconds": int(report.oldest_pending)}
    attention = _overdue(report) + [
        {"what": str(item.get("state") or "unresolved"), "bucket": item.get("bucket", ""),
         "key": item.get("key", ""), "detail": str(item.get("reason", ""))} for item in report.unresolved]
    return numbers, attention, [], []


def build(settings: Settings, report: SweepReport, now: float, figures: Optional[Figures] = None) -> Dict[str, Any]:
    """The digest document (the `json` format as sent; notify.render_digest for the robots)."""
    numbers, attention, viruses, unreadable = _from_figures(figures, report) if figures else _from_sweep(report)
    return {"source": "cosguard", "kind": "digest", "day": day_of(now), "deployment": settings.deployment or "",
            "buckets": list(settings.buckets), "figures": numbers, "viruses": viruses,
            "attention": attention[:MAX_ITEMS], "more": max(0, len(attention) - MAX_ITEMS),
            "source_note": FROM_FIGURES if figures else FROM_SWEEP, "unreadable": unreadable,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


class DailyDigest:
    def __init__(self, settings: Settings, gateway: Gateway, notifier: Notifier,
                 ledgers: Callable[[], Sequence[Ledger]], sealer: Any, clock=time.time):
        self.settings = settings
        self.gateway = gateway
        self.notifier = notifier
        self.ledgers = ledgers
        self.sealer = sealer
        self.clock = clock
        self.done_day = ""   # a warm instance that saw today's marker writes nothing more today

    def figures(self, now: float) -> Optional[Figures]:
        try:
            return collect_figures(self.settings, self.gateway, self.ledgers(), self.sealer, since=PERIOD,
                                   now=now, detail=MAX_ITEMS, workers=min(8, self.settings.max_workers))
        except CloudError as exc:
            event(log, "digest_failed", logging.WARNING, day=day_of(now), reason=f"figures not read: {exc}")
            return None

    def marker(self, day: str) -> tuple:
        bucket = self.settings.state_bucket_for(self.settings.buckets[0])
        return bucket, f"{self.settings.state_prefix}digests/{day}.json"

    def send_if_due(self, report: SweepReport) -> Optional[bool]:
        """None when no digest is due (or another run sent today's); else whether it went out.
        Never raises: the sweep's own work is done and reported whatever happens here."""
        now = self.clock()
        if not due(self.settings, now):
            return None
        day = day_of(now)
        if day == self.done_day:
            return None
        bucket, key = self.marker(day)
        try:
            self.gateway.put_json(bucket, key, {"day": day, "claimed_at": now}, if_absent=True)
        except PreconditionFailed:
            self.done_day = day
            return None   # today's was sent (or is being sent) by another run
        except CloudError as exc:
            event(log, "digest_failed", logging.WARNING, day=day, reason=f"marker not written: {exc}")
            return False
        if self.notifier.send_digest(build(self.settings, report, now, self.figures(now))):
            event(log, "digest_sent", day=day, marker=f"{bucket}/{key}")
            self.done_day = day
            return True
        try:
            self.gateway.delete(bucket, key)   # the next timer run tries again
        except CloudError:
            pass
        event(log, "digest_failed", logging.WARNING, day=day, reason="the webhook did not take it")
        return False
