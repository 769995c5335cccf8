"""A COS inventory report (清单, doc 436/33702) as the backfill's listing, streamed.

`--inventory <bucket>/<key of manifest.json>` names a report. The manifest (checked against
`manifest.checksum`, its MD5) lists the CSV data files and their columns (`fileSchema`); each file is
read as it downloads (gzip-decoded on the fly, its MD5 checked at its end), one CSV record at a
time, so memory does not grow with the report. A position is (file index, records read in it): what
a checkpoint stores, and a resumed run skips that many records of that file without acting on them.

Keys in the CSV are URL-encoded (doc 436/33702). Which URL encoding (space as `+` or `%20`) is not
documented, so a key whose two decodings differ is tried under both (HEAD tells which exists, and
a spelling that exists but is another object is only scanned, never skipped). A row is never a
verdict: the identity it shows (ETag, Last-Modified, version) only picks the ledger record a worker
reads; what is scanned is what HEAD finds.
"""
from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import unquote, unquote_plus

from ..errors import CloudError, NotFoundError
from ..infra.cloud import http_epoch
from ..infra.gateway import Gateway
from .checkpoint import BackfillError
from .listing import Entry, Page

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
REQUIRED = ("Key", "Size", "LastModifiedDate", "ETag")
csv.field_size_limit(1024 * 1024)   # a key is at most 850 bytes (doc 436/13324): any field past 1 MiB is not one


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


class InventoryError(BackfillError):
    """A report that cannot be used: missing, not COS's format, or a file that fails its checksum."""


@dataclass(frozen=True)
class DataFile:
    key: str
    size: int
    md5: str


@dataclass
class Manifest:
    bucket: str            # where the report is
    key: str               # its manifest.json
    source_bucket: str     # <name>-<appid> the report lists
    schema: List[str]
    files: List[DataFile]
    object_count: Optional[int] = None

    @property
    def location(self) -> str:
        return f"{self.bucket}/{self.key}"

    @property
    def versioned(self) -> bool:
        return "VersionId" in self.schema


def split_location(location: str) -> Tuple[str, str]:
    bucket, _, key = location.strip().lstrip("/").partition("/")
    if not bucket or not key.endswith("manifest.json"):
        raise InventoryError(f"--inventory {location!r}: give <bucket>/<path>/manifest.json")
    return bucket, key


def _read_all(gateway: Gateway, bucket: str, key: str, limit: int) -> bytes:
    try:
        stream = gateway.open_stream(bucket, key)
        data = stream.read(limit + 1)
    except NotFoundError as exc:
        raise InventoryError(f"inventory: {bucket}/{key} does not exist") from exc
    except CloudError as exc:
        raise InventoryError(f"inventory: cannot read {bucket}/{key}: {exc}") from exc
    if len(data) > limit:
        raise InventoryError(f"inventory: {bucket}/{key} is larger than {limit} bytes")
    return bytes(data)


