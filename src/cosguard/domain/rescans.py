"""Rescans in the ledger: a new CI job for a write that already has a clean verdict.

A rescan is a new job for the same write, not a new write. It is claimed in `jobs/<digest>.json`
like any job of that upload (forbid-overwrite: one job in flight per write), carrying `rescan_of`
(the job whose verdict it checks again), `verdict_at` and `first_verdict_at`, and its callback URL
is bound to the same upload (security.object_ref), so the callback's `issued_for` gate admits it
for that object only.

The write's `claims/<digest>.json` record keeps the first verdict (`job_id`, `closed_at`,
`first_outcome`) and adds, backward compatibly within format 2 (an older reader ignores the new
fields; docs/upgrades.md):

    verdict_at, verdict_job   the last verdict (first or rescan): what the cut-off is compared with
    rescans                   the last RESCANS_KEPT rescans: {job_id, outcome, closed_at}
    outcome                   the write's standing now: `clean`, or what a rescan did (quarantined...)

Every rescan job is also closed/<job id>.json and one history index entry (detail `rescan`), so
the ledger keeps the first verdict and each rescan.

The rescan index, one empty object per write with a clean verdict kept in place, named by the
verdict's time so a LIST from the start gives the oldest verdicts first:

    <state prefix>rescan-index/<YYYYMMDDTHHMMSS>.<digest>.<mac>

The MAC (seal.py's key) covers the bucket and the name: a planted entry is reported and ignored,
and an entry only ever names a record, whose seal is what is believed. Finding the due slice costs
one LIST per 1,000 due writes, never a read of the history. A new verdict moves the entry.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, NamedTuple, Optional

from ..errors import CloudError, NotFoundError, PreconditionFailed
from ..infra.cloud import ObjectInfo
from .entries import REMOVED_BY_COSGUARD, JobEntry, digest, kept_in_place
from .status import Outcome

if TYPE_CHECKING:
    from .ledger import Ledger

INDEX = "rescan-index"
RESCANS_KEPT = 20
MAC_CHARS = 32
_NAME = re.compile(r"^(\d{8}T\d{6})\.([0-9a-f]{40})$")


class Due(NamedTuple):
    """One write in the rescan index: its ledger name and when its last verdict was given."""

    name: str
    verdict_at: float
    key: str


def verdict_at(record: Dict[str, Any]) -> float:
    """When the write's last verdict was given (records written before rescans: its close)."""
    at = record.get("verdict_at", record.get("closed_at"))
    return float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else 0.0


def _stamp(at: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(at))


def _epoch(stamp: str) -> float:
    import calendar
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S")))


