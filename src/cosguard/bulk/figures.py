"""The figures of an operator report (`cosguard report`, the daily digest): what cosguard did in a
period, read from the ledger's bounded sources only.

    collect_figures(settings, gateway, ledgers, sealer, since=7 * 86400, bucket=None) -> Figures

What is read, and what it costs (never one read per job of the period):
- verdicts, latency, restores, CI scans: the history index (domain/history.py), one LIST per 1,000
  closes per day of the period; bucket and waits come from each entry's `facts` (entries written
  before them count as bucket "" and wait unknown);
- pending and needs-a-human: `jobs/` and `retry/` (domain/open_work.py), a read per open document:
  the cost of the unfinished work, as `cosguard status` and the sweep pay it; possible write losses:
  one LIST of `losses/` (domain/losses.py), and a GET of the newest `detail` records only;
- top viruses: the closed/ records of the newest `detail` infections only (a GET each, in
  parallel), and a HEAD of each quarantined copy among them (where it is now);
- quarantine contents: one LIST per 1,000 copies of each quarantine location.
Everything in Figures is plain data (frozen dataclasses), rendered by ui/report_html.py and
`Figures.as_dict()` (`cosguard report --json`); uploader-controlled text is kept as it is, and
escaped by whoever renders it.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar

from ..domain.history import Closed
from ..domain.ledger import ForgedDocument, Ledger
from ..domain.losses import ID_PATTERN, LossEntry, ack_command
from ..domain.open_work import tally_open_work
from ..domain.rescans import RescanIndex
from ..domain.status import Outcome, handled_as
from ..errors import CloudError
from ..infra.config import Settings
from ..infra.gateway import Gateway
from .backfill import DEFAULT_PRICE_PER_1000
from .figures_model import (
    Cost,
    Figures,
    HumanItem,
    Infection,
    Latency,
    PendingItem,
    Quarantined,
    RescanFinding,
    Rescans,
    Restore,
    VerdictCount,
    VirusCount,
    iso,
    iso_to_epoch,
    percentiles,
    verdict_of,
)
from .where import now_at

T = TypeVar("T")

# COS requests per closed job, from `benchmarks/bench_api_calls.py` (docs/performance.md, "API calls
# per object"): upload trigger 5 + callback 8 for a clean object, 5 + 10 for one moved to quarantine.
# An ESTIMATE: retries, duplicate events and sweeps add to it. CI: one submission and one query.
COS_REQUESTS_PER_CLOSE = {"quarantined": 15, "deleted": 14, "promoted": 15, "released": 15}
COS_REQUESTS_DEFAULT = 13
COS_REQUESTS_UNSCANNABLE = 3   # HEAD, tag, its index entry: no job
CI_REQUESTS_PER_SCAN = 2
HOUR_GRAIN_UP_TO = 2 * 86400   # a period this short is drawn per hour, a longer one per day
DEFAULT_DETAIL = 50            # closed records read (newest infections, restores): rows, not counts


def served_by(settings: Settings, ledger: Ledger) -> List[str]:
    return [b for b in settings.buckets if settings.state_bucket_for(b) == ledger.bucket]


def collect_figures(settings: Settings, gateway: Gateway, ledgers: Sequence[Ledger], sealer: Any,
                    since: float = 7 * 86400, bucket: Optional[str] = None, now: Optional[float] = None,
                    detail: int = DEFAULT_DETAIL, price_per_1000: float = DEFAULT_PRICE_PER_1000,
                    workers: int = 8) -> Figures:
    """The figures of the last `since` seconds (whole UTC days for the index: its first day is read
    whole, then cut at `now - since`), of `bucket` only when given."""
    now = time.time() if now is None else now
    start = now - since
    grain = "hour" if since <= HOUR_GRAIN_UP_TO else "day"
    counts: Dict[Tuple[str, str, str], int] = {}
    upload_waits: List[int] = []
    submit_waits: List[int] = []
    by_period: Dict[str, List[int]] = {}
    unknown_wait = 0
    infected: List[Tuple[Ledger, Closed, str]] = []
    released: List[Tuple[Ledger, Closed, str]] = []
    pending: List[PendingItem] = []
    human: List[HumanItem] = []
    unreadable: List[str] = []
    losses: List[Tuple[Ledger, LossEntry]] = []
    pending_total, oldest_age, scans, cos_requests = 0, 0.0, 0, 0
    rescan_counts: Dict[Tuple[str, str, str], int] = {}
    found: List[Tuple[Ledger, Closed, str]] = []
    backlog = 0
    for ledger in ledgers:
        served = served_by(settings, ledger)
        if bucket is not None and bucket not in served:
            continue
        try:
            for item in ledger.history.since(since, now):
                closed_at = iso_to_epoch(item.when)
                where = item.bucket or (served[0] if len(served) == 1 else "")
                if closed_at < start or (bucket is not None and where != bucket):
                    continue
                period = item.day if grain == "day" else f"{item.day}T{item.time[:2]}"
                row = (period, where, verdict_of(item.outcome))
                scans += 1 if item.scanned else 0
                cos_requests += (COS_REQUESTS_PER_CLOSE.get(item.outcome, COS_REQUESTS_DEFAULT) if item.scanned
                                 else COS_REQUESTS_UNSCANNABLE)
                if item.outcome == Outcome.RELEASED.value:
                    released.append((ledger, item, where))
                if item.rescan:   # a rescan's verdict: not an upload's, and its wait is not a latency
                    rescan_counts[row] = rescan_counts.get(row, 0) + 1
                    if row[2] == "infected" and item.outcome != Outcome.RELEASED.value:
                        found.append((ledger, item, where))
                    continue
                counts[row] = counts.get(row, 0) + 1
                if item.upload_wait is not None:
                    upload_waits.append(item.upload_wait)
                    by_period.setdefault(period, []).append(item.upload_wait)
                else:
                    unknown_wait += 1
                if item.submit_wait is not None:
                    submit_waits.append(item.submit_wait)
                if verdict_of(item.outcome) == "infected" and item.outcome != Outcome.RELEASED.value:
                    infected.append((ledger, item, where))
            if settings.rescan_after_days is not None:   # due for a scheduled rescan: a LIST, as status
                backlog += RescanIndex(ledger).count_due(now - settings.rescan_after_days * 86400)
            work = tally_open_work(ledger, now, keep=detail)
            losses += [(ledger, e) for e in ledger.loss_entries(bucket)]
        except CloudError as exc:   # this ledger's figures are partial; the others are still read
            unreadable.append(f"{ledger.bucket}/{ledger.prefix}: {exc.code or type(exc).__name__}: {exc}")
            continue
        for (status, _how), count in work.rows.items():
            pending_total += count if status == "pending" else 0
        for open_item in work.oldest_items():
            if bucket is None or open_item.bucket == bucket:
                pending.append(PendingItem(open_item.bucket, open_item.key, open_item.job_id, open_item.status,
                                           open_item.how, int(open_item.age)))
        oldest_age = max([oldest_age] + [p.age_seconds for p in pending if p.status == "pending"])
        for held in work.held:
            if bucket is None or held.bucket == bucket:
                human.append(HumanItem("permanent failure", held.bucket, held.key, held.reason or held.how,
                                       f"cosguard ledger forget {_quote(held.key)} --bucket {held.bucket}"))
    infections = _infections(settings, gateway, infected, detail, workers)
    restores = _restores(gateway, released, detail, workers)
    human += _losses(losses, detail, workers)
    for location in sealer.take_rejected():
        human.append(_forged(location, ledgers))
    quarantined = _quarantine(settings, gateway, bucket, now, unreadable)
    return Figures(
        since=start, until=now, bucket=bucket, grain=grain,
        verdicts=tuple(VerdictCount(p, b, v, n) for (p, b, v), n in sorted(counts.items())),
        upload_latency=Latency.of(upload_waits, unknown_wait),
        submit_latency=Latency.of(submit_waits, len(upload_waits) + unknown_wait - len(submit_waits)),
        latency_trend=tuple((period, percentiles(waits)) for period, waits in sorted(by_period.items())),
        viruses=_viruses(infections), infections_total=len(infected), infections=tuple(infections),
        pending=tuple(sorted(pending, key=lambda p: -p.age_seconds)), pending_total=pending_total,
        oldest_pending_seconds=int(oldest_age), needs_human=tuple(human), losses_total=len(losses),
        quarantine=tuple(sorted(quarantined, key=lambda q: -q.age_seconds)), restores=tuple(restores),
        restores_total=len(released),
        cost=Cost(scans, scans * CI_REQUESTS_PER_SCAN, cos_requests, price_per_1000,
                  round(scans * price_per_1000 / 1000.0, 4)),
        unreadable=tuple(unreadable),
        rescans=Rescans(tuple(VerdictCount(p, b, v, n) for (p, b, v), n in sorted(rescan_counts.items())),
                        len(found), tuple(_found_on_rescan(settings, gateway, found, detail, workers)),
                        settings.rescan_after_days, backlog if settings.rescan_after_days is not None else None))


def _losses(losses: List[Tuple[Ledger, LossEntry]], detail: int, workers: int) -> List[HumanItem]:
    """The newest `detail` possible write losses, read in parallel; a record cosguard did not seal is
    reported by the sealer (a forged document, below), never shown as a loss."""
    def read(found: Tuple[Ledger, LossEntry]) -> Optional[HumanItem]:
        ledger, entry = found
        try:
            doc = ledger.read_loss(entry)
        except (CloudError, ForgedDocument):
            return None
        if doc is None:
            return None
        recorded = doc.get("recorded_at")
        return HumanItem("possible write loss", entry.bucket, str(doc["key"]), str(doc.get("detail") or ""),
                         ack_command(entry.bucket, entry.loss_id), entry.loss_id,
                         iso(recorded) if isinstance(recorded, (int, float)) else "")
    newest = sorted(losses, key=lambda f: (f[1].modified, f[1].ledger_key), reverse=True)[:detail]
    return [h for h in _parallel(read, newest, workers) if h is not None]


def _forged(location: str, ledgers: Sequence[Ledger]) -> HumanItem:
    """A document that failed its seal; one planted as a loss record goes with the command that deletes it."""
    state_bucket, _, key = location.partition("/")
    command = "cosguard verify"
    for ledger in ledgers:
        base = ledger.losses_prefix()
        if ledger.bucket == state_bucket and key.startswith(base) and key.endswith(".json"):
            where, _, name = key[len(base):-len(".json")].partition("/")
            if ID_PATTERN.match(name):
                command = f"cosguard verify; {ack_command(where, name)}"
    return HumanItem("forged document", state_bucket, key,
                     "carries no valid cosguard seal or cannot be read: ignored (written by someone else?)", command)


def _quote(key: str) -> str:
    """A key as one shell word (single quotes; a quote inside closed and reopened)."""
    return "'" + key.replace("'", "'\"'\"'") + "'"


def _parallel(work, items: Iterable[Any], workers: int) -> List[Any]:
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(work, items))


def _newest(found: List[Tuple[Ledger, Closed, str]], detail: int) -> List[Tuple[Ledger, Closed, str]]:
    return sorted(found, key=lambda f: (f[1].day, f[1].time), reverse=True)[:detail]


def _read_closed(found: List[Tuple[Ledger, Closed, str]], detail: int, workers: int,
                 build: Callable[[Any, Closed, Tuple[str, ...]], T]) -> List[T]:
    """The newest `detail` closed/ records of `found`, each given to `build(entry, closed, viruses)`
    (`(unnamed)` when CI named none); a record expired, unreadable, or written by a release before
    facts is left out."""
    def read(item: Tuple[Ledger, Closed, str]) -> Optional[T]:
        ledger, closed, _ = item
        try:
            entry = ledger.get_job(closed.job_id)
        except CloudError:
            entry = None
        if entry is None:
            return None
        findings = entry.manifest.get("findings", []) if isinstance(entry.manifest, dict) else []
        viruses = tuple(sorted({str(f.get("virus") or "(unnamed)") for f in findings if isinstance(f, dict)}))
        return build(entry, closed, viruses or ("(unnamed)",))
    return [r for r in _parallel(read, _newest(found, detail), workers) if r is not None]


def _infections(settings: Settings, gateway: Gateway, infected: List[Tuple[Ledger, Closed, str]],
                detail: int, workers: int) -> List[Infection]:
    return _read_closed(infected, detail, workers, lambda entry, item, viruses: Infection(
        entry.job_id, entry.bucket, entry.key, item.when, str(entry.outcome), handled_as(str(entry.outcome)),
        now_at(settings, entry, gateway), viruses, int(entry.size)))


def _found_on_rescan(settings: Settings, gateway: Gateway, found: List[Tuple[Ledger, Closed, str]],
                     detail: int, workers: int) -> List[RescanFinding]:
    """The newest `detail` objects found infected on rescan, each with its verdicts' dates (the rescan
    job's closed/ record: `first_verdict_at`, `verdict_at`; rescans.py)."""
    return _read_closed(found, detail, workers, lambda entry, closed, viruses: RescanFinding(
        entry.job_id, entry.bucket, entry.key, iso(entry.first_verdict_at) if entry.first_verdict_at else "",
        iso(entry.verdict_at) if entry.verdict_at else "", closed.when, str(entry.outcome),
        handled_as(str(entry.outcome)), now_at(settings, entry, gateway), viruses))


