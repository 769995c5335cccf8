"""Which objects cosguard scans, skips, or records as unscannable: the same rules for every caller
(upload trigger, backfill, reconcile)."""
from __future__ import annotations

import posixpath
from typing import Optional

from ..infra.cloud import ObjectInfo
from ..infra.config import SUPPORTED_EXTENSIONS, Settings
from .seal import Sealer
from .security import is_released

ARCHIVE_CLASSES = frozenset({"ARCHIVE", "DEEP_ARCHIVE"})


def skip_reason(settings: Settings, bucket: str, key: str) -> Optional[str]:
    """Why `key` is not scanned at all, judged from its name alone (no request needed).

    A `/`-suffixed key is not skipped here: only a zero-byte one is a folder marker (see
    `skip_reason_for_object`); one with content is an object like any other. The quarantine and
    ledger prefixes and the clean destination are not among the reasons either: what an uploader
    puts there is scanned; cosguard's own writes are recognised by their seal (own_writes.py)."""
    if settings.include_prefixes and not any(key.startswith(p) for p in settings.include_prefixes):
        return "outside the included prefixes"
    if any(key.startswith(p) for p in settings.exclude_prefixes):
        return "excluded prefix"
    lower = key.lower()
    if settings.include_suffixes and not any(lower.endswith(s) for s in settings.include_suffixes):
        return "outside the included suffixes"
    if any(lower.endswith(s) for s in settings.exclude_suffixes):
        return "excluded suffix"
    return None


def in_clean_destination(settings: Settings, bucket: str, key: str) -> bool:
    """Whether bucket/key lies in the fail-closed destination (where a clean verdict tags in place)."""
    destination = settings.clean_destination
    return destination is not None and bucket == destination.for_source(bucket) \
        and key.startswith(destination.prefix)


def skip_reason_for_object(settings: Settings, info: ObjectInfo, sealer: Sealer) -> Optional[str]:
    """Why an object is not scanned, judged from HEAD."""
    if info.size == 0 and info.key.endswith("/"):
        return "folder marker"
    if info.size == 0 and settings.skip_empty:
        return "empty object"
    if is_released(sealer, info.bucket, info.key, info.etag, info.metadata):
        return "released from quarantine by a human decision"
    return None


def unscannable_reason(settings: Settings, info: ObjectInfo) -> Optional[str]:
    """Why CI cannot scan this object; such an object is recorded, never silently passed."""
    if info.size >= settings.max_size:
        return f"too_large: {info.size} bytes, CI scans objects under {settings.max_size}"
    if info.storage_class in ARCHIVE_CLASSES:
        return f"archived: storage class {info.storage_class} must be restored before scanning"
    if settings.require_supported_format:
        extension = posixpath.splitext(info.key)[1].lower().lstrip(".")
        if extension not in SUPPORTED_EXTENSIONS:
            return f"unsupported_format: .{extension or '(none)'} is not in CI's supported list"
    return None
