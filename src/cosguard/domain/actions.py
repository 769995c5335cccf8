"""What cosguard does to an object: tag it, quarantine it, delete it, promote it.

Server-side copies, except for appendable objects, which COS cannot copy (doc 436/7741): their bytes
are streamed through the function (`_copy`), the only path that moves object bytes. A copy that fails
never deletes the original; every step is safe to repeat.

Quarantined copies live at `<prefix><source bucket>/<job id>/<original key>` (a version id or a
per-write digest stands in for the job id when there is none), so two source buckets, or two
writes of one key, never share a copy. Their manifest is sealed for that location (seal.py).
Every copy fits COS's limits (limits.py): a key that would pass 850 bytes ends in a digest of the
original key, and the manifest comes before the uploader's metadata, which is dropped (largest
first, and recorded) where both do not fit in 2 KB.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote

from ..errors import CloudError, CopyRefused, NotFoundError, PreconditionFailed, QuarantineError, StaleObjectError
from ..infra.cloud import APPENDABLE, ObjectInfo
from ..infra.config import Settings
from ..infra.gateway import Gateway
from ..infra.logs import event, get_logger
from .jobs import VirusJob
from .ledger import Ledger, version_token
from .limits import MAX_KEY_BYTES, digest_name, fit_beside, fitting_key, key_bytes
from .promotions import PromotionLock
from .seal import PROMOTED_META, Sealer, sealer_for
from .stale_promotion import withdraw_promotion
from .status import ScanStatus
from .tags import merge

log = get_logger("cosguard.domain.actions")

MANIFEST_META = "cosguard-manifest"
MAX_MANIFEST_BYTES = 1800  # of COS's 2 KB of user metadata an object (limits.py); the rest is the user's
MAX_REASON_CHARS = 300     # CI's message is not cosguard's to bound: trimmed when the manifest is full
_B64 = "b64:"              # a manifest too large percent-encoded (a long non-ASCII key) is base64
_TRIMMABLE = ("findings", "metadata_dropped")   # trimmed in this order, the count kept as <name>_truncated


def build_manifest(info: ObjectInfo, job: Optional[VirusJob], reason: str = "") -> Dict[str, Any]:
    """Where a quarantined object came from and why it is there (restore reads this back)."""
    return {
        "bucket": info.bucket, "key": info.key, "version_id": info.version_id, "etag": info.etag,
        "size": info.size, **({"crc64": info.crc64} if info.crc64 else {}),
        "job_id": job.job_id if job else None, "reason": reason,
        "findings": [{"file": f, "virus": v} for f, v in (job.findings if job else ())],
        "quarantined_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _encoded(doc: Mapping[str, Any]) -> str:
    """Percent-encoded compact JSON (metadata must be ASCII), or base64 where that is shorter than
    the bound would allow (a percent-encoded non-ASCII key triples; base64 adds a third)."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    encoded = quote(text, safe="")
    if len(encoded) <= MAX_MANIFEST_BYTES:
        return encoded
    return _B64 + base64.b64encode(text.encode("utf-8")).decode("ascii")


def encode_manifest(manifest: Mapping[str, Any], seal=dict) -> str:
    """The manifest as stored, at most MAX_MANIFEST_BYTES: findings, then the names of dropped user
    metadata, then the reason are trimmed until it fits (origin, identity and job always stay);
    `seal` adds the seal to each candidate, so what is stored is what was sealed."""
    doc = dict(manifest)
    while True:
        encoded = _encoded(seal(doc))
        trimmable = [name for name in _TRIMMABLE if doc.get(name)]
        if len(encoded) <= MAX_MANIFEST_BYTES:
            return encoded
        if trimmable:
            name = trimmable[0]
            doc[name] = list(doc[name])[:-1]
            doc[f"{name}_truncated"] = len(manifest.get(name) or []) - len(doc[name])
        elif doc.get("reason"):  # CI's message: shortened (to nothing at worst) before the rest
            reason = str(doc["reason"])
            cut = min(len(reason) - 1, MAX_REASON_CHARS - 1, len(reason) - (len(encoded) - MAX_MANIFEST_BYTES))
            doc["reason"] = reason[:max(cut, 0)] + "…" if cut > 0 else ""
        else:
            return encoded