class RescanIndex:
    """The rescan index of one ledger (state bucket + prefix)."""

    def __init__(self, ledger: "Ledger"):
        self.ledger = ledger
        self.base = f"{ledger.prefix}{INDEX}/"

    def _mac(self, name: str) -> str:
        return self.ledger.sealer.short_mac("rescan", self.ledger.bucket, name, chars=MAC_CHARS)

    def key_for(self, name: str, at: float) -> str:
        leaf = f"{_stamp(at)}.{name}"
        return f"{self.base}{leaf}.{self._mac(leaf)}"

    def add(self, name: str, at: float) -> None:
        self.ledger.gateway.upload(self.ledger.bucket, self.key_for(name, at), b"")

    def drop(self, name: str, at: float) -> None:
        try:
            self.ledger.gateway.delete(self.ledger.bucket, self.key_for(name, at))
        except NotFoundError:
            pass

    def parse(self, key: str, report: bool = True) -> Optional[Due]:
        """The entry at `key`; None (reported to the sealer when `report`) when its MAC does not hold."""
        leaf, _, mac = key[len(self.base):].rpartition(".")
        found = _NAME.match(leaf)
        if found is None or self.ledger.sealer.verify_short(mac, "rescan", self.ledger.bucket, leaf,
                                                             chars=MAC_CHARS) is None:
            if report:
                self.ledger.sealer.reject(self.ledger.bucket, key, "rescan index entry")
            return None
        return Due(found.group(2), _epoch(found.group(1)), key)

    def reseal(self, key: str, dry_run: bool = False) -> str:
        """After a rotation (`cosguard reseal`): an entry whose MAC a previous key made is written
        again under the current one (and the old one deleted). `current`, `resealed` or `forged`."""
        leaf, _, mac = key[len(self.base):].rpartition(".")
        sealer = self.ledger.sealer
        sealed_by = sealer.verify_short(mac, "rescan", self.ledger.bucket, leaf, chars=MAC_CHARS)
        if sealed_by is None or _NAME.match(leaf) is None:
            sealer.reject(self.ledger.bucket, key, "rescan index entry")
            return "forged"
        if sealed_by == sealer.key_id:
            return "current"
        if not dry_run:
            self.ledger.gateway.upload(self.ledger.bucket, f"{self.base}{leaf}.{self._mac(leaf)}", b"")
            self.ledger.gateway.delete(self.ledger.bucket, key)
        return "resealed"

    def due(self, before: float, after: str = "") -> Iterator[Due]:
        """Writes whose last clean verdict is older than `before`, oldest first, from the start (or
        after the index key `after`): LIST pages, stopping at the first entry not yet due."""
        limit = self.base + _stamp(before)
        for item in self.ledger.gateway.list(self.ledger.bucket, prefix=self.base, marker=after):
            key = str(item["Key"])
            if key >= limit:
                return
            entry = self.parse(key)
            if entry is not None:
                yield entry

    def count_due(self, before: float) -> int:
        return sum(1 for _ in self.due(before))


def read_verdict(ledger: "Ledger", name: str) -> Optional[Dict[str, Any]]:
    """The sealed record of a handled write, or None (absent, or not sealed by cosguard: reported).
    Nothing an uploader can set (tags, metadata) is read: only this record says when a verdict was."""
    from .claims import ForgedDocument
    try:
        return ledger._read(ledger._key("claims", name))
    except (NotFoundError, ForgedDocument):
        return None


def is_due(record: Optional[Dict[str, Any]], before: float) -> bool:
    """A clean verdict, kept in place, given before `before`."""
    if not record:
        return False
    return record.get("outcome") == Outcome.CLEAN.value and kept_in_place(record.get("outcome"), record) \
        and verdict_at(record) < before


def claim_rescan(ledger: "Ledger", info: ObjectInfo, record: Dict[str, Any], lease: float) -> Optional[JobEntry]:
    """The write's rescan claim (`submitting`, forbid-overwrite); None when a job of this write is
    in flight already (a rescan by someone else, or its own first scan)."""
    now = ledger.clock()
    entry = JobEntry.for_object(info, now, lease)
    entry.rescan_of = str(record.get("verdict_job") or record.get("job_id") or "")
    entry.verdict_at = verdict_at(record)
    first = record.get("closed_at")
    entry.first_verdict_at = float(first) if isinstance(first, (int, float)) else entry.verdict_at
    try:
        ledger._write(ledger._key("jobs", entry.name), entry.fields_dict(), if_absent=True)
    except PreconditionFailed:
        return None
    return entry


def rescan_dates(entry: JobEntry, infected: bool, detail: str, now: float) -> "tuple[Dict[str, str], str]":
    """A rescan's verdict as notified: its first, previous and new verdict dates, and (found
    infected) the detail that names them."""
    def iso(at: Optional[float]) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at or 0))
    dates = {"first_verdict_at": iso(entry.first_verdict_at), "previous_verdict_at": iso(entry.verdict_at),
             "verdict_at": iso(entry.closed_at or now), "rescan_of": entry.rescan_of or ""}
    if infected:
        detail = (f"found on rescan: clean on {dates['previous_verdict_at']} (first verdict "
                  f"{dates['first_verdict_at']}), infected on {dates['verdict_at']}: " + detail)
    return dates, detail


