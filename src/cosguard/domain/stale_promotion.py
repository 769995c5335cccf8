"""A promotion that turns stale after its copy was made takes its copy back.

The intake object changed between the copy to the clean destination and the removal of the original
(StaleObjectError from `Actions._relocate`, carrying the copy it made): the newer write is left for
its own scan and promotion, and the copy of the older one must not stay where readers read as if it
were the key's promoted content. Only cosguard's own copy is removed: the object at the destination
must still have the copy's ETag and carry the promotion marker cosguard wrote (seal.py);
on a versioned destination exactly the copy's version is deleted. Costs one HEAD and one DELETE.
"""
from __future__ import annotations

import logging
from typing import Optional

from ..errors import CloudError, NotFoundError, StaleObjectError
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from .seal import PROMOTED_META, Sealer

log = get_logger("cosguard.domain.stale_promotion")


def withdraw_promotion(gateway: Gateway, sealer: Sealer, stale: StaleObjectError) -> Optional[str]:
    """Remove the promoted copy a stale promotion left; returns what was done, for the notification
    (None when the stale action made no promoted copy)."""
    copy = getattr(stale, "copy", None)
    if copy is None or PROMOTED_META not in (copy.metadata or {}):
        return None
    try:
        found = gateway.head(copy.bucket, copy.key, copy.version_id)
    except NotFoundError:
        return None
    except CloudError as exc:
        return f"its promoted copy {copy.bucket}/{copy.key} could not be checked ({exc}): remove it by hand"
    # The bytes cosguard wrote (its own write's ETag) with the marker it wrote: a copy in parts or a
    # streamed one has its own ETag, which the marker (sealed for the scanned write's) cannot name yet
    ours = found.etag.strip('"') == copy.etag.strip('"') and (
        sealer.is_promoted_copy(found.bucket, found.key, found.etag, found.metadata, found.crc64)
        or found.metadata.get(PROMOTED_META) == copy.metadata.get(PROMOTED_META))
    if not ours:
        return f"the object now at {copy.bucket}/{copy.key} is not this promotion's copy: kept"
    try:
        gateway.delete(copy.bucket, copy.key, copy.version_id, if_match="" if copy.version_id else copy.etag)
    except NotFoundError:
        pass
    except CloudError as exc:
        return f"its promoted copy {copy.bucket}/{copy.key} could not be removed ({exc}): remove it by hand"
    event(log, "stale_promotion_withdrawn", logging.WARNING, bucket=copy.bucket, key=copy.key,
          reason="the intake object changed before its original was removed")
    return f"its promoted copy {copy.bucket}/{copy.key} was removed"
