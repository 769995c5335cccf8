"""What one upload is called in the ledger, and what its entry holds.

An upload's identity (`token_for`) is the one rule trigger, sweep and backfill share; every ledger
name of one key starts with the same digest (`key_digest`), so its documents list together.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Optional

from ..infra.cloud import APPENDABLE, ObjectInfo
from ..infra.records import Factory, Record

# Outcomes after which the scanned write is still the object at its key: only these are recorded as
# handled. Every other one (quarantined, deleted, promoted, released, gone) removed it, and a write
# of the same bytes in the same second (the same ETag@Last-Modified identity) must be scanned anew.
KEPT_IN_PLACE = frozenset({"clean", "infected", "error", "unscannable"})
# Outcomes whose action deleted the key at the source (`error`: a failed scan may be quarantined).
REMOVED_BY_COSGUARD = frozenset({"quarantined", "deleted", "promoted", "error"})


def token_for(version_id: Optional[str], etag: str, last_modified: Optional[int] = None,
              appended_size: Optional[int] = None) -> str:
    """The identity of one write (upload) of a key: the one rule for trigger, sweep and backfill.

    Versioned buckets: the version id. Unversioned: ETag and Last-Modified (epoch seconds) together,
    so a re-upload of identical bytes is a new write, while a redelivered event, a sweep or a
    backfill of the same write computes the same string. (Two writes of identical bytes within the
    same second are indistinguishable: COS's timestamps have one-second resolution.)

    An appendable object (APPEND Object, doc 436/7741) adds its size, `appended_size`: whether COS
    gives each append a new ETag is not documented, and if it does not, two appends in one second
    would share ETag@Last-Modified and the second be answered `duplicate`; appends only grow the
    object, so its size tells them apart. HEAD tells an appendable object apart, a listing does not:
    the backfill's listing names such an object without its size, which matches no claim of it, and
    the object takes the scan path, where HEAD's identity decides (one HEAD more). The one false
    match left (docs/operations.md, "appendable"): a normal write of the key with the same ETag@Last-Modified.
    """
    if version_id and version_id != "null":
        return version_id
    etag = etag.strip('"')
    token = f"{etag}@{int(last_modified)}" if last_modified else etag
    return token if appended_size is None else f"{token}+{int(appended_size)}"


def kept_in_place(outcome: Any, manifest: Dict[str, Any]) -> bool:
    """Did handling end with the scanned write still at its key (tagged, not moved or deleted)?"""
    return outcome in KEPT_IN_PLACE and not manifest.get("quarantined")


def version_token(info: ObjectInfo) -> str:
    """The identity of the write HEAD describes (an appendable object's includes its size)."""
    return token_for(info.version_id, info.etag, info.last_modified,
                     info.size if info.object_type == APPENDABLE else None)


def key_digest(bucket: str, key: str) -> str:
    """The first part of every ledger name of one key: its open entries share one listable prefix."""
    return hashlib.sha256(f"{bucket}\n{key}".encode("utf-8")).hexdigest()[:16]


def digest(bucket: str, key: str, token: str) -> str:
    return key_digest(bucket, key) + hashlib.sha256(f"{bucket}\n{key}\n{token}".encode("utf-8")).hexdigest()[:24]


class MalformedEntry(ValueError):
    """A ledger document that is not a job entry's shape."""


def _is_a(value: Any, kinds: tuple) -> bool:
    """isinstance, except that a bool is no number (JSON true is not a size or a time)."""
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


_NUMBER = (int, float)
_FIELD_TYPES: Dict[str, tuple] = {
    "job_id": (str,), "bucket": (str,), "key": (str,), "etag": (str,), "version_id": (str, type(None)),
    "size": (int,), "submitted_at": _NUMBER, "tagged": (bool,), "outcome": (str, type(None)),
    "closed_at": _NUMBER + (type(None),), "manifest": (dict,), "token": (str,), "last_modified": (int,),
    "state": (str,), "lease_until": _NUMBER, "previous_state": (str,), "callback_ref": (str, type(None)),
    "pinned": (bool,), "rescan_of": (str,), "verdict_at": _NUMBER, "first_verdict_at": _NUMBER,
}


class JobEntry(Record):
    """One upload in flight (state `submitting`, no job yet, or `submitted`), or a closed job."""

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
    manifest: Dict[str, Any] = Factory(dict)
    token: str = ""              # version_token of the scanned upload (binding compares it)
    last_modified: int = 0
    state: str = "submitted"     # submitting | submitted | failed (a retry entry says why)
    lease_until: float = 0.0     # for `submitting`: when its holder's deadline has surely passed
    previous_state: str = ""     # set on a claim taken over from a failed or dead holder
    callback_ref: Optional[str] = None  # what the job's callback URL binds (security.object_ref)
    pinned: bool = False         # the job read this version by id (CI's Url input), not the key
    rescan_of: str = ""          # a rescan (rescans.py): the job whose clean verdict it checks again
    verdict_at: float = 0.0      # a rescan: when that verdict was given (the last one)
    first_verdict_at: float = 0.0  # a rescan: when the write's first verdict was given

    @classmethod
    def from_doc(cls, doc: Any) -> "JobEntry":
        """The entry a ledger document records; MalformedEntry when it is not one (any other shape,
        a field missing or of another type), so no planted shape ever reaches code as an entry."""
        if not isinstance(doc, dict):
            raise MalformedEntry(f"a JSON {type(doc).__name__}, not an object")
        known = {k: doc[k] for k in cls._fields if k in doc}
        known.setdefault("job_id", "")
        for name, value in known.items():
            if not _is_a(value, _FIELD_TYPES[name]):
                raise MalformedEntry(f"field {name!r} is a {type(value).__name__}")
        try:
            return cls(**known)
        except TypeError as exc:   # a required field missing
            raise MalformedEntry(str(exc)) from None

    @classmethod
    def for_object(cls, info: ObjectInfo, now: float, lease: float) -> "JobEntry":
        return cls(job_id="", bucket=info.bucket, key=info.key, etag=info.etag, version_id=info.version_id,
                   size=info.size, submitted_at=now, token=version_token(info),
                   last_modified=info.last_modified, state="submitting", lease_until=now + lease)

    @property
    def identity(self) -> str:
        return self.token or token_for(self.version_id, self.etag, self.last_modified)

    @property
    def name(self) -> str:
        return digest(self.bucket, self.key, self.identity)

