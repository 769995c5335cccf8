"""The ledger: small JSON documents in the state bucket that record cosguard's unfinished work.

Layout under `<state bucket>/<state prefix>`, where `<digest>` names one upload (bucket, key and
the upload identity of `version_token`):

    jobs/<digest>.json     one per upload in flight: created with forbid-overwrite as the claim
                           (`submitting`, with a lease no longer than its holder's deadline), then
                           rewritten with the job (`submitted`). What the sweep lists, so its cost is
                           proportional to unfinished work, and how it finds claims whose holder died.
    claims/<digest>.json   the permanent record that this upload was handled and left in place
                           (written on close): a redelivered event or a backfill submits nothing
    removed/<digest>.json  on unversioned buckets, an upload cosguard's DELETE removed: a write found
                           gone soon after may have been taken with it (removals.py reports it)
    losses/<bucket>/<id>.json
                           each such possible loss, until `cosguard ledger ack ID` (losses.py)
    retry/<digest>.json    why an upload is not submitted: the sweep resubmits it (at once, or with
                           backoff), drops it when its object is gone or overwritten, or reports it
    closed/<job id>.json   finished jobs with their outcome and manifest (restore, status, replays)
    index/<day>/<outcome>.<detail>.<time>.<job id>.<mac>
                           an empty object per close, so `status` counts by LIST (history.py)
    actions/<job id>.json  one delivery at a time acts on a verdict (deleted when it is done)
    promoting/, promoted/  one promotion at a time per destination key, and its newest (promotions.py)
    takeovers/<...>.json   for the moment of a takeover only (claims.py)
    sweep/cursor.json      where the last sweep stopped in jobs/ and retry/ when its deadline came
                           first: the next sweep resumes there (bulk/sweep_pages.py)

The claim protocol is a state machine (states.py has the enums; docs/ledger-states.md the
same diagram with every transition's cost). `jobs/<digest>.json`, one per upload in flight:

    (none) --claim: create, forbid-overwrite [scan, backfill, sweep]--> SUBMITTING
    (none) --rescan claim of a handled write (rescans.py) [rescan, timer]--> SUBMITTING
    SUBMITTING --job recorded (open_job) [holder]---------------------> SUBMITTED
    SUBMITTING --submission failed (release_claim + retry/) [holder]---> FAILED
    SUBMITTING --lease over on COS's clock: holder died----------------> taken over [SCF retry, sweep]
    SUBMITTING --object gone / overwritten, holder died [sweep]---------> closed `gone` / `stale`
    SUBMITTED  --verdict applied (close_job) [callback, sweep]----------> closed/ (+ claims/ or removed/)
    SUBMITTED  --CI knows no such job [sweep]---------------------------> closed `resubmit` + retry/
    SUBMITTED  --pinned rescan (rebind_job) [callback, sweep]-----------> SUBMITTED (new job)
    FAILED     --claimed again [SCF retry, sweep's retry pass]---------> SUBMITTING (taken over)
    FAILED     --object gone / overwritten (drop_claim) [sweep]---------> (none), reported `dropped`
    any        --`cosguard ledger forget KEY` [operator]----------------> (none)

A takeover (of FAILED, or of SUBMITTING past its lease) is conditional; `retry/` and `actions/`
have state machines of their own: claims.py.

Every document is sealed (seal.py) for its own location: one an uploader wrote or altered is
treated as absent and reported, never believed. Every document names its format and identity
scheme, and is upgraded as it is read (formats.py, docs/upgrades.md). The trigger filter keeps the
ledger's own writes from firing scans; an object an uploader puts under the prefix is scanned like
any other upload.
"""
from __future__ import annotations

import time
from typing import Any, Dict, Iterator, Optional, Tuple

from ..errors import CloudPermanentError, NotFoundError, PreconditionFailed
from ..infra.clock import Stamp
from ..infra.cloud import ObjectInfo
from ..infra.gateway import Gateway
from .claims import ACTION_LEASE_SECONDS, MAX_DOCUMENT_BYTES, ClaimsMixin, ForgedDocument
from .entries import (
    KEPT_IN_PLACE,
    REMOVED_BY_COSGUARD,
    JobEntry,
    MalformedEntry,
    digest,
    kept_in_place,
    key_digest,
    token_for,
    version_token,
)
from .formats import UnknownFormat, upgrade
from .formats import stamp as in_current_format
from .history import About, History
from .losses import LossesMixin
from .open_jobs import OpenClaim, OpenJobsMixin
from .rescans import RescanIndex, record_close
from .seal import Sealer
from .states import JobState, Standing
from .status import Outcome

