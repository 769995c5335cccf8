"""How a claim changes hands, one delivery acts on a verdict, and failures wait for the sweep.

The ledger's claims (`jobs/` and `actions/`) are created with forbid-overwrite, which makes the
first holder exclusive. Taking one over (its holder failed, or died and its lease ran out) must be
exclusive too, and COS documents no conditional PUT (doc 436/7749 lists `x-cos-forbid-overwrite`
only), so a takeover goes through a marker that only one taker can create:

    1. read the claim: its generation is its ETag (every write of a claim differs)
    2. create `takeovers/<claim>-<generation>-<n>.json` with forbid-overwrite: one taker wins
    3. re-read the claim: still that generation? (else another taker already replaced it)
    4. write the new claim, delete the marker

A taker that loses at 2 or 3 acts on nothing. A marker whose maker died between 2 and 4 (older
than TAKEOVER_SECONDS on COS's clock), or that an uploader planted, is passed over: the next taker
creates marker n+1, and deletes both when done. A taker that makes a marker again after the
winner deleted it re-reads a new generation at 3 and gives up. Each takeover costs three requests
more than the unconditional write it replaces, on failure paths only.

Retry entries (`retry/<digest>.json`) record why an upload is not submitted, and what the sweep
does about it (states.RetryState): submit it again now, later (backoff), or report it to a human:

    RETRYING --resubmitted, or object gone / overwritten [every sweep]--> (none)
    REFUSED  --resubmitted when due: backoff 10 min doubling to 6 h [sweep]--> (none), or REFUSED again
    REFUSED  --object gone / overwritten [every sweep]------------------> (none), reported `dropped`
    HELD     --object gone / overwritten [every sweep]------------------> (none), reported `dropped`
    any      --`cosguard ledger forget KEY` [operator]-----------------> (none)

`actions/<job id>.json`: ACTING while one delivery acts on a verdict, deleted when it is done
(or failed); past its lease on COS's clock (its holder died) it is taken over, conditionally.
`promoting/<digest>.json` (one promotion at a time per destination key, promotions.py) is the same.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..errors import CloudPermanentError, NotFoundError, PreconditionFailed
from ..infra.clock import Stamp
from .entries import JobEntry, digest, key_digest
from .ledger_parts import LedgerParts
from .states import ActionState, JobState, RetryState, Standing, lease_over, retry_delay, retry_state

ACTION_LEASE_SECONDS = 300
MAX_DOCUMENT_BYTES = 256 * 1024  # ledger documents are small; anything larger is not ours
TAKEOVER_SECONDS = 60   # a takeover marker older than this on COS's clock was left by a taker that died
MAX_MARKERS = 8         # markers tried per generation (a planted one is passed over, never deleted)


class ForgedDocument(NotFoundError):
    """A ledger document without a valid seal: absent, as far as cosguard is concerned. `stamp` is
    its GET answer's when COS served it (a takeover of the claim it stands in for needs the ETag)."""

    stamp: Optional[Stamp] = None


