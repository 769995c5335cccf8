"""Seals: how cosguard recognises what it wrote itself where uploaders may write too.

Ledger documents, quarantine manifests, release markers and callback tokens all carry an
HMAC-SHA256 under a key derived from COSGUARD_CALLBACK_TOKEN (`Settings.seal_key`). Every seal
names *where* the sealed thing lives (bucket and key), so a genuine document copied to another
key, or a manifest copied onto other bytes at another key, does not verify. Sealing is local
computation: it adds no COS request.

Rotation (docs/rotation.md): every seal names its key, `<key id>.<hex MAC>`, where the key id is a
short digest of the derived key (never the secret). What is written is sealed under the current
key; what is read verifies under the current key or one of COSGUARD_CALLBACK_TOKEN_PREVIOUS's, so
documents, manifests, markers and callback URLs issued before a rotation stay valid during the
window, and are sealed anew when next written (or by `cosguard reseal`). A seal without a key id
(written before key ids existed, format v1) is tried under each of those keys. A key id of no key
in the set, or a MAC that is not that key's, verifies nothing: such a document is a forgery.

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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..infra.logs import event, get_logger

log = get_logger("cosguard.domain.seal")

SEAL_FIELD = "_seal"
PROMOTED_META = "cosguard-promoted"  # user metadata of a promoted copy (x-cos-meta-cosguard-promoted)
MAX_REMEMBERED = 1000  # rejections kept for the next report (a long-lived instance stays bounded)
KEY_ID_SEPARATOR = "."  # `<key id>.<hex MAC>`: neither part contains it, and URLs need no escaping


def key_id(key: bytes) -> str:
    """What a seal names its key by: 8 hex digits of a digest of the derived key (not the secret,
    which never leaves Settings), enough to pick one of a handful of keys."""
    return hmac.new(key, b"cosguard-seal-key-id", hashlib.sha256).hexdigest()[:8]


def canonical(document: Mapping[str, Any]) -> str:
    """One spelling per document: what the seal covers (floats round-trip exactly in JSON)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Sealer:
    """Seals and checks cosguard's own documents; records the forgeries it meets."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()):
        self._key = key
        self.key_id = key_id(key)
        # every key a seal may verify under: the current one first, then the rotation window's
        self._keys: Tuple[Tuple[str, bytes], ...] = tuple((key_id(k), k) for k in (key, *previous))
        self._lock = threading.Lock()
        self.rejected: List[str] = []  # where unauthenticated documents were found

    @staticmethod
    def _mac(key: bytes, kind: str, parts: Sequence[str]) -> str:
        message = json.dumps([kind, *parts], ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def mac(self, kind: str, *parts: str) -> str:
        """`<key id>.<HMAC>` under the current key, over `kind` and `parts` (a JSON array, so
        length-unambiguous)."""
        return f"{self.key_id}{KEY_ID_SEPARATOR}{self._mac(self._key, kind, parts)}"

    def verify(self, presented: Any, kind: str, *parts: str) -> Optional[str]:
        """The id of the key under which `presented` is the MAC of `kind` and `parts`, else None."""
        given = presented if isinstance(presented, str) else ""
        named, separator, mac = given.rpartition(KEY_ID_SEPARATOR)
        if not separator:   # no key id (format v1): any key of the window
            return self._check(None, given, kind, parts)
        return self._check(named, mac, kind, parts)

    def short_mac(self, kind: str, *parts: str, chars: int) -> str:
        """`<key id>-<first chars of the HMAC>`: a seal short enough for an object's key name (the
        history index), naming its key like every other seal."""
        return f"{self.key_id}-{self._mac(self._key, kind, parts)[:chars]}"

    def verify_short(self, presented: Any, kind: str, *parts: str, chars: int) -> Optional[str]:
        """The id of the window's key whose `short_mac` `presented` is, else None."""
        named, _, mac = (presented if isinstance(presented, str) else "").partition("-")
        return self._check(named, mac, kind, parts, chars)

    def _check(self, named: Optional[str], mac: str, kind: str, parts: Sequence[str],
               chars: Optional[int] = None) -> Optional[str]:
        """The id of the key `named` (None: any key of the window) whose MAC of `kind` and `parts`,
        cut to `chars`, is `mac`. Constant-time comparisons; a MAC is computed for every candidate
        key, and at least one, whatever is presented (an unknown key id costs a MAC too)."""
        candidates = list(self._keys) if named is None else [(kid, key) for kid, key in self._keys if kid == named]
        found = None
        for kid, key in candidates or [("", self._key)]:
            expected = self._mac(key, kind, parts)[:chars].encode("ascii")
            if hmac.compare_digest(expected, mac.encode("utf-8", "replace")) and kid and found is None:
                found = kid
        return found

    def matches(self, presented: Any, kind: str, *parts: str) -> bool:
        """Whether `presented` is a MAC of `kind` and `parts` under any key of the window."""
        return self.verify(presented, kind, *parts) is not None

    def is_current(self, presented: Any) -> bool:
        """Whether a seal names the current key (one that verifies and does not is due a reseal)."""
        return isinstance(presented, str) and presented.startswith(self.key_id + KEY_ID_SEPARATOR)

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
        event(log, "unauthenticated_document_ignored", logging.WARNING, bucket=bucket, key=key, what=what,
              reason=problem or "no valid cosguard seal: written by someone else, or sealed under a "
                                "COSGUARD_CALLBACK_TOKEN that is neither current nor in "
                                "COSGUARD_CALLBACK_TOKEN_PREVIOUS")

    def take_rejected(self) -> List[str]:
        """The locations reported since the last call (sweep and status reports)."""
        with self._lock:
            taken, self.rejected = self.rejected, []
        return taken


def sealer_for(settings: Any) -> Sealer:
    """The deployment's sealer, keyed by Settings (the single configuration source): the current
    key, and the previous ones that still verify during a rotation."""
    return Sealer(settings.seal_key, settings.previous_seal_keys)


__all__ = ["Sealer", "SEAL_FIELD", "PROMOTED_META", "canonical", "key_id", "sealer_for"]
