"""The shapes of an operator report's figures (bulk/figures.py collects them): frozen, plain data,
and `Figures.as_dict()` for `cosguard report --json` and the daily digest."""
from __future__ import annotations

import calendar
import dataclasses
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from ..domain.status import Outcome, tag_status

VERDICTS = ("clean", "infected", "unscannable", "error", "other")


def verdict_of(outcome: str) -> str:
    """The verdict a closed job stands for: `clean`, `infected` (quarantined, deleted, tagged, and
    later restored), `unscannable`, `error`, or `other` (no verdict applied: the object changed or
    went, or CI lost the job)."""
    if outcome == Outcome.RELEASED.value:
        return "infected"
    status = tag_status(outcome)
    return status if status in VERDICTS else "other"


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def iso_to_epoch(text: str) -> float:
    """Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (COS's LastModified, Closed.when); 0 if not one."""
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0


def percentiles(samples: Sequence[int]) -> Dict[str, Optional[int]]:
    """p50, p95 and p99 by nearest rank (None without samples)."""
    ordered = sorted(samples)

    def rank(p: float) -> Optional[int]:
        if not ordered:
            return None
        return ordered[max(0, min(len(ordered) - 1, -(-int(p * len(ordered)) // 100) - 1))]
    return {"p50": rank(50), "p95": rank(95), "p99": rank(99)}


@dataclasses.dataclass(frozen=True)
class VerdictCount:
    period: str      # YYYY-MM-DD, or YYYY-MM-DDTHH for a period drawn per hour (UTC)
    bucket: str      # "" when the index entry predates its facts and the ledger serves several buckets
    verdict: str     # one of VERDICTS
    count: int


@dataclasses.dataclass(frozen=True)
class Latency:
    """Seconds from upload (or submission) to the verdict applied, of every close that knows it."""

    samples: Tuple[int, ...]
    p50: Optional[int]
    p95: Optional[int]
    p99: Optional[int]
    unknown: int     # closes whose index entry does not say (written before facts)

    @classmethod
    def of(cls, samples: Sequence[int], unknown: int) -> "Latency":
        ranks = percentiles(samples)
        return cls(tuple(sorted(samples)), ranks["p50"], ranks["p95"], ranks["p99"], max(0, unknown))


@dataclasses.dataclass(frozen=True)
class Infection:
    job_id: str
    bucket: str
    key: str
    when: str        # closed (UTC, ISO 8601)
    outcome: str
    handled: str
    now_at: str      # where the object (or its quarantined copy) is now
    viruses: Tuple[str, ...]
    size: int


@dataclasses.dataclass(frozen=True)
class VirusCount:
    name: str
    count: int       # among the infections read (Figures.infections)
    objects: Tuple[Infection, ...]


@dataclasses.dataclass(frozen=True)
class PendingItem:
    bucket: str
    key: str
    job_id: str
    status: str      # pending | error
    how: str
    age_seconds: int


@dataclasses.dataclass(frozen=True)
class HumanItem:
    kind: str        # permanent failure | forged document | possible write loss
    bucket: str
    key: str
    reason: str
    command: str     # what resolves it (a shell line; the key quoted)
    id: str = ""     # a possible write loss's record (`cosguard ledger ack ID`)
    when: str = ""   # a possible write loss: when it was recorded (UTC, ISO 8601)


@dataclasses.dataclass(frozen=True)
class Quarantined:
    bucket: str
    key: str
    size: int
    modified: str
    age_seconds: int


@dataclasses.dataclass(frozen=True)
class Restore:
    job_id: str
    bucket: str
    key: str
    when: str


@dataclasses.dataclass(frozen=True)
class Cost:
    ci_scans: int
    ci_requests: int            # estimate: one submission and one query per scan
    cos_requests: int           # estimate per close (figures.COS_REQUESTS_PER_CLOSE)
    price_per_1000: float       # CNY per 1,000 CI scans (an assumption unless passed)
    amount: float
    currency: str = "CNY"


@dataclasses.dataclass(frozen=True)
class RescanFinding:
    """An object a rescan found infected: its verdicts' dates from the rescan job's closed/ record."""

    job_id: str      # the rescan's job
    bucket: str
    key: str
    first_verdict: str     # the write's first (clean) verdict (UTC, ISO 8601; "" when the record does not say)
    previous_verdict: str  # the clean verdict this rescan checked again ("" when unknown)
    when: str              # the rescan's verdict (closed, UTC)
    outcome: str
    handled: str
    now_at: str
    viruses: Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Rescans:
    """Rescans' verdicts (history.py's `rescan` mark), apart from the uploads' (Figures.verdicts)."""

    verdicts: Tuple[VerdictCount, ...] = ()       # per period, bucket and verdict
    found_total: int = 0                          # rescans in the period that found the object infected
    found: Tuple[RescanFinding, ...] = ()         # the newest of them read (--detail)
    after_days: Optional[float] = None            # COSGUARD_RESCAN_AFTER_DAYS (None: no scheduled rescans)
    backlog: Optional[int] = None                 # writes due for a scheduled rescan now (None when off)

    def totals(self) -> Dict[str, int]:
        found = {v: 0 for v in VERDICTS}
        for row in self.verdicts:
            found[row.verdict] += row.count
        return found


@dataclasses.dataclass(frozen=True)
class Figures:
    since: float
    until: float
    bucket: Optional[str]
    grain: str                          # hour | day
    verdicts: Tuple[VerdictCount, ...]
    upload_latency: Latency
    submit_latency: Latency
    latency_trend: Tuple[Tuple[str, Dict[str, Optional[int]]], ...]
    viruses: Tuple[VirusCount, ...]
    infections_total: int               # infected closes in the period (Figures.infections: the newest read)
    infections: Tuple[Infection, ...]
    pending: Tuple[PendingItem, ...]    # the oldest open items (up to the detail asked)
    pending_total: int
    oldest_pending_seconds: int
    needs_human: Tuple[HumanItem, ...]
    losses_total: int                   # possible write losses on record (needs_human: the newest read)
    quarantine: Tuple[Quarantined, ...]
    restores: Tuple[Restore, ...]
    restores_total: int
    cost: Cost
    unreadable: Tuple[str, ...]
    rescans: Rescans = dataclasses.field(default_factory=Rescans)

    def totals(self) -> Dict[str, int]:
        """Closes in the period per verdict (every verdict named, 0 when none)."""
        found = {v: 0 for v in VERDICTS}
        for row in self.verdicts:
            found[row.verdict] += row.count
        return found

    def periods(self) -> Tuple[str, ...]:
        """Every period from `since` to `until` (UTC days or hours), empty ones too: a time axis."""
        step = 3600 if self.grain == "hour" else 86400
        spelled = "%Y-%m-%dT%H" if self.grain == "hour" else "%Y-%m-%d"
        found = {row.period for row in self.verdicts + self.rescans.verdicts}
        moment = self.since - self.since % step
        while moment <= self.until:
            found.add(time.strftime(spelled, time.gmtime(moment)))
            moment += step
        return tuple(sorted(found))

    def as_dict(self) -> Dict[str, Any]:
        document = dataclasses.asdict(self)
        document["since"], document["until"] = iso(self.since), iso(self.until)
        document["totals"] = self.totals()
        document["upload_latency"].pop("samples")
        document["submit_latency"].pop("samples")
        document["upload_latency"]["count"] = len(self.upload_latency.samples)
        document["submit_latency"]["count"] = len(self.submit_latency.samples)
        document["latency_trend"] = [{"period": p, **ranks} for p, ranks in self.latency_trend]
        for virus in document["viruses"]:
            virus["objects"] = [{k: o[k] for k in ("bucket", "key", "when", "now_at", "job_id")}
                                for o in virus["objects"]]
        document["quarantine_bytes"] = sum(q.size for q in self.quarantine)
        document["rescans"]["totals"] = self.rescans.totals()
        return document