def decode_manifest(metadata: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """The manifest as stored, NOT authenticated (see open_manifest)."""
    raw = metadata.get(MANIFEST_META)
    if not raw:
        return None
    try:
        text = base64.b64decode(raw[len(_B64):], validate=True).decode("utf-8") if raw.startswith(_B64) \
            else unquote(raw)
        doc = json.loads(text)
    except (ValueError, RecursionError, binascii.Error):
        return None
    return doc if isinstance(doc, dict) else None


def user_metadata(info: ObjectInfo) -> Dict[str, str]:
    """The uploader's own metadata (cosguard's own names are never carried over)."""
    return {k: v for k, v in info.metadata.items() if not k.startswith("cosguard-")}


def dropped_metadata(info: ObjectInfo, copy: ObjectInfo) -> List[str]:
    """Names of the uploader's metadata the copy could not keep (COS's 2 KB went to the manifest)."""
    return sorted(name for name in user_metadata(info) if name not in copy.metadata)


def open_manifest(sealer: Sealer, info: ObjectInfo, report: bool = True) -> Optional[Dict[str, Any]]:
    """The manifest of the quarantined copy `info`, only if cosguard sealed it for this location."""
    if MANIFEST_META not in info.metadata:
        return None
    return sealer.open_manifest(info.bucket, info.key, decode_manifest(info.metadata), report=report)


def same_bytes(record: Mapping[str, Any], info: ObjectInfo) -> bool:
    """Does HEAD's `info` describe exactly the bytes `record` (a manifest or a copy record) names:
    the same size and ETag? (What restore wants before it puts bytes back.)"""
    etag, recorded = info.etag.strip('"'), str(record.get("etag") or "").strip('"')
    return record.get("size") == info.size and bool(recorded) and etag == recorded


def is_copy_of(manifest: Mapping[str, Any], info: ObjectInfo) -> bool:
    """Is `info` cosguard's copy of the bytes its (sealed) manifest names? The exact ETag where
    cosguard copied in one request; where the copy's ETag changed (a multipart upload's ETag is
    not its copy's; a copy over 5 GB is itself multipart; an appendable object's bytes are
    streamed), the CRC64 COS keeps for the content (doc 436/40334), exactly. Any other bytes,
    whatever their size or ETag's form, are not cosguard's and are scanned.

    CRC64 is a checksum, not a seal: bytes crafted to the same size and CRC64 pass it. What is
    recognised has cosguard's status tags re-applied (own_writes.py), so such a plant is
    tagged as the quarantined original was, never left with an uploader's `clean`."""
    if same_bytes(manifest, info):
        return True
    recorded = str(manifest.get("crc64") or "")
    return manifest.get("size") == info.size and bool(recorded) and info.crc64 == recorded


def quarantined_status(manifest: Mapping[str, Any]) -> ScanStatus:
    """The status a quarantined copy is tagged with, from its sealed manifest: recorded since this
    release; before, a job that found a virus (`infected`), a failed one (`error`), or none
    (`unscannable`), as the three callers of Actions.quarantine wrote it."""
    try:
        return ScanStatus(str(manifest.get("status")))
    except ValueError:
        pass
    if not manifest.get("job_id"):
        return ScanStatus.UNSCANNABLE
    return ScanStatus.INFECTED if manifest.get("reason") == "infected" else ScanStatus.ERROR


def copy_record(copy: ObjectInfo) -> Dict[str, Any]:
    """What the ledger keeps about a quarantined copy: where, and which bytes (restore checks)."""
    return {"bucket": copy.bucket, "key": copy.key, "version_id": copy.version_id,
            "etag": copy.etag.strip('"'), "size": copy.size}


def quarantine_record(manifest: Dict[str, Any], info: ObjectInfo, copy: ObjectInfo) -> Dict[str, Any]:
    """The ledger's record of a quarantine: where the copy is, and the uploader's metadata it lacks."""
    dropped = dropped_metadata(info, copy)
    return dict(manifest, quarantined=copy_record(copy), **({"metadata_dropped": dropped} if dropped else {}))


def write_segment(info: ObjectInfo, job_id: Optional[str]) -> str:
    """What distinguishes this write in its quarantine key: the job, else the version, else a
    digest of the ETag (same bytes, same evidence)."""
    if job_id:
        return job_id
    if info.version_id:
        return "v-" + info.version_id
    return "e-" + hashlib.sha256(info.etag.strip('"').encode("utf-8")).hexdigest()[:20]


def quarantined_copies(gateway: Gateway, settings: Settings, source_bucket: str, key: str):
    """Quarantine keys holding copies of `source_bucket`/`key`, newest layout first, then the
    layout older deployments used (`<prefix><key>`). One listing, plus one HEAD for the old one."""
    bucket = settings.quarantine_bucket_for(source_bucket)
    base = f"{settings.quarantine_prefix}{source_bucket}/"
    names = (key, digest_name(key))  # a copy whose key would pass 850 bytes ends in a digest
    found = [str(item["Key"]) for item in gateway.list(bucket, prefix=base)
             if str(item["Key"])[len(base):].partition("/")[2] in names]
    old = settings.quarantine_prefix + key
    if key_bytes(old) > MAX_KEY_BYTES:  # cannot exist in COS: no HEAD
        return bucket, found
    try:
        gateway.head(bucket, old)
        found.append(old)
    except NotFoundError:
        pass
    return bucket, found


class Actions:
    """The object operations behind every verdict, shared by callback, sweep, backfill and CLI."""

    def __init__(self, settings: Settings, gateway: Gateway, sealer: Optional[Sealer] = None):
        self.settings = settings
        self.gateway = gateway
        self.sealer = sealer or sealer_for(settings)

    def tag(self, info: ObjectInfo, status: ScanStatus, job_id: Optional[str] = None,
            existing: Optional[Mapping[str, str]] = None, make_room: bool = False) -> bool:
        """Merge cosguard's tags into the object's; False when the status did not fit (COS's 10-tag
        limit: the caller decides what to do instead). `make_room`: one user tag may give way (tags.py)."""
        if existing is None:
            existing = self.gateway.get_tags(info.bucket, info.key, info.version_id) if info.tag_count else {}
        merged, fitted = merge(existing, status, job_id, make_room)
        if merged != dict(existing):
            self.gateway.put_tags(info.bucket, info.key, merged, info.version_id)
        return fitted

    def quarantine_location(self, info: ObjectInfo, job_id: Optional[str]) -> Tuple[str, str]:
        base = f"{self.settings.quarantine_prefix}{info.bucket}/{write_segment(info, job_id)}/"
        return self.settings.quarantine_bucket_for(info.bucket), fitting_key(base, info.key)

    def quarantine(self, info: ObjectInfo, manifest: Mapping[str, Any],
                   status: ScanStatus = ScanStatus.INFECTED) -> ObjectInfo:
        """Copy the scanned version to quarantine with its sealed manifest (next to the user's
        metadata), tag it, then delete the original; returns the copy. QuarantineError (original
        untouched) if the copy fails."""
        bucket, key = self.quarantine_location(info, manifest.get("job_id"))
        manifest = dict(manifest, status=status.value)   # the tags a recognised copy has re-applied
        return self._relocate(info, bucket, key, status, manifest.get("job_id"), {},
                              self._quarantine_metadata(info, manifest, bucket, key))

    def _quarantine_metadata(self, info: ObjectInfo, manifest: Mapping[str, Any], bucket: str,
                             key: str) -> Dict[str, str]:
        """The sealed manifest, and as much of the user's metadata as fits beside it in COS's 2 KB;
        the manifest names what was dropped. (Naming more can only drop more: a few rounds.)"""
        user = user_metadata(info)
        dropped: List[str] = []
        while True:
            doc = dict(manifest, metadata_dropped=dropped) if dropped else manifest
            encoded = encode_manifest(doc, lambda d: self.sealer.seal_manifest(bucket, key, d))
            fitted, more = fit_beside({MANIFEST_META: encoded}, user)
            grown = sorted(set(dropped) | set(more))  # never shrinks, so the loop ends
            if grown == dropped:
                return {name: value for name, value in fitted.items() if name not in dropped}
            dropped = grown

    def delete(self, info: ObjectInfo) -> None:
        self._delete_original(info)

    def promote(self, info: ObjectInfo, job_id: str, tags: Mapping[str, str]) -> ObjectInfo:
        """Fail-closed mode: copy a clean object to the destination with its tags and a sealed
        promotion marker (seal.py), tag it clean, remove the intake copy. The marker is how the copy's
        own Copy event, and backfill, know it for cosguard's: anything under the destination
        without one is scanned like an upload."""
        destination = self.settings.clean_destination
        assert destination is not None
        bucket, key = destination.for_source(info.bucket), fitting_key(destination.prefix, info.key)
        marker = {PROMOTED_META: self.sealer.promotion_marker(bucket, key, info.etag, info.crc64)}
        metadata, _ = fit_beside(marker, user_metadata(info))  # the marker first, within COS's 2 KB
        ledger = Ledger(self.gateway, self.settings.state_bucket_for(info.bucket), self.settings.state_prefix,
                        self.sealer)
        # one promotion at a time to this key, and never an older write over a newer one's copy:
        # PromotionBusy, StaleObjectError or SupersededWrite before anything is copied (promotions.py)
        with PromotionLock(self.gateway, ledger, info, bucket, key).hold() as lock:
            lock.admit()
            try:
                copy = self._relocate(info, bucket, key, ScanStatus.CLEAN, job_id, tags, metadata)
            except StaleObjectError as stale:   # taken back while no other promotion can write there
                stale.withdrawn = withdraw_promotion(self.gateway, self.sealer, stale)  # type: ignore[attr-defined]
                stale.copy = None  # type: ignore[attr-defined]
                raise
            if copy.etag.strip('"') != info.etag.strip('"'):
                self._rebind_promotion(copy, job_id, tags, metadata)
        return copy

    def _rebind_promotion(self, copy: ObjectInfo, job_id: str, tags: Mapping[str, str],
                          metadata: Mapping[str, str]) -> None:
        """A copy of a multipart upload has a new ETag (the MD5 of its bytes), which the marker could
        not name in advance: seal it again for the copy's own ETag by an in-place copy (which keeps
        it), then tag it again. Best effort: if this fails, the copy's own event scans it once."""
        rebound = dict(metadata, **{PROMOTED_META: self.sealer.promotion_marker(copy.bucket, copy.key, copy.etag,
                                                                                copy.crc64)})
        try:
            self.tag(self.gateway.copy(copy, copy.bucket, copy.key, metadata=rebound), ScanStatus.CLEAN, job_id,
                     existing=tags)
        except CloudError as exc:  # PreconditionFailed too: overwritten since, the new write has its own scan
            event(log, "promoted_copy_not_sealed", logging.WARNING, bucket=copy.bucket, key=copy.key,
                  reason=f"{exc}; its own event scans it once")

    def _relocate(self, info: ObjectInfo, bucket: str, key: str, status: ScanStatus, job_id: Optional[str],
                  tags: Mapping[str, str], metadata: Optional[Mapping[str, str]] = None) -> ObjectInfo:
        """Server-side copy, tag the copy, then delete the original: a failed copy deletes nothing.
        CopyRefused when COS refuses the copy for good (a 4xx other than a failed precondition)."""
        try:
            copied = self._copy(info, bucket, key, metadata)
        except PreconditionFailed as exc:  # CopySourceIfMatch: overwritten since it was scanned
            raise StaleObjectError(f"{info.bucket}/{info.key} changed before it could be moved") from exc
        except CloudError as exc:
            message = f"copy to {bucket}/{key} failed, original kept: {exc}"
            raise (QuarantineError(message) if exc.retryable else CopyRefused(message, exc)) from exc
        try:
            self.tag(copied, status, job_id, existing=tags)
        except CloudError as exc:
            raise QuarantineError(f"copy to {bucket}/{key} failed, original kept: {exc}") from exc
        try:
            self._delete_original(info)
        except StaleObjectError as exc:
            exc.copy = copied  # type: ignore[attr-defined]  # the caller decides whether it stays
            raise
        return copied

    def _copy(self, info: ObjectInfo, bucket: str, key: str,
              metadata: Optional[Mapping[str, str]]) -> ObjectInfo:
        """A server-side copy, or for an appendable object (HEAD's `x-cos-object-type`), which COS
        refuses to copy, GET -> PUT through the function with bounded memory (exactly the scanned
        bytes: every read is If-Match the scanned ETag)."""
        if info.object_type == APPENDABLE:
            return self.gateway.stream_copy(info, bucket, key, metadata=metadata)
        return self.gateway.copy(info, bucket, key, metadata=metadata)

    def deletes_instead_of_moving(self, info: ObjectInfo) -> bool:
        """COSGUARD_APPENDABLE_ACTION=delete: an infected appendable object is deleted (and
        notified) rather than streamed into quarantine."""
        return info.object_type == APPENDABLE and self.settings.appendable_action == "delete"

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
