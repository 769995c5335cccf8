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
    retry/<digest>.json    submissions that failed and may heal: the sweep resubmits them
    closed/<job id>.json   finished jobs with their outcome and manifest (restore, status, replays)
    actions/<job id>.json  one delivery at a time acts on a verdict
    sweep/cursor.json      where the last sweep stopped in jobs/ and retry/ when its deadline came
                           first: the next sweep resumes there (bulk/sweep_pages.py)

Every document is sealed (seal.py) for its own location: one an uploader wrote or altered is
treated as absent and reported, never believed. The trigger filter keeps the ledger's own writes
from firing scans; an object an uploader puts under the prefix is scanned like any other upload.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, Iterator, Optional, Tuple

from ..infra.cloud import CloudGateway, ObjectInfo
from ..errors import CloudPermanentError, NotFoundError, PreconditionFailed
from .entries import (KEPT_IN_PLACE, REMOVED_BY_COSGUARD, JobEntry, MalformedEntry, digest, key_digest,
                      kept_in_place, token_for, version_token)
from .seal import Sealer

__all__ = ["ACTION_LEASE_SECONDS", "CLAIM_LEASE_SECONDS", "KEPT_IN_PLACE", "MAX_DOCUMENT_BYTES",
           "REMOVED_BY_COSGUARD", "ClaimBusy", "ForgedDocument", "JobEntry", "Ledger", "digest", "key_digest",
           "kept_in_place", "token_for", "version_token"]

CLAIM_LEASE_SECONDS = 900  # longer than SCF's maximum event-function timeout
ACTION_LEASE_SECONDS = 300
MAX_DOCUMENT_BYTES = 256 * 1024  # ledger documents are small; anything larger is not ours


class ClaimBusy(Exception):
    """Another holder, who may still be alive, is submitting this upload: retry later."""

    def __init__(self, entry: JobEntry):
        super().__init__(f"{entry.bucket}/{entry.key} is being submitted by another invocation "
                         f"(lease ends in {max(0, int(entry.lease_until - time.time()))} s)")
        self.entry = entry


class ForgedDocument(NotFoundError):
    """A ledger document without a valid seal: absent, as far as cosguard is concerned."""


