"""Putting a quarantined object back where it came from: an explicit human decision, recorded."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Optional

from .actions import MANIFEST_META, Actions, decode_manifest
from ..infra.cloud import CloudGateway
from ..infra.config import Settings
from ..errors import CosguardError, NotFoundError
from .ledger import Ledger
from ..infra.logs import event, get_logger
from .security import RELEASED_META, released_marker
from .status import ScanStatus

log = get_logger("cosguard.domain.restore")
JOB_ID_RE = re.compile(r"^ss[0-9a-f]{32}$")


class RestoreRefused(CosguardError):
    """The restore was not done: the target is unknown, or the original location is occupied."""


@dataclass
class Restored:
    source: str
    destination: str
    job_id: Optional[str]
    overwrote: bool


class Restorer:
    def __init__(self, settings: Settings, gateway: CloudGateway, ledger_for):
        self.settings = settings
        self.gateway = gateway
        self.actions = Actions(settings, gateway)
        self.ledger_for = ledger_for  # bucket -> Ledger

    def locate(self, target: str, quarantine_bucket: Optional[str] = None):
        """(bucket, key) of the quarantined copy named by a job id or a quarantined key."""
        if JOB_ID_RE.match(target):
            for bucket in self.settings.buckets:
                entry = self.ledger_for(bucket).get_job(target)
                if entry is not None and entry.bucket == bucket:
                    return (self.settings.quarantine_bucket_for(bucket),
                            self.settings.quarantine_prefix + entry.key)
            raise RestoreRefused(f"no finished job {target} in the ledger")
        bucket = quarantine_bucket or self.settings.quarantine_bucket or (
            self.settings.buckets[0] if len(self.settings.buckets) == 1 else None)
        if bucket is None:
            raise RestoreRefused("several buckets are served: name the quarantine bucket with --bucket")
        key = target if target.startswith(self.settings.quarantine_prefix) else self.settings.quarantine_prefix + target
        return bucket, key

    def restore(self, target: str, force: bool = False, quarantine_bucket: Optional[str] = None) -> Restored:
        bucket, key = self.locate(target, quarantine_bucket)
        try:
            quarantined = self.gateway.head(bucket, key)
        except NotFoundError:
            raise RestoreRefused(f"nothing quarantined at {bucket}/{key}") from None
        manifest = decode_manifest(quarantined.metadata)
        if not manifest or not manifest.get("bucket") or not manifest.get("key"):
            raise RestoreRefused(f"{bucket}/{key} carries no cosguard manifest")
        origin_bucket, origin_key = manifest["bucket"], manifest["key"]
        occupied = True
        try:
            self.gateway.head(origin_bucket, origin_key)
        except NotFoundError:
            occupied = False
        if occupied and not force:
            raise RestoreRefused(f"{origin_bucket}/{origin_key} is occupied; --force replaces it")
        metadata = {k: v for k, v in quarantined.metadata.items() if k not in (MANIFEST_META, RELEASED_META)}
        metadata[RELEASED_META] = released_marker(self.settings.callback_token, origin_bucket, origin_key,
                                                  quarantined.etag)
        restored = self.gateway.copy(quarantined, origin_bucket, origin_key, metadata=metadata)
        self.actions.tag(restored, ScanStatus.RELEASED, manifest.get("job_id"), existing={})
        self.gateway.delete(bucket, key, quarantined.version_id)
        job_id = manifest.get("job_id")
        if job_id:
            ledger: Ledger = self.ledger_for(origin_bucket)
            entry = ledger.get_job(job_id)
            if entry is not None:
                ledger.close_job(entry, "released", dict(entry.manifest, released_from=f"{bucket}/{key}"))
        event(log, "released from quarantine", logging.WARNING, bucket=origin_bucket, key=origin_key,
              job_id=job_id, source=f"{bucket}/{key}", overwrote=occupied,
              viruses=[f.get("virus") for f in manifest.get("findings", [])])
        return Restored(f"{bucket}/{key}", f"{origin_bucket}/{origin_key}", job_id, occupied)
