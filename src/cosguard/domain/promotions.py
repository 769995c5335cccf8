"""One promotion at a time per destination key, and never an older write over a newer write's copy.

Fail-closed mode promotes a clean write by copying it to the clean destination (actions.promote). The
verdict checked that the write is current (HEAD) before acting, but on a versioned intake bucket
current is not newest: promoting v2 deletes v2 by its version id and makes v1 current again, and v2
can be uploaded *and* promoted between v1's check and v1's copy. v1's copy, pinned to v1 (version id
and `x-cos-copy-source-If-Match`), then succeeds and replaces v2's promoted bytes: the destination
holds an older write than the key's newest (on an unversioned destination v2's bytes are then gone:
its intake version was deleted by its own promotion). COS documents no condition on a copy's
*destination*: PUT Object - Copy (doc 436/10881) conditions only its source (`x-cos-copy-source-If-*`),
and `x-cos-forbid-overwrite` forbids every overwrite, and only on unversioned buckets (doc 436/7742).
So cosguard orders promotions itself, in the ledger of the source bucket (`<digest>` names the
destination bucket and key):

    promoting/<digest>.json   the lock: created with forbid-overwrite as an action claim is
                              (Ledger.acquire), leased no longer than the holder's deadline, deleted
                              when done. A promotion that finds it held answers 503 (PromotionBusy):
                              the next delivery or the sweep promotes it; nobody waits.
    promoted/<digest>.json    the newest write promoted there: its source, identity, Last-Modified
                              second, and the versions of that key cosguard had open jobs for then
                              (all older: it was current). Written before the copy, so the
                              destination never holds a promoted copy its record does not name.

With the lock held, the write is checked again: current (HEAD), and, on a versioned bucket, not
older than the recorded write: older when its Last-Modified second is earlier, or in the same second
when the record lists it, or it was written before the record was (the recorded write was current
then). An older write is not promoted (SupersededWrite: tagged `clean` in place, an operator told);
a write no longer current is stale (StaleObjectError: left to its own scan). On an unversioned bucket
a current write is always newer than any promoted one (promoting deletes it). The take-back of a
stale promotion (stale_promotion.py) runs with the lock held, so it never removes a newer promotion's
copy. A version written in the same second as the recorded one, after its check but before its
record, is judged older: it is tagged clean in place, not promoted, and an operator is told.

Costs per promotion: one HEAD, a LIST of the key's open jobs with a GET each (usually the write's
own), and four ledger requests (lock, record read and write, unlock). The function's role already
has all of them; ListObjectVersions, which would order versions exactly, is the operator's only.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from ..errors import CloudError, CosguardError, NotFoundError, StaleObjectError
from ..infra.cloud import ObjectInfo
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.retry import current_deadline
from .claims import ACTION_LEASE_SECONDS
from .entries import key_digest, version_token
from .ledger import Ledger

log = get_logger("cosguard.domain.promotions")


class SupersededWrite(CosguardError):
    """A newer write of the key was promoted already: this older one is not copied over it."""


class PromotionBusy(CosguardError):
    """Another promotion to the same destination key holds its lock: the verdict is applied again
    by the next delivery or the sweep (answered 503, like a verdict another delivery is acting on)."""


def older_than(info: ObjectInfo, record: Mapping[str, Any], recorded_at: int = 0) -> bool:
    """Is the version `info` older than the promoted write `record` names (`recorded_at`: the
    record's Last-Modified second on COS's clock)? See the module docstring."""
    if not info.version_id:
        return False     # unversioned: current under the lock means written after any promoted write
    if record.get("bucket") != info.bucket or record.get("key") != info.key:
        return False     # another source's write: nothing orders them (as before this guard)
    if record.get("identity") == version_token(info):
        return False     # the same write promoted again
    recorded = record.get("last_modified")
    if not isinstance(recorded, int) or not info.last_modified:
        return False
    if info.last_modified != recorded:
        return info.last_modified < recorded
    # the same second: older if cosguard knew it when the recorded write was promoted, or if it was
    # written before the record was (the recorded write was current then, so above it)
    return info.version_id in (record.get("older") or []) or 0 < info.last_modified < recorded_at


class PromotionLock:
    """The lock on one destination key, held (`hold`) while a write is checked and copied there."""

    def __init__(self, gateway: Gateway, ledger: Ledger, info: ObjectInfo, bucket: str, key: str):
        self.gateway, self.ledger, self.info = gateway, ledger, info
        self.name, self.destination = key_digest(bucket, key), f"{bucket}/{key}"

    @contextmanager
    def hold(self) -> Iterator["PromotionLock"]:
        lease = min(ACTION_LEASE_SECONDS, max(0.0, current_deadline().remaining()))
        if not self.ledger.lock_promotion(self.name, self.destination, lease):
            raise PromotionBusy(f"another promotion to {self.destination} is under way: tried again later")
        try:
            yield self
        finally:
            try:
                self.ledger.unlock_promotion(self.name)
            except CloudError as exc:   # its lease runs out (no longer than this invocation's deadline)
                event(log, "promotion_lock_kept", logging.WARNING, bucket=self.info.bucket, key=self.info.key,
                      destination=self.destination, reason=str(exc))

    def admit(self) -> None:
        """With the lock held: the write is still current and not older than the promoted one, and
        the record names it from now on. StaleObjectError or SupersededWrite otherwise."""
        info = self.info
        try:
            current = self.gateway.head(info.bucket, info.key)
        except NotFoundError:
            current = None
        if current is None or version_token(current) != version_token(info):
            raise StaleObjectError(f"{info.bucket}/{info.key} changed before it could be promoted")
        found = self.ledger.promotion_record(self.name)
        if found is not None and older_than(info, found[0], found[1].last_modified):
            event(log, "promotion_superseded", logging.WARNING, bucket=info.bucket, key=info.key,
                  version=info.version_id or "", destination=self.destination,
                  reason=f"a newer write ({found[0].get('identity')}) was promoted there already")
            raise SupersededWrite(f"a newer write of {info.bucket}/{info.key} was promoted to {self.destination} "
                                  "already: this older one is tagged clean in place, not promoted over it")
        # the other writes of this key cosguard knows unfinished: older than this current one
        older = sorted({entry.version_id for entry in self.ledger.open_entries_of(info.bucket, info.key)
                        if entry.version_id and entry.version_id != info.version_id}) if info.version_id else []
        self.ledger.record_promotion(self.name, {
            "bucket": info.bucket, "key": info.key, "identity": version_token(info),
            "last_modified": info.last_modified, "older": older, "promoted_at": self.ledger.clock()})


__all__ = ["PromotionBusy", "PromotionLock", "SupersededWrite", "older_than"]
