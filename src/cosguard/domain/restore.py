"""Putting a quarantined object back where it came from: an explicit human decision, recorded.

Only bytes cosguard itself quarantined are released: the copy's sealed manifest names its job, the
job's sealed ledger entry records the copy (ETag, size, version id), and HEAD must agree with that
record. Anything else is refused with the reason, and nothing is changed.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import CloudError, CosguardError, NotFoundError, PreconditionFailed
from ..infra.cloud import ObjectInfo
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from ..infra.records import Factory, Record
from .actions import MANIFEST_META, Actions, decode_manifest, open_manifest, quarantined_copies, same_bytes
from .ledger import JobEntry, Ledger
from .security import RELEASED_META, released_marker
from .status import ScanStatus

log = get_logger("cosguard.domain.restore")
JOB_ID_RE = re.compile(r"^ss[0-9a-f]{32}$")


class RestoreRefused(CosguardError):
    """The restore was not done: the target is unknown, the bytes are not the ones cosguard
    quarantined, or the original location is occupied."""


class Restored(Record):
    source: str
    destination: str
    job_id: Optional[str]
    overwrote: bool
    metadata_not_restored: List[str] = Factory(list)  # dropped to fit the quarantine copy


class Restorer:
    def __init__(self, settings: Settings, gateway: Gateway, ledger_for):
        self.settings = settings
        self.gateway = gateway
        self.ledger_for = ledger_for  # bucket -> Ledger
        self.sealer = ledger_for(settings.buckets[0]).sealer
        self.actions = Actions(settings, gateway, self.sealer)

    def _entry(self, job_id: str, bucket: Optional[str] = None) -> Optional[JobEntry]:
        """The job's sealed ledger entry, looked up in `bucket`'s ledger or every served one."""
        for served in ([bucket] if bucket else self.settings.buckets):
            if not self.settings.serves(served):
                continue
            entry = self.ledger_for(served).get_job(job_id)
            if entry is not None and entry.bucket == served:
                return entry
        return None

    @staticmethod
    def recorded_copy(entry: JobEntry, settings: Settings) -> Dict[str, Any]:
        """Where the ledger says the job's copy is: recorded since quarantine keys carry the source
        bucket and job; older entries name only the original key."""
        copy = entry.manifest.get("quarantined")
        if isinstance(copy, dict) and copy.get("key"):
            return copy
        return {"bucket": settings.quarantine_bucket_for(entry.bucket),
                "key": settings.quarantine_prefix + entry.key}

    def locate(self, target: str, quarantine_bucket: Optional[str] = None) -> Tuple[str, str, Optional[JobEntry]]:
        """(bucket, key, ledger entry if named by job) of the quarantined copy `target` names."""
        if JOB_ID_RE.match(target):
            entry = self._entry(target)
            if entry is None:
                raise RestoreRefused(f"no job {target} in the ledger (or its entry is not sealed by cosguard)")
            copy = self.recorded_copy(entry, self.settings)
            return copy["bucket"], copy["key"], entry
        bucket = quarantine_bucket or self.settings.quarantine_bucket or (
            self.settings.buckets[0] if len(self.settings.buckets) == 1 else None)
        if bucket is None:
            raise RestoreRefused("several buckets are served: name the quarantine bucket with --bucket")
        if target.startswith(self.settings.quarantine_prefix):
            return bucket, target, None
        # an original key: its copies from every served bucket, in either quarantine key layout
        copies = [(where, key) for source in self.settings.buckets
                  for where, keys in [quarantined_copies(self.gateway, self.settings, source, target)]
                  for key in keys if where == bucket]
        if len(copies) > 1:
            raise RestoreRefused(f"{len(copies)} quarantined copies of {target}: name one of "
                                 + ", ".join(key for _, key in copies))
        return bucket, copies[0][1] if copies else self.settings.quarantine_prefix + target, None

    def _verify(self, quarantined: ObjectInfo, entry: Optional[JobEntry]) -> Tuple[Mapping[str, Any], Optional[JobEntry]]:
        """The manifest of a copy whose bytes are what cosguard quarantined; else RestoreRefused."""
        where = f"{quarantined.bucket}/{quarantined.key}"
        manifest = open_manifest(self.sealer, quarantined)
        if manifest is None:
            reason = "carries no cosguard manifest" if MANIFEST_META not in quarantined.metadata else \
                "carries a manifest cosguard did not seal (written or altered by someone else)"
            raise RestoreRefused(f"{where} {reason}")
        if not manifest.get("bucket") or not manifest.get("key"):
            raise RestoreRefused(f"{where}: its manifest names no origin")
        job_id = manifest.get("job_id")
        if entry is None and job_id:
            entry = self._entry(str(job_id), str(manifest["bucket"]))
            if entry is None:
                raise RestoreRefused(f"{where}: job {job_id} has no sealed ledger entry to check the bytes against")
        if entry is not None:
            if entry.job_id != job_id or entry.bucket != manifest["bucket"] or entry.key != manifest["key"]:
                raise RestoreRefused(f"{where}: its manifest does not match the ledger's job {entry.job_id}")
            copy = entry.manifest.get("quarantined")
            record = copy if isinstance(copy, dict) else {"etag": entry.etag, "size": entry.size}
        else:  # quarantined without a job (unscannable): the sealed manifest is the record
            record = manifest
        if not same_bytes(record, quarantined):
            raise RestoreRefused(
                f"{where} holds other bytes than cosguard quarantined (ETag {quarantined.etag.strip(chr(34))}, "
                f"{quarantined.size} bytes; recorded ETag {str(record.get('etag')).strip(chr(34))}, "
                f"{record.get('size')} bytes): nothing restored")
        return manifest, entry

    def restore(self, target: str, force: bool = False, quarantine_bucket: Optional[str] = None) -> Restored:
        bucket, key, entry = self.locate(target, quarantine_bucket)
        version = None
        if entry is not None:
            version = self.recorded_copy(entry, self.settings).get("version_id")
        try:
            quarantined = self.gateway.head(bucket, key, version)
        except NotFoundError:
            raise RestoreRefused(f"nothing quarantined at {bucket}/{key}") from None
        manifest, entry = self._verify(quarantined, entry)
        origin_bucket, origin_key = manifest["bucket"], manifest["key"]
        if not self.settings.serves(origin_bucket):
            raise RestoreRefused(f"{origin_bucket} is not a bucket this deployment serves")
        occupied = True
        try:
            self.gateway.head(origin_bucket, origin_key)
        except NotFoundError:
            occupied = False
        if occupied and not force:
            raise RestoreRefused(f"{origin_bucket}/{origin_key} is occupied; --force replaces it")
        metadata = {k: v for k, v in quarantined.metadata.items() if k not in (MANIFEST_META, RELEASED_META)}
        metadata[RELEASED_META] = released_marker(self.sealer, origin_bucket, origin_key, quarantined.etag)
        try:  # copies only the verified bytes: CopySourceIfMatch carries the checked ETag
            restored = self.gateway.copy(quarantined, origin_bucket, origin_key, metadata=metadata)
        except PreconditionFailed:
            raise RestoreRefused(f"{bucket}/{key} changed while it was being restored: nothing restored") from None
        self.actions.tag(restored, ScanStatus.RELEASED, manifest.get("job_id"), existing={})
        self.gateway.delete(bucket, key, quarantined.version_id)
        job_id = manifest.get("job_id")
        if entry is not None:
            ledger: Ledger = self.ledger_for(origin_bucket)
            ledger.close_job(entry, "released", dict(entry.manifest, released_from=f"{bucket}/{key}"))
        event(log, "released_from_quarantine", logging.WARNING, bucket=origin_bucket, key=origin_key,
              job_id=job_id, source=f"{bucket}/{key}", overwrote=occupied,
              viruses=[f.get("virus") for f in manifest.get("findings", []) if isinstance(f, dict)])
        return Restored(f"{bucket}/{key}", f"{origin_bucket}/{origin_key}", job_id, occupied,
                        _not_restored(manifest, entry))


def copy_state(gateway: Gateway, settings: Settings, entry: JobEntry) -> str:
    """Whether a quarantined job's copy still holds the bytes the ledger recorded: `intact`,
    `missing`, `not checked (...)`, or `other bytes` (an uploader who can write the quarantine prefix replaced them):
    what `status` shows, so a plant at the copy's key never reads as the quarantined original."""
    copy = Restorer.recorded_copy(entry, settings)
    record = copy if copy.get("etag") else {"etag": entry.etag, "size": entry.size}
    try:
        found = gateway.head(str(copy["bucket"]), str(copy["key"]), copy.get("version_id") or None)
    except NotFoundError:
        return "missing"
    except CloudError as exc:
        return f"not checked ({exc.code or type(exc).__name__})"
    return "intact" if same_bytes(record, found) else "other bytes"


def _not_restored(manifest: Mapping[str, Any], entry: Optional[JobEntry]) -> List[str]:
    """The uploader's metadata names the quarantine copy could not keep (COS's 2 KB went to the
    manifest first): the ledger's list is complete, the manifest's may be trimmed."""
    recorded = entry.manifest.get("metadata_dropped") if entry is not None else None
    names = recorded if isinstance(recorded, list) else manifest.get("metadata_dropped")
    return sorted(str(name) for name in names) if isinstance(names, list) else []


__all__ = ["Restorer", "RestoreRefused", "Restored", "copy_state", "decode_manifest"]