def record_close(ledger: "Ledger", entry: JobEntry, outcome: str, handled: bool) -> None:
    """What a close leaves in claims/ (and removed/, and the rescan index) for the upload."""
    record: Dict[str, Any] = {"bucket": entry.bucket, "key": entry.key, "token": entry.identity,
                              "job_id": entry.job_id, "outcome": outcome, "closed_at": entry.closed_at,
                              "verdict_at": entry.closed_at, "verdict_job": entry.job_id}
    index = RescanIndex(ledger)
    if entry.rescan_of:
        record = _after_rescan(ledger, entry, outcome, record)
        if record["verdict_at"] != entry.verdict_at:   # a failed rescan leaves the write where it was
            index.drop(entry.name, entry.verdict_at)
    if handled and (entry.rescan_of or kept_in_place(outcome, entry.manifest)):
        # a rescan rewrites the record whatever it found: a removed write is no longer `handled`
        ledger._write(ledger._key("claims", entry.name), record)
        if record["outcome"] == Outcome.CLEAN.value and kept_in_place(outcome, entry.manifest):
            index.add(entry.name, float(record["verdict_at"] or 0))
    if handled and not entry.version_id and outcome in REMOVED_BY_COSGUARD:
        ledger._write(ledger._key("removed", entry.name), record)   # DELETE took no condition there


def record_promoted(ledger: "Ledger", entry: JobEntry, location: str) -> bool:
    """Fail-closed layout: the write now lives as its promoted copy at `location` (bucket/key), which
    readers get; its clean verdict is recorded for the copy (its own identity, from a HEAD), so the
    copy is rescanned, and withdrawn from the clean destination when it turns out infected. `ledger`
    is the copy's bucket's. Only a copy carrying a valid promotion marker for its own ETag (seal.py)
    is recorded: whatever else sits there was not written by this promotion. Best effort: False when
    it was not recorded (that copy is then not rescanned: reported in the log)."""
    from .entries import version_token
    bucket, _, key = location.partition("/")
    try:
        copy = ledger.gateway.head(bucket, key)
    except CloudError:
        return False
    if not ledger.sealer.is_promoted_copy(copy.bucket, copy.key, copy.etag, copy.metadata, copy.crc64):
        return False
    token = version_token(copy)
    name = digest(bucket, key, token)
    at = float(entry.closed_at or ledger.clock())
    ledger._write(ledger._key("claims", name), {
        "bucket": bucket, "key": key, "token": token, "job_id": entry.job_id, "outcome": Outcome.CLEAN.value,
        "closed_at": at, "verdict_at": at, "verdict_job": entry.job_id,
        "promoted_from": {"bucket": entry.bucket, "key": entry.key, "token": entry.identity}})
    RescanIndex(ledger).add(name, at)
    return True


def _after_rescan(ledger: "Ledger", entry: JobEntry, outcome: str, fresh: Dict[str, Any]) -> Dict[str, Any]:
    """The record with the first verdict kept and this rescan added."""
    earlier = read_verdict(ledger, entry.name) or {}
    rescans: List[Dict[str, Any]] = [r for r in earlier.get("rescans") or [] if isinstance(r, dict)]
    rescans = (rescans + [{"job_id": entry.job_id, "outcome": outcome, "closed_at": entry.closed_at}])[-RESCANS_KEPT:]
    standing = outcome
    if entry.manifest.get("rescan_failed"):   # CI could not rescan it: the clean verdict stands, still due
        standing = Outcome.CLEAN.value
        fresh = dict(fresh, verdict_at=entry.verdict_at, verdict_job=entry.rescan_of)
    return dict(fresh, job_id=earlier.get("job_id", entry.rescan_of), closed_at=earlier.get(
        "closed_at", entry.first_verdict_at), first_outcome=earlier.get("first_outcome", earlier.get(
            "outcome", Outcome.CLEAN.value)), outcome=standing, rescans=rescans)


__all__ = ["Due", "INDEX", "RescanIndex", "claim_rescan", "is_due", "read_verdict", "record_close", "record_promoted",
           "verdict_at"]
