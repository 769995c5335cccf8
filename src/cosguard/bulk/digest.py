"""The daily digest (COSGUARD_DIGEST_HOUR): once a day the reconcile timer tells the webhook what
is pending, since when, and what needs a human.

Once a day across timer runs and concurrent instances: the first run at or after the hour (UTC)
writes the day's marker, `<state prefix>digests/<YYYY-MM-DD>.json`, in the state bucket of the
first served bucket, as a conditional write (`x-cos-forbid-overwrite`, cloud.py's `if_absent`);
every other run finds it there and sends nothing. A digest the webhook did not take removes its
marker again, so the next timer run tries once more. The marker holds nothing cosguard trusts:
one forged by whoever can write the state prefix only suppresses that day's digest, which a
private state bucket (docs/operations.md) rules out.

The figures are what this reconcile run already knows (its SweepReport: one listing of `jobs/`
and `retry/`, no read of history), so the digest costs one PUT and one POST a day.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional

from ..domain.status import Outcome
from ..errors import CloudError, PreconditionFailed
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.notify import Notifier
from .sweep import SweepReport

log = get_logger("cosguard.bulk.digest")

MAX_ITEMS = 10   # objects listed by name; the rest counted (a robot message is bounded: 4096 bytes)
SOURCE_NOTE = "figures of this reconcile run: pending and failed work now, verdicts the sweep applied"


def day_of(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def due(settings: Settings, now: float) -> bool:
    return settings.digest_hour is not None and time.gmtime(now).tm_hour >= settings.digest_hour


def build(settings: Settings, report: SweepReport, now: float) -> Dict[str, Any]:
    """The digest document (the `json` format as sent; notify.render_digest for the robots)."""
    figures = {
        "pending": report.pending,
        "overdue": len(report.overdue),
        "needs a human": len(report.unresolved),
        "unauthenticated ledger documents": len(report.unauthenticated),
        "verdicts applied by the sweep": sum(n for outcome, n in report.applied.items()
                                             if outcome != Outcome.PENDING.value),
        "failed submissions retried": sum(report.resubmitted.values()),
        "oldest_pending_seconds": int(report.oldest_pending),
    }
    attention: List[Dict[str, Any]] = []
    for job in sorted(report.overdue, key=lambda j: -int(j.get("age_seconds", 0))):
        attention.append({"what": "overdue", "bucket": job["bucket"], "key": job["key"],
                          "detail": f"pending {int(job['age_seconds'])} s ({job.get('state', '')})"})
    for item in report.unresolved:
        attention.append({"what": str(item.get("state") or "unresolved"), "bucket": item.get("bucket", ""),
                          "key": item.get("key", ""), "detail": str(item.get("reason", ""))})
    return {"source": "cosguard", "kind": "digest", "day": day_of(now), "deployment": settings.deployment or "",
            "buckets": list(settings.buckets), "figures": figures, "attention": attention[:MAX_ITEMS],
            "more": max(0, len(attention) - MAX_ITEMS), "source_note": SOURCE_NOTE,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


class DailyDigest:
    def __init__(self, settings: Settings, gateway: Gateway, notifier: Notifier, clock=time.time):
        self.settings = settings
        self.gateway = gateway
        self.notifier = notifier
        self.clock = clock

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
        bucket, key = self.marker(day)
        try:
            self.gateway.put_json(bucket, key, {"day": day, "claimed_at": now}, if_absent=True)
        except PreconditionFailed:
            return None   # today's was sent (or is being sent) by another run
        except CloudError as exc:
            event(log, "digest_failed", logging.WARNING, day=day, reason=f"marker not written: {exc}")
            return False
        if self.notifier.send_digest(build(self.settings, report, now)):
            event(log, "digest_sent", day=day, marker=f"{bucket}/{key}")
            return True
        try:
            self.gateway.delete(bucket, key)   # the next timer run tries again
        except CloudError:
            pass
        event(log, "digest_failed", logging.WARNING, day=day, reason="the webhook did not take it")
        return False
