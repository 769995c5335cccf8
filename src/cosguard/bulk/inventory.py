"""A COS inventory report (清单, doc 436/33702) as the backfill's and rescan's listing: the
deploy's inventory configuration, the pages the CLI reads in one process, and its errors. How a
report is read (manifest and checksum, streamed CSV(.gz) files, positions, key encodings, and why a
row is never a verdict) is domain/inventory_report.py's, which fanned-out invocations share.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List

from ..domain.inventory_report import (  # noqa: F401 - the command line's names for them
    MAX_MANIFEST_BYTES,
    REQUIRED,
    DataFile,
    Manifest,
    ReportError,
    RowReader,
    _epoch,
    keys_of,
    listed_identity,
    split_location,
)
from ..domain.inventory_report import read_manifest as _read_manifest
from ..infra.gateway import Gateway
from .checkpoint import BackfillError
from .listing import Entry, Page

INVENTORY_ID = "cosguard"   # the deploy's configuration (DEPLOY_INVENTORY_BUCKET)
REPORT_PREFIX = "cosguard-inventory"


def configuration(destination: str, region: str, frequency: str = "Weekly") -> Dict[str, Any]:
    """The inventory the deploy writes (cos-python-sdk-v5 `put_bucket_inventory`'s dict; doc
    436/30625): current versions only, CSV, the fields a backfill needs (Size, LastModifiedDate,
    ETag) and StorageClass (an archived object is unscannable), into <destination>/cosguard-inventory/."""
    return {"Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:{region}::{destination}",
                                                     "Format": "CSV", "Prefix": REPORT_PREFIX}},
            "IsEnabled": "true", "IncludedObjectVersions": "Current", "Schedule": {"Frequency": frequency},
            "OptionalFields": {"Field": ["Size", "LastModifiedDate", "ETag", "StorageClass"]}}


def apply_inventory(gateway: Gateway, buckets: List[str], destination: str, region: str) -> List[str]:
    """Write cosguard's inventory configuration on each bucket (a PUT replaces the one of that id
    only: a bucket's other inventories stay); the buckets done."""
    for bucket in buckets:
        gateway.put_inventory(bucket, INVENTORY_ID, configuration(destination, region))
    return list(buckets)


class InventoryError(BackfillError, ReportError):
    """A report that cannot be used: missing, not COS's format, or a file that fails its checksum."""


def read_manifest(gateway: Gateway, location: str, source_bucket: str) -> Manifest:
    """domain/inventory_report.py's, its refusal a BackfillError (the command line's exit 2)."""
    try:
        return _read_manifest(gateway, location, source_bucket)
    except InventoryError:
        raise
    except ReportError as exc:
        raise InventoryError(str(exc)) from exc


class Rows(RowReader):
    """The report's objects from a position on, in pages; `malformed` counts rows that were skipped
    because they do not have the schema's columns (reported as errors by the backfill)."""

    def pages(self, start: Dict[str, str], page_size: int) -> Iterator[Page]:
        first_file, skip = int(start.get("file") or 0), int(start.get("row") or 0)
        for index in range(first_file, len(self.manifest.files)):
            entries: List[Entry] = []
            row = skip if index == first_file else 0
            for row, entry in self.file(index, row):
                if entry is not None:
                    entries.append(entry)
                if len(entries) >= page_size:
                    yield Page(entries, {"file": str(index), "row": str(row)})
                    entries = []
            yield Page(entries, {"file": str(index + 1), "row": "0"})
