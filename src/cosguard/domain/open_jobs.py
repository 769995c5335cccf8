"""The ledger's unfinished work as the sweep and `status` read it: `jobs/` listed once, each
claim read with where it stands (states.classify, on COS's clock), and the sweep's cursor
(`sweep/cursor.json`, where the last sweep stopped: bulk/sweep_pages.py). A mixin of the Ledger
(ledger.py), which supplies the sealed reads and writes these build on."""
from __future__ import annotations

import time
from typing import Callable, Dict, Iterator, Optional, Tuple

from ..errors import NotFoundError
from ..infra.clock import Stamp
from ..infra.retry import current_deadline
from .claims import ForgedDocument
from .entries import JobEntry
from .ledger_parts import LedgerParts
from .states import JobState, Standing, classify, lease_left

# A callback can arrive between CI accepting a job and the submitter recording its id (a fast scan,
# a slow COS PUT). CI may never send it again (docs/tencent-facts.md), so rather than answer 503 at
# once and leave the verdict to the sweep, the callback waits this long (~1.5 s, within its deadline).
RECORDING_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)


class OpenClaim:
    """One `jobs/` claim as read: its entry, its Stamp, and where it stands (states.classify), the
    one reading the sweep acts on and `status` counts."""

    __slots__ = ("entry", "stamp", "standing")

    def __init__(self, entry: JobEntry, stamp: Optional[Stamp], now: Optional[float] = None):
        self.entry = entry
        self.stamp = stamp
        self.standing: Standing = classify(entry.state, entry.submitted_at, entry.lease_until, stamp, now)

    def seconds_left(self) -> int:
        return lease_left(self.entry.submitted_at, self.entry.lease_until, self.stamp)


class OpenJobsMixin(LedgerParts):
    """Listing and reading `jobs/`, and the sweep's cursor."""

    _read_entry: Callable[[str], JobEntry]
    _read_entry_stamped: Callable[[str], Tuple[JobEntry, Stamp]]
    open_entry: Callable[[str, str, str], Optional[JobEntry]]

    def recorded_entry(self, bucket: str, key: str, token: str, job_id: str,
                       entry: Optional[JobEntry], sleep: Callable[[float], None] = time.sleep) -> Optional[JobEntry]:
        """`entry` (the upload's open entry), read again while its submitter is still recording a
        job and `job_id` is not yet the one recorded, for at most RECORDING_WAITS (and never past
        the invocation's deadline). ForgedDocument as `open_entry`."""
        deadline = current_deadline()
        for pause in RECORDING_WAITS:
            if entry is None or entry.job_id == job_id or entry.state != JobState.SUBMITTING.value \
                    or not deadline.allows(pause):
                break
            sleep(pause)
            entry = self.open_entry(bucket, key, token)
        return entry

    def open_job_keys(self, prefix: str = "") -> Iterator[str]:
        """The ledger keys of every unfinished job (whose name starts with `prefix`): one listing, no
        reads (callers read in parallel)."""
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}jobs/{prefix}"):
            yield item["Key"]

    def read_job(self, key: str) -> Optional[JobEntry]:
        """One entry by its ledger key; None when it was closed meanwhile; ForgedDocument when
        what is there was not sealed by cosguard (the sweep recovers the job from CI)."""
        try:
            return self._read_entry(key)
        except ForgedDocument:
            raise
        except NotFoundError:
            return None

    def read_claim(self, key: str) -> Optional[OpenClaim]:
        """One `jobs/` claim by its ledger key, with where it stands (judged on COS's clock); None
        when it was closed meanwhile; ForgedDocument as `read_job`."""
        try:
            entry, stamp = self._read_entry_stamped(key)
        except ForgedDocument:
            raise
        except NotFoundError:
            return None
        return OpenClaim(entry, stamp, self.clock())

    def open_claims(self) -> Iterator[OpenClaim]:
        """Every unfinished job: one listing of jobs/ plus one read per entry; unsealed ones are
        skipped (the sealer reports them)."""
        for key in self.open_job_keys():
            try:
                claim = self.read_claim(key)
            except ForgedDocument:
                continue
            if claim is not None:
                yield claim

    def open_jobs(self) -> Iterator[JobEntry]:
        """Every unfinished job: one listing of jobs/ plus one read per entry."""
        for claim in self.open_claims():
            yield claim.entry

    # -- the sweep's place in a backlog longer than one invocation ----------------------------
    def sweep_cursor(self) -> Dict[str, str]:
        """Where the last sweep stopped, per listing (`jobs`, `retry`): the last key it dispatched.
        Empty when it stopped nowhere, or when the document is not one this ledger sealed
        (reported): the sweep then starts from the beginning, which skips nothing."""
        try:
            doc = self._read(self._key("sweep", "cursor"))
        except NotFoundError:
            return {}
        return {kind: after for kind, after in doc.items()
                if isinstance(after, str) and after.startswith(f"{self.prefix}{kind}/")}

    def save_sweep_cursor(self, cursor: Dict[str, str]) -> None:
        self._write(self._key("sweep", "cursor"), {**cursor, "saved_at": self.clock()})


__all__ = ["OpenClaim", "OpenJobsMixin"]
