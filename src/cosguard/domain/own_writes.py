"""cosguard's own writes in a scanned bucket (quarantine copies, promoted copies, ledger documents),
recognised by their seal and their exact bytes, never by where they are: the Scanner (scan.py)
does not scan what is recognised, and re-applies cosguard's status tags to its copies (an uploader
may have tagged a quarantined copy `clean`). An object an uploader put under the quarantine or
ledger prefix, or the clean destination, is not recognised and is scanned like any other."""
from __future__ import annotations

from typing import Callable, Optional

from ..errors import NotFoundError
from ..infra.cloud import ObjectInfo
from ..infra.config import Settings
from ..infra.gateway import Gateway
from .actions import Actions, is_copy_of, open_manifest, quarantined_status
from .ledger import MAX_DOCUMENT_BYTES, Ledger
from .seal import Sealer
from .status import JOB_TAG, ScanStatus


class OwnWrites:
    def __init__(self, settings: Settings, gateway: Gateway, sealer: Sealer, actions: Actions,
                 ledger: Callable[[str], Ledger]):
        self.settings, self.gateway, self.sealer, self.actions, self.ledger = settings, gateway, sealer, actions, ledger

    def recognise(self, info: ObjectInfo) -> Optional[str]:
        """cosguard's own writes, recognised by their seal and their exact bytes, never by where
        they are: an object an uploader put under the quarantine or ledger prefix, or the clean
        destination, is scanned like any other. What is recognised gets cosguard's status tags
        again (an uploader may have tagged a quarantined copy `clean`)."""
        settings = self.settings
        if info.bucket == settings.quarantine_bucket_for(info.bucket) and \
                info.key.startswith(settings.quarantine_prefix):
            manifest = open_manifest(self.sealer, info)
            if manifest is not None and is_copy_of(manifest, info):
                job_id = manifest.get("job_id")
                self.retag(info, quarantined_status(manifest), str(job_id) if job_id else None)
                return "cosguard quarantine copy"
        if self.sealer.is_promoted_copy(info.bucket, info.key, info.etag, info.metadata, info.crc64):
            if info.tag_count:  # untagged: cosguard's own tagging (with the user's tags) is still to come
                self.retag(info, ScanStatus.CLEAN, None, keep_job=True)
            return "cosguard promoted copy"
        ledger = self.ledger(info.bucket)
        if info.bucket == ledger.bucket and info.key.startswith(settings.state_prefix) \
                and info.size <= MAX_DOCUMENT_BYTES and ledger.is_own_document(info.key):
            return "cosguard ledger document"
        return None

    def retag(self, info: ObjectInfo, status: ScanStatus, job_id: Optional[str], keep_job: bool = False) -> None:
        """Re-apply `status` and `job_id` (`keep_job`: the job tag there, which a promoted copy's
        marker does not name) to a copy of cosguard's own, keeping the other tags. One GET Object
        tagging, and a PUT only when a tag differs."""
        try:
            existing = self.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}
            if keep_job and existing.get(JOB_TAG):
                job_id = existing[JOB_TAG]
            self.actions.tag(info, status, job_id, existing=existing)
        except NotFoundError:
            pass   # removed meanwhile (restored, or overwritten: a new write has its own event)


__all__ = ["OwnWrites"]
