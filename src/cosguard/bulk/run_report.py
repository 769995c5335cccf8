"""What a backfill (or rescan, rescan.py) run is asked to do (`Options`) and what it reports
(`Report`, the JSON `cosguard backfill` prints); the run itself is backfill.py's."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..domain.status import Outcome
from .invoke import Invoker

# CI's price per virus scan is not in our reference docs: this default is an ASSUMPTION for the
# dry-run estimate only (CNY per 1,000 scans). Pass --price-per-1000 with your contract's price.
DEFAULT_PRICE_PER_1000 = 0.50
# Objects in flight. Each costs six round trips one after another (HEAD, claim, handled-record check,
# submit, tag, job entry), so 64 in flight keep ~10 objects per round trip time moving, 10x a serial
# loop of bare submissions while the network is the limit. The threads wait on the network; past
# ~60 objects/s a core of CPU is the limit instead (benchmarks/bench_backfill.py): --fan-out.
DEFAULT_WORKERS = 64


@dataclass
class Options:
    bucket: str
    prefix: str = ""
    workers: int = DEFAULT_WORKERS
    rps: Optional[float] = None           # scans (or fanned-out records) per second, None = no cap
    page_size: int = 1000
    dry_run: bool = False
    checkpoint: Optional[str] = None
    resume: bool = False
    price_per_1000: float = DEFAULT_PRICE_PER_1000
    versioned: Optional[bool] = None      # None: ask COS (GetBucketVersioning)
    invoker: Optional[Invoker] = None     # set: fan out to scan_on_upload instead of scanning here
    batch_size: int = 100
    function: str = "scan_on_upload"
    namespace: str = "default"
    inventory: Optional[str] = None       # <bucket>/<key of manifest.json>: the report is the listing
    rows_per_invocation: Optional[int] = None   # --inventory --fan-out: records per invocation (None: a file)
    inventory_keys: str = "url"           # "raw": the report's keys are not URL-encoded (not COS's documented form)


@dataclass
class Report:
    bucket: str
    prefix: str
    mode: str
    versioned: bool = False
    listed: int = 0
    bytes_listed: int = 0
    processed: int = 0
    processed_bytes: int = 0
    scan_bytes: int = 0
    pages: int = 0
    invocations: int = 0
    ledger_claims: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    skip_reasons: Dict[str, int] = field(default_factory=dict)
    errors: List[Dict[str, str]] = field(default_factory=list)
    interrupted: bool = False
    complete: bool = False
    failure: str = ""                 # why the run stopped early (a listing that kept failing)
    inventory: Optional[str] = None   # the report's manifest, when it was the listing
    at_limit: bool = False            # stopped at --max-scans (rescan.py): the checkpoint resumes it
    resumed_from: Optional[Dict[str, str]] = None
    price_per_1000: float = DEFAULT_PRICE_PER_1000
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def scans(self) -> int:
        """Scans this run submitted (or would submit, in a dry run; or handed to SCF, fanned out)."""
        if self.mode == "rescan":   # rescan jobs, and new writes found on the way (rescanning.py)
            return self.counts.get(Outcome.RESCANNED.value, 0) + self.counts.get(Outcome.SUBMITTED.value, 0)
        return self.counts.get("to_scan" if self.mode == "dry-run" else
                               "sent" if self.mode == "fan-out" else Outcome.SUBMITTED.value, 0)

    @property
    def failed(self) -> bool:
        return bool(self.counts.get(Outcome.ERROR.value, 0) or self.failure)

    def as_dict(self) -> Dict[str, Any]:
        seconds = self.seconds
        return {
            "bucket": self.bucket, "prefix": self.prefix, "mode": self.mode, "versioned": self.versioned,
            "listed": self.listed, "bytes_listed": self.bytes_listed, "pages": self.pages,
            "counts": dict(sorted(self.counts.items())), "skip_reasons": dict(sorted(self.skip_reasons.items())),
            "scan_bytes": self.scan_bytes, "ledger_claims": self.ledger_claims,
            "invocations": self.invocations, "seconds": round(seconds, 3),
            "objects_per_second": round(self.processed / seconds, 1) if seconds > 0 else 0.0,
            "estimated_cost": {"scans": self.scans, "price_per_1000": self.price_per_1000,
                               "amount": round(self.scans * self.price_per_1000 / 1000.0, 4),
                               "currency": "CNY", "assumed_price": True},
            "interrupted": self.interrupted, "complete": self.complete, "resumed_from": self.resumed_from,
            "at_limit": self.at_limit,
            "failure": self.failure, "errors": self.errors[:50], "inventory": self.inventory,
        }


__all__ = ["DEFAULT_PRICE_PER_1000", "DEFAULT_WORKERS", "Options", "Report"]
