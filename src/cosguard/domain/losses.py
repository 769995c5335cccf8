"""The ledger's record of each possible overwrite-race loss (removals.py finds them), until a human
acknowledges it: `losses/<intake bucket>/<id>.json`, one small sealed document per loss.

    id = key_digest(bucket, key) + 24 hex of sha256(bucket, key, the removal that may have taken it)

The removal is named by the job that removed the key (or, while it is still acting, the job that
will: the same id), else (the ledger's removals could not be read) by the lost write's time. So the
same loss found twice (a redelivered event, the event and then the write's own verdict) is one
record: the first write creates it with forbid-overwrite, the next finds it there and writes
nothing. A document at that name that cosguard did not seal is replaced (an uploader who can write
the state prefix cannot keep a loss off the report by planting one first); read by a report, such a
document is a forgery like any other ledger document, reported and never believed.

Readers list the folder (one LIST per 1,000 records, per intake bucket, no read) and read only the
records they show (`cosguard report --detail`, `cosguard status --recent`), newest first by the
LIST's LastModified. `cosguard ledger ack ID` deletes one (docs/ledger-states.md). The folder
expires like `closed/` (COSGUARD_RETAIN_CLOSED_DAYS, retention.py).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ..errors import NotFoundError, PreconditionFailed
from .claims import ForgedDocument
from .entries import key_digest
from .ledger_parts import LedgerParts

LOSSES = "losses"
ID_PATTERN = re.compile(r"^[0-9a-f]{40}$")


def loss_id(bucket: str, key: str, removal_job: Optional[str], written_at: float) -> str:
    """The name of one possible loss: the key and the removal that may have taken the write."""
    removal = f"job:{removal_job}" if removal_job else f"at:{int(written_at)}"
    tail = hashlib.sha256(f"{bucket}\n{key}\nloss\n{removal}".encode("utf-8")).hexdigest()[:24]
    return key_digest(bucket, key) + tail


def ack_command(bucket: str, found_id: str) -> str:
    """What a human runs once they have dealt with the loss (bucket names have no shell metacharacters)."""
    return f"cosguard ledger ack {found_id} --bucket {bucket}"


class LossEntry(NamedTuple):
    """One record as listed (no read): its intake bucket, id, ledger key and LIST LastModified."""

    bucket: str
    loss_id: str
    ledger_key: str
    modified: str


class LossesMixin(LedgerParts):
    """`losses/` of the Ledger (ledger.py supplies the sealed reads and writes)."""

    def loss_key(self, bucket: str, found_id: str) -> str:
        return self._key(LOSSES, f"{bucket}/{found_id}")

    def losses_prefix(self) -> str:
        return f"{self.prefix}{LOSSES}/"

    def record_loss(self, bucket: str, key: str, written_at: float, removal: Dict[str, Any], detail: str,
                    found_by: str) -> Tuple[str, bool]:
        """(id, True) when this call recorded the loss; (id, False) when a sealed record of it was
        there already."""
        found_id = loss_id(bucket, key, removal.get("job_id"), written_at)
        where = self.loss_key(bucket, found_id)
        document = {"bucket": bucket, "key": key, "id": found_id, "written_at": written_at,
                    "removal_job": removal.get("job_id"), "removal": removal.get("outcome"),
                    "detail": detail, "found_by": found_by, "recorded_at": self.clock()}
        try:
            self._write(where, document, if_absent=True)
            return found_id, True
        except PreconditionFailed:
            pass
        try:
            self._read(where)
            return found_id, False
        except ForgedDocument:   # planted before it (a NotFoundError too): the genuine record takes its place
            self._write(where, document)
        except NotFoundError:   # acknowledged between the two requests: recorded again
            self._write(where, document, if_absent=True)
        return found_id, True

    def loss_entries(self, bucket: Optional[str] = None) -> List[LossEntry]:
        """Every record (of intake `bucket` only, when given), newest first: one LIST, no read."""
        base = self.losses_prefix()
        found = []
        for item in self.gateway.list(self.bucket, prefix=base + (f"{bucket}/" if bucket else "")):
            name = str(item["Key"])[len(base):]
            where, _, file = name.rpartition("/")
            found.append(LossEntry(where, file[:-len(".json")] if file.endswith(".json") else file,
                                   str(item["Key"]), str(item.get("LastModified") or "")))
        return sorted(found, key=lambda e: (e.modified, e.ledger_key), reverse=True)

    def read_loss(self, entry: LossEntry) -> Optional[Dict[str, Any]]:
        """The record; None when it was acknowledged meanwhile, or does not name the loss its name
        says (only a bug or a broken seal lets one through); ForgedDocument when it is not sealed."""
        try:
            doc = self._read(entry.ledger_key)
        except ForgedDocument:
            raise
        except NotFoundError:
            return None
        if doc.get("bucket") != entry.bucket or doc.get("id") != entry.loss_id or not isinstance(doc.get("key"), str):
            return None
        return doc

    def acknowledge_loss(self, bucket: str, found_id: str) -> Optional[Dict[str, Any]]:
        """Delete the record `found_id` of intake `bucket`: {"state": "acknowledged", ...its fields}, or
        {"state": "unreadable (<code>)"} for a document there cosguard did not seal (deleted too);
        None when there is none."""
        where = self.loss_key(bucket, found_id)
        try:
            doc: Dict[str, Any] = dict(self._read(where), state="acknowledged")
        except ForgedDocument as forged:   # a NotFoundError too: asked first
            doc = {"state": f"unreadable ({forged.code})"}
        except NotFoundError:
            return None
        try:
            self.gateway.delete(self.bucket, where)
        except NotFoundError:
            return None
        return dict(doc, document=where)


__all__ = ["ID_PATTERN", "LOSSES", "LossEntry", "LossesMixin", "ack_command", "loss_id"]