class Ledger:
    """Reads and writes the ledger of one state bucket."""

    def __init__(self, gateway: CloudGateway, bucket: str, prefix: str, sealer: Sealer, clock=time.time):
        self.gateway = gateway
        self.bucket = bucket
        self.prefix = prefix
        self.sealer = sealer
        self.clock = clock

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}/{name}.json"

    # -- the one read and write path: every document sealed for its own key --------------------
    def _write(self, key: str, doc: Dict[str, Any], if_absent: bool = False) -> None:
        self.gateway.put_json(self.bucket, key, self.sealer.seal(self.bucket, key, doc), if_absent=if_absent)

    def _read(self, key: str) -> Dict[str, Any]:
        """The document at `key`; NotFoundError when absent, ForgedDocument when what is there cannot
        be read as a document this ledger sealed: no valid seal, not JSON, too large, or a GET that
        COS refuses for good (any other 4xx: an ARCHIVE object's 403 InvalidObjectState, a deny on
        that one key). Such a document blocks nothing and is reported; only a failure that may heal
        (5xx, timeout) raises."""
        try:
            doc = self.gateway.get_json(self.bucket, key, max_bytes=MAX_DOCUMENT_BYTES)
        except NotFoundError:
            raise
        except CloudPermanentError as exc:
            if exc.code == "NotJSON":  # bytes someone else wrote: unsealed, like any other forgery
                doc = None
            else:  # COS refuses to serve it: the code says why (ForgedDocument code `Unreadable`)
                self.sealer.reject(self.bucket, key, "ledger document", problem=f"unreadable: {exc.code or exc}")
                raise ForgedDocument(f"{self.bucket}/{key} cannot be read as a cosguard document "
                                     f"({exc.code or exc})", code="Unreadable") from exc
        opened = self.sealer.open(self.bucket, key, doc)
        if opened is None:
            raise ForgedDocument(f"{self.bucket}/{key} carries no valid cosguard seal", code="Unsealed")
        return opened

    def _read_entry(self, key: str) -> JobEntry:
        """The job entry at `key`: like `_read`, and a document of any other shape (only a bug or a
        broken seal lets one through) is a ForgedDocument too, reported, never a crash."""
        doc = self._read(key)
        try:
            return JobEntry.from_doc(doc)
        except MalformedEntry as exc:
            self.sealer.reject(self.bucket, key, "ledger document", problem=f"not a job entry: {exc}")
            raise ForgedDocument(f"{self.bucket}/{key} is not a cosguard job entry ({exc})", code="Malformed") from None

    def is_own_document(self, key: str) -> bool:
        """Whether `key` holds a document this ledger sealed (the upload trigger asks)."""
        try:
            self._read(key)
            return True
        except NotFoundError:
            return False

    # -- claims: exactly one job per upload, one action per verdict ----------------------------
    def acquire(self, name: str, doc: Dict[str, Any], lease: float) -> Optional[Dict[str, Any]]:
        """Create `<prefix><name>.json` unless it exists; None when someone else holds it.

        Forbid-overwrite makes the create atomic. An existing claim in state `failed`, or still
        `acting` past its lease (its holder died), is taken over.
        """
        key = f"{self.prefix}{name}.json"
        now = self.clock()
        doc = {**doc, "claimed_at": now, "lease_until": now + lease, "nonce": uuid.uuid4().hex}
        try:
            self._write(key, doc, if_absent=True)
            return doc
        except PreconditionFailed:
            pass
        try:
            current = self._read(key)
        except ForgedDocument:  # an unsealed claim is absent: it blocks nobody
            current = {"state": "failed"}
        except NotFoundError:  # released between our write and read: the next delivery claims it
            return None
        lease_until = current.get("lease_until")
        if not isinstance(lease_until, (int, float)):   # not a claim's shape: it blocks nobody either
            current, lease_until = {"state": "failed"}, 0
        if current.get("state") == "failed" or (current.get("state") == "acting" and self.clock() > lease_until):
            doc["previous_state"] = current.get("state")
            self._write(key, doc)
            return doc
        return None

    def claim(self, info: ObjectInfo, lease: float = CLAIM_LEASE_SECONDS) -> Tuple[str, Optional[JobEntry]]:
        """(`claimed`, entry) when this caller is to submit a job for the upload; (`duplicate`, entry
        or None) when it was submitted or handled already. Raises ClaimBusy while a holder that may
        still be alive is submitting it.

        `lease` must not outlive the caller's deadline (the invocation's remaining time): a holder
        that died is taken over once it has passed, by SCF's retry or by the sweep.
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
            current = self._read_entry(key)
        except ForgedDocument:  # an unsealed claim is absent: it blocks nobody
            current = JobEntry.from_doc(dict(entry.fields_dict(), state="failed"))
        except NotFoundError:  # closed between our two requests
            return "duplicate", None
        if current.state == "submitted":
            return "duplicate", current
        if current.state == "submitting" and self.clock() <= current.lease_until:
            if self._handled(entry.name):  # a redelivery's passing claim on a handled upload
                return "duplicate", None
            raise ClaimBusy(current)
        entry.previous_state = current.state  # `failed`, or a holder that died: take it over
        self._write(key, entry.fields_dict())
        return "claimed", entry

    def take_over(self, stale: JobEntry, lease: float) -> JobEntry:
        """The sweep resubmits a claim whose holder died: a fresh lease on the same upload."""
        now = self.clock()
        entry = JobEntry.from_doc(dict(stale.fields_dict(), state="submitting", submitted_at=now,
                                       lease_until=now + lease, job_id=""))
        self._write(self._key("jobs", entry.name), entry.fields_dict())
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

    def release_claim(self, entry: JobEntry) -> None:
        """Give up a `submitting` claim after recording why in retry/: the next delivery takes it over
        (and then clears the retry entry)."""
        entry.state = "failed"
        self._write(self._key("jobs", entry.name), entry.fields_dict())

    def drop_claim(self, bucket: str, key: str, token: str) -> None:
        """Forget a failed claim whose upload is gone or overwritten (the sweep's retry pass).

        Only a `failed` one: a retry entry can outlive its failure (SCF's retry then claimed and
        submitted the upload), and a live claim or open job stays on record until its verdict
        closes it, as stale if the object changed."""
        key_ = self._key("jobs", digest(bucket, key, token))
        try:
            state = self._read(key_).get("state")
        except NotFoundError:  # ForgedDocument too: nothing of ours to drop
            return
        if state == "failed":
            self._forget(key_)

    def claim_action(self, job_id: str, lease: float = ACTION_LEASE_SECONDS) -> Optional[Dict[str, Any]]:
        """One delivery at a time acts on a verdict (duplicate callbacks arrive concurrently).

        `lease` must not outlive the caller's deadline; an `acting` claim left by a holder that
        finished is harmless (the job is closed, so nobody asks again)."""
        return self.acquire(f"actions/{job_id}", {"job_id": job_id, "state": "acting"}, lease=lease)

    def release_action(self, job_id: str) -> None:
        """After a failure: the next delivery (CI's retry, or the sweep) may act."""
        try:
            self.gateway.delete(self.bucket, f"{self.prefix}actions/{job_id}.json")
        except NotFoundError:
            pass

    # -- jobs -------------------------------------------------------------------------------
    def open_job(self, entry: JobEntry) -> None:
        """Record the submitted job on the upload's claim (`submitted`)."""
        entry.state = "submitted"
        self._write(self._key("jobs", entry.name), entry.fields_dict())

    def rebind_job(self, entry: JobEntry, job_id: str, pinned: bool = True) -> JobEntry:
        """The upload's open job becomes `job_id`, a scan pinned to its version or (`pinned` False)
        of its key (versions.py); the job it replaces is closed `stale`, naming its successor. The
        open entry is written first: a failure in between leaves the old job without a closed
        record, which nobody acts on."""
        rebound = JobEntry.from_doc(dict(entry.fields_dict(), job_id=job_id, pinned=pinned, state="submitted",
                                         submitted_at=self.clock()))
        self._write(self._key("jobs", entry.name), rebound.fields_dict())
        if entry.job_id:
            self._write(self._key("closed", entry.job_id), dict(
                entry.fields_dict(), outcome="stale", closed_at=self.clock(), manifest={"rescanned_as": job_id}))
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
        entry.outcome = outcome
        entry.closed_at = self.clock()
        if manifest:
            entry.manifest = manifest
        if entry.job_id:
            self._write(self._key("closed", entry.job_id), entry.fields_dict())
        record = {"bucket": entry.bucket, "key": entry.key, "token": entry.identity, "job_id": entry.job_id,
                  "outcome": outcome, "closed_at": entry.closed_at}
        if handled and kept_in_place(outcome, entry.manifest):
            self._write(self._key("claims", entry.name), record)
        elif handled and not entry.version_id and outcome in REMOVED_BY_COSGUARD:
            self._write(self._key("removed", entry.name), record)   # DELETE took no condition there
        try:
            self.gateway.delete(self.bucket, self._key("jobs", entry.name))
        except NotFoundError:
            pass

    def open_job_keys(self) -> Iterator[str]:
        """The ledger keys of every unfinished job: one listing, no reads (callers read in parallel)."""
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}jobs/"):
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

    def open_jobs(self) -> Iterator[JobEntry]:
        """Every unfinished job: one listing of jobs/ plus one read per entry."""
        for key in self.open_job_keys():
            try:
                entry = self.read_job(key)
            except ForgedDocument:
                continue
            if entry is not None:
                yield entry

    def closed_jobs(self) -> Iterator[JobEntry]:
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}closed/"):
            try:
                yield self._read_entry(item["Key"])
            except NotFoundError:
                continue

    # -- failed submissions -----------------------------------------------------------------
    def record_retry(self, bucket: str, key: str, token: str, reason: str, retryable: bool) -> None:
        self._write(self._key("retry", digest(bucket, key, token)), {
            "bucket": bucket, "key": key, "token": token, "reason": reason, "retryable": retryable,
            "failed_at": self.clock()})

    def clear_retry(self, bucket: str, key: str, token: str) -> None:
        try:
            self.gateway.delete(self.bucket, self._key("retry", digest(bucket, key, token)))
        except NotFoundError:
            pass

    def retries(self) -> Iterator[Dict[str, Any]]:
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}retry/"):
            try:
                yield self._read(item["Key"])
            except NotFoundError:
                continue

    def read_retry(self, key: str) -> Optional[Dict[str, Any]]:
        """One retry entry by its ledger key; None when it was cleared meanwhile, or is not a
        document this ledger sealed (reported, as `retries` does)."""
        try:
            return self._read(key)
        except NotFoundError:
            return None

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