__all__ = ["ACTION_LEASE_SECONDS", "CLAIM_LEASE_SECONDS", "KEPT_IN_PLACE", "MAX_DOCUMENT_BYTES",
           "REMOVED_BY_COSGUARD", "ClaimBusy", "ForgedDocument", "JobEntry", "Ledger", "OpenClaim", "digest",
           "key_digest", "kept_in_place", "token_for", "version_token"]

CLAIM_LEASE_SECONDS = 900  # longer than SCF's maximum event-function timeout


class ClaimBusy(Exception):
    """Another holder, who may still be alive, is submitting this upload: retry later."""

    def __init__(self, entry: JobEntry, seconds_left: Optional[int] = None):
        why = f"lease ends in {seconds_left} s" if seconds_left is not None else "it took the claim over first"
        super().__init__(f"{entry.bucket}/{entry.key} is being submitted by another invocation ({why})")
        self.entry = entry


class Ledger(ClaimsMixin, LossesMixin, OpenJobsMixin):
    """Reads and writes the ledger of one state bucket."""

    def __init__(self, gateway: Gateway, bucket: str, prefix: str, sealer: Sealer, clock=time.time):
        self.gateway = gateway
        self.bucket = bucket
        self.prefix = prefix
        self.sealer = sealer
        self.clock = clock
        self.history = History(gateway, bucket, prefix, sealer)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}/{name}.json"

    # -- the one read and write path: every document sealed for its own key --------------------
    def _write(self, key: str, doc: Dict[str, Any], if_absent: bool = False) -> None:
        """Sealed under the current key in the current format: a document read under a previous key
        or format is rewritten in both whenever it is next written."""
        self.gateway.put_json(self.bucket, key, self.sealer.seal(self.bucket, key, in_current_format(doc)), if_absent=if_absent)

    def _read(self, key: str) -> Dict[str, Any]:
        return self._read_stamped(key)[0]

    def _read_stamped(self, key: str) -> Tuple[Dict[str, Any], Stamp]:
        """The document at `key` and its Stamp; NotFoundError when absent, ForgedDocument when what
        is there cannot be read as a document this ledger sealed: no valid seal, not JSON, too
        large, or a GET that COS refuses for good (any other 4xx: an ARCHIVE object's 403
        InvalidObjectState, a deny on that one key). Such a document blocks nothing and is
        reported; only a failure that may heal (5xx, timeout) raises."""
        try:
            doc, stamp = self.gateway.read_json(self.bucket, key, max_bytes=MAX_DOCUMENT_BYTES)
        except NotFoundError:
            raise
        except CloudPermanentError as exc:
            if exc.code == "NotJSON":  # bytes someone else wrote: unsealed, like any other forgery
                doc, stamp = None, getattr(exc, "stamp", Stamp())
            else:  # COS refuses to serve it: the code says why (ForgedDocument code `Unreadable`)
                self.sealer.reject(self.bucket, key, "ledger document", problem=f"unreadable: {exc.code or exc}")
                raise ForgedDocument(f"{self.bucket}/{key} cannot be read as a cosguard document "
                                     f"({exc.code or exc})", code="Unreadable") from exc
        opened = self.sealer.open(self.bucket, key, doc)
        if opened is None:
            forged = ForgedDocument(f"{self.bucket}/{key} carries no valid cosguard seal", code="Unsealed")
            forged.stamp = stamp
            raise forged
        try:
            return upgrade(opened), stamp
        except UnknownFormat as exc:  # a newer release wrote it (a rollback): never guessed at
            self.sealer.reject(self.bucket, key, "ledger document", problem=str(exc))
            forged = ForgedDocument(f"{self.bucket}/{key}: {exc}", code="UnknownFormat")
            forged.stamp = stamp
            raise forged from None

    def _read_entry(self, key: str) -> JobEntry:
        return self._read_entry_stamped(key)[0]

    def _read_entry_stamped(self, key: str) -> Tuple[JobEntry, Stamp]:
        """The job entry at `key`: like `_read`, and a document of any other shape (only a bug or a
        broken seal lets one through) is a ForgedDocument too, reported, never a crash."""
        doc, stamp = self._read_stamped(key)
        try:
            return JobEntry.from_doc(doc), stamp
        except MalformedEntry as exc:
            self.sealer.reject(self.bucket, key, "ledger document", problem=f"not a job entry: {exc}")
            forged = ForgedDocument(f"{self.bucket}/{key} is not a cosguard job entry ({exc})", code="Malformed")
            forged.stamp = stamp
            raise forged from None

    def is_own_document(self, key: str) -> bool:
        """Whether `key` holds a document this ledger sealed (the upload trigger asks); a time-index
        entry is judged by the MAC in its name (history.py), without a read."""
        if key.startswith(f"{self.prefix}index/"):
            return self.history.is_own_entry(key)
        if key.startswith(RescanIndex(self).base):   # the rescan index: its MAC too (rescans.py)
            return RescanIndex(self).parse(key, report=False) is not None
        try:
            self._read(key)
            return True
        except NotFoundError:
            return False

    # -- claims: exactly one job per upload ------------------------------------------------------
    def claim(self, info: ObjectInfo, lease: float = CLAIM_LEASE_SECONDS) -> Tuple[str, Optional[JobEntry]]:
        """(`claimed`, entry) when this caller is to submit a job for the upload; (`duplicate`, entry
        or None) when it was submitted or handled already. Raises ClaimBusy while a holder that may
        still be alive is submitting it, or another taker took a failed or dead holder's claim first.

        `lease` must not outlive the caller's deadline (the invocation's remaining time): a holder
        that died is taken over once it has passed on COS's clock, by SCF's retry or by the sweep.
        """
        entry = JobEntry.for_object(info, self.clock(), lease)
        key = self._key("jobs", entry.name)
        try:
            self._write(key, entry.fields_dict(), if_absent=True)
        except PreconditionFailed:
            pass
        else:
            # Asked after the create, not before: close_job records the upload as handled before it
            # deletes the entry, so a create that won against a close that just ended sees it here.
            if self._handled(entry.name):
                self._forget(key)
                return "duplicate", None
            return "claimed", entry
        try:
            current = self.read_claim(key)
        except ForgedDocument as forged:  # an unsealed claim is absent: it blocks nobody
            failed = JobEntry.from_doc(dict(entry.fields_dict(), state=JobState.FAILED.value))
            current = OpenClaim(failed, forged.stamp)
        if current is None:  # closed between our two requests
            return "duplicate", None
        if current.standing is Standing.WAITING:
            return "duplicate", current.entry
        if current.standing is Standing.SUBMITTING:
            if self._handled(entry.name):  # a redelivery's passing claim on a handled upload
                return "duplicate", None
            raise ClaimBusy(current.entry, current.seconds_left())
        entry.previous_state = current.entry.state  # `failed`, or a holder that died: take it over
        if not self.take_over_claim(key, current.stamp, entry.fields_dict()):
            raise ClaimBusy(current.entry)   # another taker was first: it submits
        return "claimed", entry

    def take_over(self, stale: OpenClaim, lease: float) -> Optional[JobEntry]:
        """The sweep resubmits a claim whose holder died: a fresh lease on the same upload; None
        when another taker replaced it first."""
        now = self.clock()
        entry = JobEntry.from_doc(dict(stale.entry.fields_dict(), state=JobState.SUBMITTING.value,
                                       submitted_at=now, lease_until=now + lease, job_id="",
                                       previous_state=stale.entry.state))
        if not self.take_over_claim(self._key("jobs", entry.name), stale.stamp, entry.fields_dict()):
            return None
        return entry

    def _forget(self, key: str) -> None:
        try:
            self.gateway.delete(self.bucket, key)
        except NotFoundError:
            pass

    def _handled(self, name: str) -> bool:
        """Whether this identity's write was handled AND is still where it was: a record of a write
        that cosguard removed (written by older versions) answers no, so a new write of the same
        bytes in the same second is scanned."""
        try:
            record = self._read(self._key("claims", name))
        except NotFoundError:  # ForgedDocument too: a planted record stops no scan
            return False
        return kept_in_place(record.get("outcome"), record)

    # -- jobs -------------------------------------------------------------------------------
    def open_job(self, entry: JobEntry) -> None:
        """Record the submitted job on the upload's claim (`submitted`)."""
        entry.state = JobState.SUBMITTED.value
        self._write(self._key("jobs", entry.name), entry.fields_dict())

    def rebind_job(self, entry: JobEntry, job_id: str, pinned: bool = True) -> JobEntry:
        """The upload's open job becomes `job_id`, a scan pinned to its version or (`pinned` False)
        of its key (versions.py); the job it replaces is closed `stale`, naming its successor. The
        open entry is written first: a failure in between leaves the old job without a closed
        record, which nobody acts on."""
        rebound = JobEntry.from_doc(dict(entry.fields_dict(), job_id=job_id, pinned=pinned,
                                         state=JobState.SUBMITTED.value, submitted_at=self.clock()))
        self._write(self._key("jobs", entry.name), rebound.fields_dict())
        if entry.job_id:
            closed_at = self.clock()
            self._write(self._key("closed", entry.job_id), dict(
                entry.fields_dict(), outcome=Outcome.STALE.value, closed_at=closed_at,
                manifest={"rescanned_as": job_id}))
            self.history.record(entry.job_id, Outcome.STALE.value, closed_at, about=About.of(entry))
        return rebound

    def open_entry(self, bucket: str, key: str, token: str) -> Optional[JobEntry]:
        """The open entry of one upload; None when there is none; ForgedDocument when what sits
        there was not sealed by cosguard."""
        try:
            return self._read_entry(self._key("jobs", digest(bucket, key, token)))
        except ForgedDocument:
            raise
        except NotFoundError:
            return None

    def open_entries_of(self, bucket: str, key: str) -> Iterator[JobEntry]:
        """Every open entry of one key (a listing of its prefix): a job whose upload was overwritten."""
        for item in self.gateway.list(self.bucket, prefix=self._key("jobs", key_digest(bucket, key))[:-len(".json")]):
            try:
                entry = self.read_job(item["Key"])
            except ForgedDocument:
                continue
            if entry is not None and entry.bucket == bucket and entry.key == key:
                yield entry

    def removals_of(self, bucket: str, key: str) -> Iterator[Dict[str, Any]]:
        """Every sealed record of an upload of `bucket`/`key` that cosguard removed: one listing, then
        a read each; asked only where a write of the key may have been lost (removals.py)."""
        for item in self.gateway.list(self.bucket, prefix=self._key("removed", key_digest(bucket, key))[:-len(".json")]):
            try:
                doc = self._read(item["Key"])
            except (NotFoundError, ForgedDocument):
                continue
            if doc.get("bucket") == bucket and doc.get("key") == key:
                yield doc

    def get_job(self, job_id: str) -> Optional[JobEntry]:
        """The closed entry of `job_id`, else None (open entries are found by upload, not job id)."""
        try:
            entry = self._read_entry(self._key("closed", job_id))
        except NotFoundError:
            return None
        return entry if entry.job_id == job_id else None

    def close_job(self, entry: JobEntry, outcome: str, manifest: Optional[Dict[str, Any]] = None,
                  handled: bool = True) -> None:
        """Move the entry to closed/ with its outcome and (when `handled`, and the outcome left the
        write in place) record the upload as done, then drop it from jobs/: the sweep never sees it
        again.

        An outcome that removed the write records nothing in claims/: a redelivered event of that
        write finds either no object (gone) or a newer write with the same identity, which is
        scanned once (its jobs/ claim stops a second submission), never answered `duplicate`."""
        # a job closed again (a restore: quarantined -> released) moves its index entry
        earlier = (entry.outcome, entry.closed_at, entry.manifest) if entry.outcome and entry.closed_at else None
        entry.outcome = outcome
        entry.closed_at = self.clock()
        if manifest:
            entry.manifest = manifest
        if entry.job_id:
            self._write(self._key("closed", entry.job_id), entry.fields_dict())
            marks = dict(entry.manifest, rescan_of=entry.rescan_of) if entry.rescan_of else entry.manifest
            self.history.record(entry.job_id, outcome, entry.closed_at, marks, replaces=earlier,
                                about=About.of(entry))
        record_close(self, entry, outcome, handled)   # claims/, removed/, the rescan index (rescans.py)
        try:
            self.gateway.delete(self.bucket, self._key("jobs", entry.name))
        except NotFoundError:
            pass