def _restores(gateway: Gateway, released: List[Tuple[Ledger, Closed, str]], detail: int,
              workers: int) -> List[Restore]:
    def read(found: Tuple[Ledger, Closed, str]) -> Restore:
        ledger, item, where = found
        try:
            entry = ledger.get_job(item.job_id)
        except CloudError:
            entry = None
        return Restore(item.job_id, entry.bucket if entry else where, entry.key if entry else "", item.when)
    return _parallel(read, _newest(released, detail), workers)


def _viruses(infections: Iterable[Infection]) -> Tuple[VirusCount, ...]:
    named: Dict[str, List[Infection]] = {}
    for infection in infections:
        for virus in infection.viruses:
            named.setdefault(virus, []).append(infection)
    return tuple(VirusCount(virus, len(objects), tuple(objects))
                 for virus, objects in sorted(named.items(), key=lambda v: (-len(v[1]), v[0])))


def _quarantine(settings: Settings, gateway: Gateway, bucket: Optional[str], now: float,
                unreadable: List[str]) -> List[Quarantined]:
    """Every copy under each quarantine location (of `bucket`'s only, when given): one LIST per 1,000."""
    sources = [bucket] if bucket is not None else list(settings.buckets)
    copies: List[Quarantined] = []
    for place in sorted({(settings.quarantine_bucket_for(b), settings.quarantine_prefix) for b in sources}):
        try:
            for item in gateway.list(place[0], prefix=place[1]):
                modified = iso_to_epoch(str(item.get("LastModified") or ""))
                copies.append(Quarantined(place[0], str(item["Key"]), int(item.get("Size") or 0),
                                          iso(modified) if modified else "",
                                          int(now - modified) if modified else 0))
        except CloudError as exc:
            unreadable.append(f"{place[0]}/{place[1]}: {exc.code or type(exc).__name__}: {exc}")
    return copies


__all__ = ["COS_REQUESTS_PER_CLOSE", "DEFAULT_DETAIL", "Figures", "collect_figures"]