def read_manifest(gateway: Gateway, location: str, source_bucket: str) -> Manifest:
    bucket, key = split_location(location)
    raw = _read_all(gateway, bucket, key, MAX_MANIFEST_BYTES)
    checksum = _read_all(gateway, bucket, key[:-len("manifest.json")] + "manifest.checksum", 1024)
    if checksum.decode("ascii", "replace").strip().lower() != hashlib.md5(raw).hexdigest():
        raise InventoryError(f"inventory: {location} does not match its manifest.checksum")
    try:
        doc = json.loads(raw.decode("utf-8"))
        schema = [c.strip() for c in str(doc["fileSchema"]).split(",")]
        files = [DataFile(str(f["key"]), int(f.get("size") or 0), str(f.get("MD5checksum") or "").lower())
                 for f in doc["files"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError(f"inventory: {location} is not a COS inventory manifest ({exc})") from exc
    if str(doc.get("fileFormat", "CSV")).upper() != "CSV":
        raise InventoryError(f"inventory: {location} is {doc.get('fileFormat')}, only CSV is read")
    missing = [c for c in REQUIRED if c not in schema]
    if missing:
        raise InventoryError(f"inventory: {location} lacks the columns {', '.join(missing)} "
                             "(OptionalFields Size, LastModifiedDate and ETag are needed)")
    source = str(doc.get("sourceBucket") or "")
    appid = str(doc.get("sourceAppid") or "")
    listed = source if source.endswith(f"-{appid}") or not appid else f"{source}-{appid}"
    if listed != source_bucket:
        raise InventoryError(f"inventory: {location} lists {listed}, not {source_bucket}")
    count = doc.get("listObjectCount")
    return Manifest(bucket, key, listed, schema, files, int(count) if isinstance(count, (int, str))
                    and str(count).isdigit() else None)


class _Hashing(io.RawIOBase):
    """A read-through MD5 of the bytes the stream delivered (gzip reads the compressed bytes here)."""

    def __init__(self, stream: Any):
        self.stream, self.md5, self.size = stream, hashlib.md5(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.md5.update(data)
        self.size += n
        return n


def _epoch(value: str) -> int:
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp())
    except ValueError:
        return http_epoch(text)


def keys_of(encoded: str, raw: bool = False) -> Tuple[str, ...]:
    """The key a URL-encoded CSV field names: its form decoding first, then the percent one when it
    differs (a `+` is a space in one and itself in the other). `raw`: the field is the key."""
    if raw:
        return (encoded,)
    first, second = unquote_plus(encoded), unquote(encoded)
    return (first,) if first == second else (first, second)


def listed_identity(entry: Entry) -> Optional[str]:
    """The identity a worker checks the ledger with, for a row whose key is unambiguous only: with
    two spellings, the record read could be another object's with the same ETag@Last-Modified,
    and a `duplicate` from it would skip this one. Those take the full path (HEAD decides)."""
    return None if entry.alternates else entry.token


class Rows:
    """The report's objects from a position on, in pages; `malformed` counts rows that were skipped
    because they do not have the schema's columns (reported as errors by the backfill)."""

    def __init__(self, gateway: Gateway, manifest: Manifest, prefix: str = "", raw_keys: bool = False):
        self.gateway, self.manifest, self.prefix, self.raw_keys = gateway, manifest, prefix, raw_keys
        self.column = {name: i for i, name in enumerate(manifest.schema)}
        self.malformed: List[Dict[str, str]] = []

    def take_malformed(self) -> List[Dict[str, str]]:
        bad, self.malformed = self.malformed, []
        return bad

    def pages(self, start: Dict[str, str], page_size: int) -> Iterator[Page]:
        first_file, skip = int(start.get("file") or 0), int(start.get("row") or 0)
        for index in range(first_file, len(self.manifest.files)):
            entries: List[Entry] = []
            row = skip if index == first_file else 0
            for row, entry in self._file(index, row):
                if entry is not None:
                    entries.append(entry)
                if len(entries) >= page_size:
                    yield Page(entries, {"file": str(index), "row": str(row)})
                    entries = []
            yield Page(entries, {"file": str(index + 1), "row": "0"})

    def _file(self, index: int, skip: int) -> Iterator[Tuple[int, Optional[Entry]]]:
        """(records read so far, the entry or None) per CSV record of file `index`, after `skip`."""
        data = self.manifest.files[index]
        try:
            raw = self.gateway.open_stream(self.manifest.bucket, data.key)
        except NotFoundError as exc:
            raise InventoryError(f"inventory: data file {data.key} does not exist") from exc
        hashing = _Hashing(raw)
        binary: Any = io.BufferedReader(hashing, 64 * 1024)
        if data.key.endswith(".gz"):
            binary = gzip.GzipFile(fileobj=binary, mode="rb")
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        row = 0
        try:
            for record in csv.reader(text, strict=True):
                row += 1
                if row > skip:
                    yield row, self._entry(data.key, row, record)
            while hashing.readinto(bytearray(64 * 1024)):   # the rest (gzip's trailer) for the MD5
                pass
        except InventoryError:
            raise
        except Exception as exc:   # csv.Error, UnicodeDecodeError, gzip's OSError/EOFError, a broken download
            raise InventoryError(f"inventory: {data.key} record {row + 1}: {exc}") from exc
        if data.md5 and hashing.md5.hexdigest() != data.md5:
            raise InventoryError(f"inventory: {data.key} does not match the manifest's MD5checksum")

    def _entry(self, file_key: str, row: int, record: List[str]) -> Optional[Entry]:
        c = self.column
        if len(record) != len(self.manifest.schema):
            self.malformed.append({"key": f"{file_key} record {row}",
                                   "reason": f"{len(record)} columns, the schema has {len(c)}"})
            return None
        if "IsDeleteMarker" in c and record[c["IsDeleteMarker"]].lower() == "true":
            return None
        if "IsLatest" in c and record[c["IsLatest"]].lower() == "false":
            return None
        keys = keys_of(record[c["Key"]], self.raw_keys)
        if not keys[0].startswith(self.prefix) and not any(k.startswith(self.prefix) for k in keys[1:]):
            return None
        try:
            size = int(record[c["Size"]] or 0)
            modified = _epoch(record[c["LastModifiedDate"]])
        except ValueError:
            self.malformed.append({"key": f"{file_key} record {row}", "reason": "Size or LastModifiedDate unreadable"})
            return None
        version = record[c["VersionId"]] if "VersionId" in c else ""
        storage = record[c["StorageClass"]] if "StorageClass" in c else "STANDARD"
        return Entry(keys[0], size, record[c["ETag"]].strip('"'), (storage or "STANDARD").upper(),
                     version if version and version != "null" else None, modified, alternates=keys[1:])
