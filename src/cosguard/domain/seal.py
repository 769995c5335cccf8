"""Seals: how cosguard recognises what it wrote itself where uploaders may write too.

Ledger documents, quarantine manifests, release markers and callback tokens all carry an
HMAC-SHA256 under one key derived from COSGUARD_CALLBACK_TOKEN (`Settings.seal_key`). Every seal
names *where* the sealed thing lives (bucket and key), so a genuine document copied to another
key, or a manifest copied onto other bytes at another key, does not verify. Sealing is local
computation: it adds no COS request.

A document that does not verify is treated as absent and reported (WARNING log + a count), never
believed: an uploader who can PUT under the ledger or quarantine prefix can write bytes there,
but not a seal.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from typing import Any, Dict, List, Mapping, Optional

from ..infra.logs import event, get_logger

log = get_logger("cosguard.domain.seal")

SEAL_FIELD = "_seal"
PROMOTED_META = "cosguard-promoted"  # user metadata of a promoted copy (x-cos-meta-cosguard-promoted)
MAX_REMEMBERED = 1000  # rejections kept for the next report (a long-lived instance stays bounded)


def canonical(document: Mapping[str, Any]) -> str:
    """One spelling per document: what the seal covers (floats round-trip exactly in JSON)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Sealer:
    """Seals and checks cosguard's own documents; records the forgeries it meets."""

    def __init__(self, key: bytes):
        self._key = key
        self._lock = threading.Lock()
        self.rejected: List[str] = []  # where unauthenticated documents were found

    def mac(self, kind: str, *parts: str) -> str:
        """HMAC over `kind` and `parts`, length-unambiguous (JSON array), hex."""
        message = json.dumps([kind, *parts], ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, presented: Any, kind: str, *parts: str) -> bool:
        """Constant-time comparison of a presented MAC with the expected one."""
        expected = self.mac(kind, *parts).encode("ascii")
        given = presented.encode("utf-8", "replace") if isinstance(presented, str) else b""
        return hmac.compare_digest(expected, given)

    # -- JSON documents (the ledger) ------------------------------------------------------------
    def seal(self, bucket: str, key: str, document: Mapping[str, Any]) -> Dict[str, Any]:
        body = {k: v for k, v in document.items() if k != SEAL_FIELD}
        return dict(body, **{SEAL_FIELD: self.mac("document", bucket, key, canonical(body))})

    def open(self, bucket: str, key: str, document: Any) -> Optional[Dict[str, Any]]:
        """The document without its seal when the seal verifies for this location; else None
        (and the forgery is reported)."""
        if isinstance(document, dict):
            body = {k: v for k, v in document.items() if k != SEAL_FIELD}
            if self.matches(document.get(SEAL_FIELD), "document", bucket, key, canonical(body)):
                return body
        self.reject(bucket, key, "ledger document")
        return None

    # -- quarantine manifests -------------------------------------------------------------------
    def seal_manifest(self, bucket: str, key: str, manifest: Mapping[str, Any]) -> Dict[str, Any]:
        """A manifest sealed for the quarantined copy at bucket/key."""
        body = {k: v for k, v in manifest.items() if k != SEAL_FIELD}
        return dict(body, **{SEAL_FIELD: self.mac("manifest", bucket, key, canonical(body))})

    def open_manifest(self, bucket: str, key: str, manifest: Any, report: bool = True) -> Optional[Dict[str, Any]]:
        if isinstance(manifest, dict):
            body = {k: v for k, v in manifest.items() if k != SEAL_FIELD}
            if self.matches(manifest.get(SEAL_FIELD), "manifest", bucket, key, canonical(body)):
                return body
        if report:
            self.reject(bucket, key, "quarantine manifest")
        return None

    # -- release markers ------------------------------------------------------------------------
    def release_marker(self, bucket: str, key: str, etag: str) -> str:
        """Bound to the content (ETag): the header copied onto other bytes does not verify."""
        return self.mac("released", bucket, key, etag.strip('"'))

    # -- promoted copies (fail-closed mode) ---------------------------------------------------------
    def promotion_marker(self, bucket: str, key: str, etag: str, crc64: str) -> str:
        """What a promoted copy at bucket/key carries (PROMOTED_META): bound to its place and its
        bytes, by their ETag AND (where COS keeps one) their CRC64 (doc 436/40334), so neither other
        bytes at that key nor the header copied elsewhere verify. Both, not either: a CRC64 alone is
        easily matched by crafted bytes, and a recognised copy is tagged `clean`."""
        return self.mac("promoted", bucket, key, etag.strip('"'), *(["crc64:" + crc64] if crc64 else []))

    def is_promoted_copy(self, bucket: str, key: str, etag: str, metadata: Mapping[str, str],
                         crc64: str) -> bool:
        """Whether the object is a copy cosguard promoted after a clean verdict (never scanned again);
        anything else under the clean destination is an upload like any other. `crc64` is HEAD's:
        an object that has one verifies only a marker sealed with it."""
        presented = metadata.get(PROMOTED_META)
        return presented is not None and self.matches(
            presented, "promoted", bucket, key, etag.strip('"'), *(["crc64:" + crc64] if crc64 else []))

    # -- reporting ------------------------------------------------------------------------------
    def reject(self, bucket: str, key: str, what: str, problem: str = "") -> None:
        """An unauthenticated document is absent for cosguard; say so and count it. `problem` says
        why when it is not the seal (e.g. COS refused to read it)."""
        with self._lock:
            self.rejected.append(f"{bucket}/{key}")
            del self.rejected[:-MAX_REMEMBERED]
        event(log, "unauthenticated document ignored", logging.WARNING, bucket=bucket, key=key, what=what,
              reason=problem or "no valid cosguard seal: written by someone else, or sealed under another "
                                "COSGUARD_CALLBACK_TOKEN")

    def take_rejected(self) -> List[str]:
        """The locations reported since the last call (sweep and status reports)."""
        with self._lock:
            taken, self.rejected = self.rejected, []
        return taken


def sealer_for(settings: Any) -> Sealer:
    """The deployment's sealer, keyed by Settings (the single configuration source)."""
    return Sealer(settings.seal_key)


__all__ = ["Sealer", "SEAL_FIELD", "PROMOTED_META", "canonical", "sealer_for"]
