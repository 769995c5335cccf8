"""The ledger: small JSON documents in the state bucket that record cosguard's unfinished work.

Layout under `<state bucket>/<state prefix>`:

    claims/<digest>.json   one per object version (bucket, key, ETag or version id): created with
                           forbid-overwrite, so a repeated COS event submits no second job
    jobs/<job id>.json     one per submitted, unfinished job: what the sweep lists, so its cost is
                           proportional to the number of unfinished jobs, never to the bucket's size
    retry/<digest>.json    submissions that failed and may heal: the sweep resubmits them
    closed/<job id>.json   finished jobs with their outcome and manifest (restore, status, replays)

Every document is sealed (seal.py) for its own location: one an uploader wrote or altered is
treated as absent and reported, never believed. The trigger filter keeps the ledger's own writes
from firing scans; an object an uploader puts under the prefix is scanned like any other upload.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, Optional

from ..infra.cloud import CloudGateway, ObjectInfo
from ..errors import CloudPermanentError, NotFoundError, PreconditionFailed
from .seal import Sealer

CLAIM_LEASE_SECONDS = 900  # longer than SCF's maximum event-function timeout
MAX_DOCUMENT_BYTES = 256 * 1024  # ledger documents are small; anything larger is not ours


def token_for(version_id: Optional[str], etag: str) -> str:
    """What distinguishes one upload from another of the same key: version id, else ETag."""
    return version_id or etag.strip('"')


def version_token(info: ObjectInfo) -> str:
    return token_for(info.version_id, info.etag)


def digest(bucket: str, key: str, token: str) -> str:
    return hashlib.sha256(f"{bucket}\n{key}\n{token}".encode("utf-8")).hexdigest()[:40]


@dataclass
class JobEntry:
    """One submitted job, as the callback, the sweep and restore need it."""

    job_id: str
    bucket: str
    key: str
    etag: str
    version_id: Optional[str]
    size: int
    submitted_at: float
    tagged: bool = True          # False: the object had no room for cosguard's tags
    outcome: Optional[str] = None
    closed_at: Optional[float] = None
    manifest: Dict[str, Any] = field(default_factory=dict)
    callback_ref: Optional[str] = None  # what the job's callback URL binds (security.object_ref)

    @classmethod
    def from_doc(cls, doc: Dict[str, Any]) -> "JobEntry":
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**known)


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
        """The document at `key`; NotFoundError when absent, ForgedDocument when not sealed by us."""
        try:
            doc = self.gateway.get_json(self.bucket, key, max_bytes=MAX_DOCUMENT_BYTES)
        except CloudPermanentError as exc:
            if exc.code != "NotJSON":
                raise
            doc = None
        opened = self.sealer.open(self.bucket, key, doc)
        if opened is None:
            raise ForgedDocument(f"{self.bucket}/{key} carries no valid cosguard seal", code="Unsealed")
        return opened

    def is_own_document(self, key: str) -> bool:
        """Whether `key` holds a document this ledger sealed (the upload trigger asks)."""
        try:
            self._read(key)
            return True
        except NotFoundError:
            return False

    # -- claims: exactly one job per object version, one action per verdict ----------------
    def acquire(self, name: str, doc: Dict[str, Any], lease: float = CLAIM_LEASE_SECONDS) -> Optional[Dict[str, Any]]:
        """Create `<prefix><name>.json` unless it exists; None when someone else holds it.

        Forbid-overwrite makes the create atomic. An existing claim in state `failed`, or still
        `submitting`/`acting` past its lease (its holder died), is taken over.
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
        lease_until = float(current.get("lease_until") or float(current.get("claimed_at", 0) or 0) + lease)
        if current.get("state") == "failed" or (current.get("state") in ("submitting", "acting")
                                                and self.clock() > lease_until):
            doc["previous_state"] = current.get("state")
            self._write(key, doc)
            return doc
        return None

    def claim(self, info: ObjectInfo, lease: float = CLAIM_LEASE_SECONDS) -> Optional[Dict[str, Any]]:
        """Claim the right to submit a job for this object version (None: already submitted).

        `lease` should be the invocation's remaining time: if this invocation dies holding the
        claim, SCF's retry (which comes after the timeout) takes it over instead of skipping.
        """
        return self.acquire(self._claim_name(info), {
            "bucket": info.bucket, "key": info.key, "etag": info.etag,
            "version_id": info.version_id, "state": "submitting"}, lease=lease)

    def _claim_name(self, info: ObjectInfo) -> str:
        return "claims/" + digest(info.bucket, info.key, version_token(info))

    def settle_claim(self, info: ObjectInfo, state: str, job_id: Optional[str] = None,
                     reason: str = "") -> None:
        """Mark the claim `submitted` (with its job) or `failed` (a later delivery may retry)."""
        self._write(f"{self.prefix}{self._claim_name(info)}.json", {
            "bucket": info.bucket, "key": info.key, "etag": info.etag, "version_id": info.version_id,
            "state": state, "job_id": job_id, "reason": reason, "settled_at": self.clock()})

    def claim_action(self, job_id: str) -> Optional[Dict[str, Any]]:
        """One delivery at a time acts on a verdict (duplicate callbacks arrive concurrently)."""
        return self.acquire(f"actions/{job_id}", {"job_id": job_id, "state": "acting"}, lease=300)

    def release_action(self, job_id: str, done: bool) -> None:
        key = f"{self.prefix}actions/{job_id}.json"
        if done:
            self._write(key, {"job_id": job_id, "state": "done", "claimed_at": self.clock()})
        else:
            try:
                self.gateway.delete(self.bucket, key)
            except NotFoundError:
                pass

    def claimed_job(self, info: ObjectInfo) -> Optional[str]:
        """The job already submitted for this exact object version, if any (backfill uses it)."""
        try:
            doc = self._read(f"{self.prefix}{self._claim_name(info)}.json")
        except NotFoundError:
            return None
        return doc.get("job_id") if doc.get("state") == "submitted" else None

    # -- jobs -------------------------------------------------------------------------------
    def open_job(self, entry: JobEntry) -> None:
        self._write(self._key("jobs", entry.job_id), asdict(entry))

    def get_job(self, job_id: str) -> Optional[JobEntry]:
        """The open entry, else the closed one, else None."""
        for kind in ("jobs", "closed"):
            try:
                entry = JobEntry.from_doc(self._read(self._key(kind, job_id)))
            except NotFoundError:
                continue
            if entry.job_id == job_id:
                return entry
        return None

    def close_job(self, entry: JobEntry, outcome: str, manifest: Optional[Dict[str, Any]] = None) -> None:
        """Move the entry to closed/ with its outcome; the sweep never sees it again."""
        entry.outcome = outcome
        entry.closed_at = self.clock()
        if manifest:
            entry.manifest = manifest
        self._write(self._key("closed", entry.job_id), asdict(entry))
        try:
            self.gateway.delete(self.bucket, self._key("jobs", entry.job_id))
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
            return JobEntry.from_doc(self._read(key))
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
                yield JobEntry.from_doc(self._read(item["Key"]))
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
