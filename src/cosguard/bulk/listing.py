"""The backfill's view of a bucket: one listing page at a time, each object as an `Entry`.

Versioned buckets: a claim is keyed by version id, which `ListObjects` does not return, so there the
listing is of object *versions* (`GET /?versions`, 1,000 a page), keeping the latest version of each
key: still one request per page, never one per object. Each page carries the marker the listing
continues from, which is what a checkpoint stores.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Dict, Iterator, List

from ..domain.inventory_report import Entry
from ..infra.gateway import Gateway


@dataclass
class Page:
    entries: List[Entry]
    marker: Dict[str, str]   # where the listing continues after this page


def pages(gateway: Gateway, bucket: str, prefix: str, page_size: int, start: Dict[str, str],
          versioned: bool) -> Iterator[Page]:
    """The listing from `start` (a page's marker, or {} for the beginning), one page at a time."""
    if versioned:
        return _version_pages(gateway, bucket, prefix, page_size, start)
    return _object_pages(gateway, bucket, prefix, page_size, start)


def _object_pages(gateway: Gateway, bucket: str, prefix: str, page_size: int,
                  start: Dict[str, str]) -> Iterator[Page]:
    """ListObjects, one page at a time (islice stops the gateway's generator at the page end)."""
    marker = start.get("key", "")
    while True:
        items = list(islice(gateway.list(bucket, prefix, marker, page_size), page_size))
        if not items:
            return
        entries = [Entry.listed(item) for item in items]
        marker = entries[-1].key
        yield Page(entries, {"key": marker})
        if len(items) < page_size:
            return


def _version_pages(gateway: Gateway, bucket: str, prefix: str, page_size: int,
                   start: Dict[str, str]) -> Iterator[Page]:
    """ListObjectVersions: the latest version of each key (delete markers hide a key)."""
    key_marker, version_marker = start.get("key", ""), start.get("version", "")
    while True:
        page = gateway.list_versions_page(bucket, prefix, key_marker, version_marker, page_size)
        versions = page.get("Version") or []
        versions = versions if isinstance(versions, list) else [versions]
        # "null": written while versioning was off or suspended; its claim is keyed by ETag.
        entries = [Entry.listed(v, None if str(v.get("VersionId") or "null") == "null" else str(v["VersionId"]))
                   for v in versions if str(v.get("IsLatest", "")).lower() == "true"]
        truncated = str(page.get("IsTruncated", "false")).lower() == "true"
        if truncated:
            key_marker = str(page.get("NextKeyMarker") or "")
            version_marker = str(page.get("NextVersionIdMarker") or "")
        elif versions:
            key_marker, version_marker = str(versions[-1]["Key"]), str(versions[-1].get("VersionId") or "")
        yield Page(entries, {"key": key_marker, "version": version_marker})
        if not truncated or not key_marker:
            return
