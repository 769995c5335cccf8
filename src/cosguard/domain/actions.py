"""What cosguard does to an object: tag it, quarantine it, delete it, promote it.

Server-side copies only: no object byte passes through a function. A copy that fails never deletes
the original; every step is safe to repeat.

Quarantined copies live at `<prefix><source bucket>/<job id>/<original key>` (a version id or a
per-write digest stands in for the job id when there is none), so two source buckets, or two
writes of one key, never share a copy. Their manifest is sealed for that location (seal.py).
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote, unquote

from ..infra.cloud import CloudGateway, ObjectInfo
from ..infra.config import Settings
from ..errors import CloudError, NotFoundError, PreconditionFailed, QuarantineError, StaleObjectError
from .jobs import VirusJob
from .ledger import version_token
from .seal import Sealer, sealer_for
from .status import ScanStatus
from .tags import merge

MANIFEST_META = "cosguard-manifest"
MAX_MANIFEST_BYTES = 1800  # COS user metadata is capped at 2 KB per object


def build_manifest(info: ObjectInfo, job: Optional[VirusJob], reason: str = "") -> Dict[str, Any]:
    """Where a quarantined object came from and why it is there (restore reads this back)."""
    return {
        "bucket": info.bucket, "key": info.key, "version_id": info.version_id, "etag": info.etag,
        "size": info.size, "job_id": job.job_id if job else None, "reason": reason,
        "findings": [{"file": f, "virus": v} for f, v in (job.findings if job else ())],
        "quarantined_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def encode_manifest(manifest: Mapping[str, Any], seal=dict) -> str:
    """Percent-encoded compact JSON (metadata must be ASCII), findings trimmed to fit 2 KB;
    `seal` adds the seal to each candidate, so what is stored is what was sealed."""
    doc = dict(manifest)
    findings = list(doc.get("findings") or [])
    while True:
        encoded = quote(json.dumps(seal(doc), ensure_ascii=False, separators=(",", ":")), safe="")
        if len(encoded) <= MAX_MANIFEST_BYTES or not findings:
            return encoded
        findings.pop()
        doc["findings"] = findings
        doc["findings_truncated"] = len(manifest.get("findings") or []) - len(findings)


def decode_manifest(metadata: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """The manifest as stored, NOT authenticated (see open_manifest)."""
    raw = metadata.get(MANIFEST_META)
    if not raw:
        return None
    try:
        doc = json.loads(unquote(raw))
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def open_manifest(sealer: Sealer, info: ObjectInfo, report: bool = True) -> Optional[Dict[str, Any]]:
    """The manifest of the quarantined copy `info`, only if cosguard sealed it for this location."""
    if MANIFEST_META not in info.metadata:
        return None
    return sealer.open_manifest(info.bucket, info.key, decode_manifest(info.metadata), report=report)


def same_bytes(record: Mapping[str, Any], info: ObjectInfo, exact: bool = True) -> bool:
    """Does HEAD's `info` describe the bytes `record` (a manifest or a copy record) names?

    Not `exact`: a multipart copy (over 5 GB) of a single-part original gets a new ETag of the
    form `<md5>-<parts>`, and the size alone must match (recognising cosguard's own copies only;
    restore always wants the exact ETag)."""
    etag, recorded = info.etag.strip('"'), str(record.get("etag") or "").strip('"')
    if record.get("size") != info.size or not recorded:
        return False
    return etag == recorded or (not exact and "-" in etag and "-" not in recorded)


def copy_record(copy: ObjectInfo) -> Dict[str, Any]:
    """What the ledger keeps about a quarantined copy: where, and which bytes (restore checks)."""
    return {"bucket": copy.bucket, "key": copy.key, "version_id": copy.version_id,
            "etag": copy.etag.strip('"'), "size": copy.size}


def write_segment(info: ObjectInfo, job_id: Optional[str]) -> str:
    """What distinguishes this write in its quarantine key: the job, else the version, else a
    digest of the ETag (same bytes, same evidence)."""
    if job_id:
        return job_id
    if info.version_id:
        return "v-" + info.version_id
    return "e-" + hashlib.sha256(info.etag.strip('"').encode("utf-8")).hexdigest()[:20]


def quarantined_copies(gateway: CloudGateway, settings: Settings, source_bucket: str, key: str):
    """Quarantine keys holding copies of `source_bucket`/`key`, newest layout first, then the
    layout older deployments used (`<prefix><key>`). One listing, plus one HEAD for the old one."""
    bucket = settings.quarantine_bucket_for(source_bucket)
    base = f"{settings.quarantine_prefix}{source_bucket}/"
    found = [str(item["Key"]) for item in gateway.list(bucket, prefix=base)
             if str(item["Key"])[len(base):].partition("/")[2] == key]
    try:
        gateway.head(bucket, settings.quarantine_prefix + key)
        found.append(settings.quarantine_prefix + key)
    except NotFoundError:
        pass
    return bucket, found


class Actions:
    """The object operations behind every verdict, shared by callback, sweep, backfill and CLI."""

    def __init__(self, settings: Settings, gateway: CloudGateway, sealer: Optional[Sealer] = None):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer or sealer_for(settings)

    def tag(self, info: ObjectInfo, status: ScanStatus, job_id: Optional[str] = None,
            existing: Optional[Mapping[str, str]] = None) -> bool:
        """Merge cosguard's tags into the object's; False when they did not fit (10-tag limit)."""
        if existing is None:
            existing = self.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}
        merged, fitted = merge(existing, status, job_id)
        if merged != dict(existing):
            self.gateway.put_tags(info.bucket, info.key, merged, info.version_id)
        return fitted

    def quarantine_location(self, info: ObjectInfo, job_id: Optional[str]) -> Tuple[str, str]:
        return (self.settings.quarantine_bucket_for(info.bucket),
                f"{self.settings.quarantine_prefix}{info.bucket}/{write_segment(info, job_id)}/{info.key}")

    def quarantine(self, info: ObjectInfo, manifest: Mapping[str, Any],
                   status: ScanStatus = ScanStatus.INFECTED) -> ObjectInfo:
        """Copy the scanned version to quarantine with its sealed manifest (next to the user's
        metadata), tag it, then delete the original; returns the copy. QuarantineError (original
        untouched) if the copy fails."""
        bucket, key = self.quarantine_location(info, manifest.get("job_id"))
        metadata = {k: v for k, v in info.metadata.items() if not k.startswith("cosguard-")}
        metadata[MANIFEST_META] = encode_manifest(
            manifest, lambda doc: self.sealer.seal_manifest(bucket, key, doc))
        return self._relocate(info, bucket, key, status, manifest.get("job_id"), {}, metadata)

    def delete(self, info: ObjectInfo) -> None:
        self._delete_original(info)

    def promote(self, info: ObjectInfo, job_id: str, tags: Mapping[str, str]) -> str:
        """Fail-closed mode: copy a clean object to the destination with its tags, tag it clean,
        remove the intake copy."""
        destination = self.settings.clean_destination
        assert destination is not None
        bucket, key = destination.for_source(info.bucket), destination.prefix + info.key
        copy = self._relocate(info, bucket, key, ScanStatus.CLEAN, job_id, tags)
        return f"{copy.bucket}/{copy.key}"

    def _relocate(self, info: ObjectInfo, bucket: str, key: str, status: ScanStatus, job_id: Optional[str],
                  tags: Mapping[str, str], metadata: Optional[Mapping[str, str]] = None) -> ObjectInfo:
        """Server-side copy, tag the copy, then delete the original: a failed copy deletes nothing."""
        try:
            copied = self.gateway.copy(info, bucket, key, metadata=metadata)
            self.tag(copied, status, job_id, existing=tags)
        except PreconditionFailed as exc:  # CopySourceIfMatch: overwritten since it was scanned
            raise StaleObjectError(f"{info.bucket}/{info.key} changed before it could be moved") from exc
        except CloudError as exc:
            raise QuarantineError(f"copy to {bucket}/{key} failed, original kept: {exc}") from exc
        self._delete_original(info)
        return copied

    def _delete_original(self, info: ObjectInfo) -> None:
        """Delete exactly the scanned upload (on a versioned bucket, that version, not a delete marker).

        Unversioned buckets have no version to name, so the window in which a fresh upload to the
        same key could be deleted instead is kept as small as COS allows: the upload's identity
        (ETag + Last-Modified) is re-checked immediately before, and a changed object raises
        StaleObjectError, which the caller reports as a warning naming the key. The DELETE carries
        If-Match, but COS documents no conditional DELETE (doc 436/7743): a write landing between
        the re-check and the DELETE is deleted with it. That write is reported when its own event or
        verdict finds the key gone after this removal (removals.py, which names what stays silent);
        `benchmarks/bench_overwrite_window.py` measures the window.
        """
        try:
            if not info.version_id:
                current = self.gateway.head(info.bucket, info.key)
                if version_token(current) != version_token(info):
                    raise StaleObjectError(f"{info.bucket}/{info.key} was overwritten while the verdict was "
                                           "applied; the copy stays, the new upload is left to its own scan")
            self.gateway.delete(info.bucket, info.key, info.version_id,
                                if_match="" if info.version_id else info.etag)
        except NotFoundError:
            pass
        except PreconditionFailed as exc:
            raise StaleObjectError(f"{info.bucket}/{info.key} was overwritten while the verdict was applied "
                                   "(the delete's If-Match failed); the new upload is left to its own scan") from exc
        except CloudError as exc:
            raise QuarantineError(f"copied, but deleting {info.bucket}/{info.key} failed: {exc}") from exc
