"""The ledger's unfinished work, counted as the sweep sees it: `cosguard status` reads `jobs/`
and `retry/` through the same classification (states.classify, states.retry_state) the sweep
acts on, so an upload counts once, as what it is (a failed submission is an `error`, never also
`pending`), and only a job that exists can be the oldest pending one."""
from __future__ import annotations

from typing import Dict, Optional, Set, Tuple

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


class OpenWork:
    """Counts per (status, how) row, and the oldest job waiting (the sweep's overdue candidates)."""

    def __init__(self) -> None:
        self.rows: Dict[Tuple[str, str], int] = {}
        self.oldest: Optional[JobEntry] = None
        self.oldest_age = 0.0

    def add(self, row: Tuple[str, str]) -> None:
        self.rows[row] = self.rows.get(row, 0) + 1


def tally_open_work(ledger: Ledger, now: float) -> OpenWork:
    """One listing of `jobs/` and one of `retry/`, a read per document."""
    work = OpenWork()
    live: Set[str] = set()
    failed: Dict[str, OpenClaim] = {}
    for claim in ledger.open_claims():
        if claim.standing is Standing.FAILED:
            failed[claim.entry.name] = claim   # counted by its retry entry, which says why
            continue
        live.add(claim.entry.name)
        work.add(CLAIM_ROWS[claim.standing])
        age = pending_age(claim, now)
        if claim.standing is not Standing.ORPHANED and (work.oldest is None or age > work.oldest_age):
            work.oldest, work.oldest_age = claim.entry, age
    for doc, _ in ledger.retries_stamped():
        name = digest(str(doc.get("bucket")), str(doc.get("key")), str(doc.get("token") or ""))
        if name in live:
            continue   # outlived its failure: the upload was submitted since (the sweep clears it)
        failed.pop(name, None)
        work.add(RETRY_ROWS[retry_state(doc)])
    for _ in failed.values():   # a failed claim without a retry entry: the sweep gives it one
        work.add(CLAIM_ROWS[Standing.FAILED])
    return work


__all__ = ["CLAIM_ROWS", "OpenWork", "RETRY_ROWS", "pending_age", "tally_open_work"]