class ClaimsMixin(LedgerParts):
    """The Ledger's claim protocol and retry entries; the Ledger (ledger.py) supplies the sealed
    reads and writes of documents that these build on."""

    _read_stamped: Callable[[str], Tuple[Dict[str, Any], Stamp]]
    _forget: Callable[[str], None]
    open_job_keys: Callable[..., Iterator[str]]
    read_claim: Callable[[str], Any]
    _handled: Callable[[str], bool]

    def handled_upload(self, bucket: str, key: str, token: str) -> bool:
        """Was this write handled and is it still at its key? One read of its sealed record
        (a planted one is absent): what an inventory-driven backfill asks per listed object
        instead of holding the whole claims/ set in one process."""
        return self._handled(digest(bucket, key, token))

    # -- giving a claim up -------------------------------------------------------------------
    def release_claim(self, entry: JobEntry) -> None:
        """Give up a `submitting` claim after recording why in retry/: the next delivery takes it over
        (and then clears the retry entry)."""
        entry.state = JobState.FAILED.value
        self._write(self._key("jobs", entry.name), entry.fields_dict())

    def drop_claim(self, bucket: str, key: str, token: str) -> bool:
        """Forget a failed claim whose upload is gone or overwritten (the sweep's retry pass, and
        `cosguard ledger forget`); True when one was removed.

        Only a `failed` one (or one that cannot be read as ours): a retry entry can outlive its
        failure (SCF's retry then claimed and submitted the upload), and a live claim or open job
        stays on record until its verdict closes it, as stale if the object changed."""
        key_ = self._key("jobs", digest(bucket, key, token))
        try:
            state = self._read(key_).get("state")
        except ForgedDocument:
            state = JobState.FAILED.value
        except NotFoundError:
            return False
        if state != JobState.FAILED.value:
            return False
        self._forget(key_)
        return True

    # -- takeovers ---------------------------------------------------------------------------
    def generation(self, key: str) -> Optional[str]:
        """The claim's generation now (its ETag; "" when COS will not serve it); None when absent."""
        try:
            _, stamp = self.gateway.read_json(self.bucket, key, max_bytes=1) 
            return stamp.etag
        except NotFoundError:
            return None
        except CloudPermanentError as exc:
            stamp = getattr(exc, "stamp", None)
            return stamp.etag if stamp is not None else ""

    def take_over_claim(self, key: str, seen: Optional[Stamp], doc: Dict[str, Any]) -> bool:
        """Replace the claim at `key`, read as `seen`, by `doc`, unless another taker replaced it
        first (module docstring). True when this caller holds it now."""
        generation = seen.etag if seen is not None else ""
        name = key[len(self.prefix):-len(".json")].replace("/", "-")
        markers = [self._key("takeovers", f"{name}-{generation or 'unread'}-{n}") for n in range(1, MAX_MARKERS + 1)]
        for made, marker in enumerate(markers, start=1):
            try:
                self._write(marker, {"claim": key, "generation": generation}, if_absent=True)
            except PreconditionFailed:
                if self._marker_abandoned(marker):
                    continue
                return False   # another taker holds it: it takes the claim over
            try:
                won = self.generation(key) == generation   # else another taker replaced the claim already
                if won:
                    self._write(key, doc)
            except Exception:
                self._forget_markers(markers[:made])
                raise
            # ours, and any abandoned before it (a late taker that makes one again re-reads and gives
            # up); a process that dies before this leaves its marker, passed over in TAKEOVER_SECONDS
            self._forget_markers(markers[:made])
            return won
        return False

    def _forget_markers(self, markers: List[str]) -> None:
        for marker in markers:
            self._forget(marker)

    def _marker_abandoned(self, marker: str) -> bool:
        """Whether a marker someone else holds was left by a taker that died (or was not ours)."""
        try:
            _, stamp = self._read_stamped(marker)
        except ForgedDocument:   # planted: passed over
            return True
        except NotFoundError:    # its maker finished meanwhile: the claim is no longer the one read
            return False
        age = stamp.age
        return age is not None and age > TAKEOVER_SECONDS

    # -- actions: one delivery at a time acts on a verdict -------------------------------------
    def acquire(self, name: str, doc: Dict[str, Any], lease: float) -> Optional[Dict[str, Any]]:
        """Create `<prefix><name>.json` unless it exists; None when someone else holds it.

        Forbid-overwrite makes the create atomic. An existing claim in state `failed`, or still
        `acting` past its lease on COS's clock (its holder died), is taken over, conditionally.
        """
        key = f"{self.prefix}{name}.json"
        now = self.clock()
        doc = {**doc, "claimed_at": now, "lease_until": now + lease, "nonce": uuid.uuid4().hex}
        try:
            self._write(key, doc, if_absent=True)
            return doc
        except PreconditionFailed:
            pass
        stamp: Optional[Stamp]
        try:
            current, stamp = self._read_stamped(key)
        except ForgedDocument as forged:   # an unsealed claim is absent: it blocks nobody
            current, stamp = {"state": JobState.FAILED.value, "lease_until": 0}, forged.stamp
        except NotFoundError:   # released between our write and read: the next delivery claims it
            return None
        state = current.get("state")
        if not isinstance(current.get("lease_until"), (int, float)):   # not a claim's shape: blocks nobody
            state = JobState.FAILED.value
        if state == JobState.FAILED.value or (state == ActionState.ACTING.value and lease_over(
                current.get("claimed_at"), current.get("lease_until"), stamp, self.clock())):
            doc["previous_state"] = state
            return doc if self.take_over_claim(key, stamp, doc) else None
        return None

    def claim_action(self, job_id: str, lease: float = ACTION_LEASE_SECONDS) -> Optional[Dict[str, Any]]:
        """One delivery at a time acts on a verdict (duplicate callbacks arrive concurrently).

        `lease` must not outlive the caller's deadline. The holder deletes the claim when done
        (`release_action`), whatever the outcome: a later delivery that claims it again finds the
        job closed (or rebound) and does nothing (VerdictService._claim_and_act)."""
        return self.acquire(f"actions/{job_id}", {"job_id": job_id, "state": ActionState.ACTING.value}, lease=lease)

    def release_action(self, job_id: str) -> None:
        """The action is done, or failed: the next delivery (CI's retry, or the sweep) may act."""
        self._forget(f"{self.prefix}actions/{job_id}.json")

    # -- promotions: one at a time per destination key (promotions.py) -------------------------
    def lock_promotion(self, name: str, destination: str, lease: float) -> bool:
        """Hold `promoting/<name>.json` (an action claim's protocol); False when another holds it."""
        doc = {"destination": destination, "state": ActionState.ACTING.value}
        return self.acquire(f"promoting/{name}", doc, lease=lease) is not None

    def unlock_promotion(self, name: str) -> None:
        self._forget(self._key("promoting", name))

    def promotion_record(self, name: str) -> Optional[Tuple[Dict[str, Any], Stamp]]:
        """The newest write promoted to that destination key, and its read's Stamp; None when none
        is recorded (an unsealed document, reported by the read, is none)."""
        try:
            return self._read_stamped(self._key("promoted", name))
        except NotFoundError:
            return None

    def record_promotion(self, name: str, doc: Dict[str, Any]) -> None:
        self._write(self._key("promoted", name), doc)

    # -- retry entries ----------------------------------------------------------------------
    def record_retry(self, bucket: str, key: str, token: str, reason: str, retryable: bool,
                     held: bool = False) -> None:
        """Record why an upload is not submitted. `retryable`: the sweep submits it again at once;
        otherwise it was refused for good and is submitted again with backoff (its attempts
        counted across failures), or (`held`) it waits for a human."""
        state = RetryState.HELD if held else RetryState.RETRYING if retryable else RetryState.REFUSED
        doc = {"bucket": bucket, "key": key, "token": token, "reason": reason, "retryable": retryable,
               "state": state.value, "failed_at": self.clock()}
        name = self._key("retry", digest(bucket, key, token))
        if state is RetryState.REFUSED:
            attempts = 1 + self._attempts(name)
            doc.update(attempts=attempts, retry_after=retry_delay(attempts))
        self._write(name, doc)

    def _attempts(self, name: str) -> int:
        """How often the entry at `name` was refused already (0 when there is none)."""
        try:
            previous = self._read(name)
        except NotFoundError:
            return 0
        attempts = previous.get("attempts")
        if retry_state(previous) is not RetryState.REFUSED:
            return 0
        return attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1

    def retry_entry(self, bucket: str, key: str, token: str) -> Optional[Dict[str, Any]]:
        """The retry entry of one upload, or None (an unsealed one is none)."""
        try:
            return self._read(self._key("retry", digest(bucket, key, token)))
        except NotFoundError:
            return None

    def clear_retry(self, bucket: str, key: str, token: str) -> None:
        self._forget(self._key("retry", digest(bucket, key, token)))

    def retries(self) -> Iterator[Dict[str, Any]]:
        for doc, _ in self.retries_stamped():
            yield doc

    def read_retry(self, key: str) -> Optional[Tuple[Dict[str, Any], Stamp]]:
        """One retry entry by its ledger key, with its Stamp; None when it was cleared meanwhile, or
        is not a document this ledger sealed (reported by the sealer)."""
        try:
            return self._read_stamped(key)
        except NotFoundError:
            return None

    def retries_stamped(self) -> Iterator[Tuple[Dict[str, Any], Stamp]]:
        """Every retry entry with its Stamp (backoff is judged on COS's clock). Unsealed ones are
        skipped (and reported by the sealer)."""
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}retry/"):
            found = self.read_retry(item["Key"])
            if found is not None:
                yield found

    # -- by hand -------------------------------------------------------------------------------
    def forget_upload(self, bucket: str, key: str, force: bool = False) -> Tuple[List[Dict[str, Any]],
                                                                                List[Dict[str, Any]]]:
        """`cosguard ledger forget`: remove what keeps the uploads of `bucket`/`key` open in the
        ledger (retry entries, failed or dead claims, and documents of theirs cosguard cannot read);
        an open job or a live claim only with `force` (its verdict would then be ignored). Returns
        (removed, kept), one dict per document. One listing each of `jobs/` and `retry/` for the key."""
        removed: List[Dict[str, Any]] = []
        kept: List[Dict[str, Any]] = []
        for name in self.open_job_keys(key_digest(bucket, key)):
            try:
                claim = self.read_claim(name)
            except ForgedDocument as forged:   # named for this key's digest, unreadable as ours
                self._forget(name)
                removed.append({"document": name, "state": f"unreadable ({forged.code})"})
                continue
            if claim is None or (claim.entry.bucket, claim.entry.key) != (bucket, key):
                continue
            found = {"document": name, "state": claim.entry.state, "job_id": claim.entry.job_id or None}
            if claim.standing in (Standing.WAITING, Standing.SUBMITTING) and not force:
                kept.append(dict(found, why=f"{claim.standing.value}: its verdict closes it (--force forgets it)"))
                continue
            self._forget(name)
            removed.append(found)
        for item in self.gateway.list(self.bucket, prefix=f"{self.prefix}retry/{key_digest(bucket, key)}"):
            try:
                doc, _ = self._read_stamped(item["Key"])
            except ForgedDocument as forged:
                self._forget(item["Key"])
                removed.append({"document": item["Key"], "state": f"unreadable ({forged.code})"})
                continue
            except NotFoundError:
                continue
            if (doc.get("bucket"), doc.get("key")) == (bucket, key):
                self._forget(item["Key"])
                removed.append({"document": item["Key"], "state": retry_state(doc).value,
                                "reason": doc.get("reason", "")})
        return removed, kept


__all__ = ["ACTION_LEASE_SECONDS", "ClaimsMixin", "ForgedDocument", "MAX_DOCUMENT_BYTES", "MAX_MARKERS",
           "TAKEOVER_SECONDS"]
