"""The ledger's unfinished work, counted as the sweep sees it: `cosguard status` reads `jobs/`
and `retry/` through the same classification (states.classify, states.retry_state) the sweep
acts on, so an upload counts once, as what it is (a failed submission is an `error`, never also
`pending`), and only a job that exists can be the oldest pending one."""
from __future__ import annotations

import heapq
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

from .entries import JobEntry, digest
from .ledger import Ledger, OpenClaim
from .states import RetryState, Standing, retry_state

# (status, how it is being handled) per standing and per retry state: `status`'s table rows
CLAIM_ROWS = {
    Standing.WAITING: ("pending", "waiting for CI"),
    Standing.SUBMITTING: ("pending", "being submitted"),
    Standing.ORPHANED: ("pending", "its submitter died: the sweep submits it again"),
    Standing.FAILED: ("error", "submission failed: the sweep submits it again"),
}
RETRY_ROWS = {
    RetryState.RETRYING: CLAIM_ROWS[Standing.FAILED],
    RetryState.REFUSED: ("error", "submission refused: submitted again with backoff"),
    RetryState.HELD: ("error", "needs a human (or `cosguard ledger forget`)"),
}


def pending_age(claim: OpenClaim, now: float) -> float:
    """How long a pending job has waited: on COS's clock since its entry was last written (its
    submission or rebinding), or by the reader's clock when COS gave no times."""
    age = claim.stamp.age if claim.stamp is not None else None
    return float(age) if age is not None else now - claim.entry.submitted_at


class OpenItem(NamedTuple):
    """One upload of the open work, as `cosguard report` lists it."""

    age: float          # seconds it has waited (pending_age; a retry entry: since it was written)
    status: str
    how: str
    bucket: str
    key: str
    job_id: str
    reason: str


class OpenWork:
    """Counts per (status, how) row, and the oldest job waiting (the sweep's overdue candidates);
    with `keep`, the `keep` oldest items and up to `keep` held ones (a human's), for a report."""

    def __init__(self, keep: int = 0) -> None:
        self.rows: Dict[Tuple[str, str], int] = {}
        self.oldest: Optional[JobEntry] = None
        self.oldest_age = 0.0
        self.keep = keep
        self.items: List[OpenItem] = []   # a heap, youngest first: the `keep` oldest stay
        self.held: List[OpenItem] = []

    def add(self, row: Tuple[str, str], item: Optional[OpenItem] = None) -> None:
        self.rows[row] = self.rows.get(row, 0) + 1
        if item is None or not self.keep:
            return
        if row == RETRY_ROWS[RetryState.HELD]:
            if len(self.held) < self.keep:
                self.held.append(item)
        elif len(self.items) < self.keep:
            heapq.heappush(self.items, item)
        else:
            heapq.heappushpop(self.items, item)

    def oldest_items(self) -> List[OpenItem]:
        return sorted(self.items, reverse=True)


def _item(row: Tuple[str, str], age: float, bucket: object, key: object, job_id: object = "",
          reason: object = "") -> OpenItem:
    return OpenItem(max(0.0, float(age)), row[0], row[1], str(bucket), str(key), str(job_id or ""), str(reason or ""))


def tally_open_work(ledger: Ledger, now: float, keep: int = 0) -> OpenWork:
    """One listing of `jobs/` and one of `retry/`, a read per document; `keep`: items kept (OpenWork)."""
    work = OpenWork(keep)
    live: Set[str] = set()
    failed: Dict[str, OpenClaim] = {}
    for claim in ledger.open_claims():
        if claim.standing is Standing.FAILED:
            failed[claim.entry.name] = claim   # counted by its retry entry, which says why
            continue
        live.add(claim.entry.name)
        age = pending_age(claim, now)
        row = CLAIM_ROWS[claim.standing]
        work.add(row, _item(row, age, claim.entry.bucket, claim.entry.key, claim.entry.job_id))
        if claim.standing is not Standing.ORPHANED and (work.oldest is None or age > work.oldest_age):
            work.oldest, work.oldest_age = claim.entry, age
    for doc, stamp in ledger.retries_stamped():
        name = digest(str(doc.get("bucket")), str(doc.get("key")), str(doc.get("token") or ""))
        if name in live:
            continue   # outlived its failure: the upload was submitted since (the sweep clears it)
        failed.pop(name, None)
        row = RETRY_ROWS[retry_state(doc)]
        age = stamp.age if stamp is not None and stamp.age is not None else 0.0
        work.add(row, _item(row, age, doc.get("bucket"), doc.get("key"), reason=doc.get("reason")))
    for claim in failed.values():   # a failed claim without a retry entry: the sweep gives it one
        row = CLAIM_ROWS[Standing.FAILED]
        work.add(row, _item(row, pending_age(claim, now), claim.entry.bucket, claim.entry.key))
    return work


__all__ = ["CLAIM_ROWS", "OpenItem", "OpenWork", "RETRY_ROWS", "pending_age", "tally_open_work"]
