"""A COS inventory report (清单, doc 436/33702) read as a stream: what `cosguard backfill/rescan
--inventory` reads in one process (bulk/inventory.py) and what each fanned-out invocation reads of
its own data file (domain/inventory_slice.py).

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

from ..errors import CloudError, CosguardError, NotFoundError
from ..infra.cloud import http_epoch
from ..infra.gateway import Gateway
from .ledger import token_for

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
REQUIRED = ("Key", "Size", "LastModifiedDate", "ETag")
csv.field_size_limit(1024 * 1024)   # a key is at most 850 bytes (doc 436/13324): any field past 1 MiB is not one


@dataclass(frozen=True)
class Entry:
    """One listed object (the latest version of its key in a versioned bucket)."""

    key: str
    size: int
    etag: str
    storage_class: str = "STANDARD"
    version_id: Optional[str] = None
    last_modified: int = 0
    alternates: Tuple[str, ...] = ()   # other spellings of the key (an inventory's ambiguous URL decoding)

    @property
    def token(self) -> str:
        """What the ledger keys its claim by."""
        return token_for(self.version_id, self.etag, self.last_modified)

    @classmethod
    def listed(cls, item: Any, version_id: Optional[str] = None) -> "Entry":
        return cls(str(item["Key"]), int(item.get("Size") or 0), str(item.get("ETag") or ""),
                   str(item.get("StorageClass") or "STANDARD").upper(), version_id,
                   http_epoch(item.get("LastModified")))



class ReportError(CosguardError):
    """A report that cannot be used: missing, not COS's format, or a file that fails its checksum
    (bulk/inventory.py's ReportError is one too, for the command line)."""


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
        raise ReportError(f"--inventory {location!r}: give <bucket>/<path>/manifest.json")
    return bucket, key


def _read_all(gateway: Gateway, bucket: str, key: str, limit: int) -> bytes:
    try:
        stream = gateway.open_stream(bucket, key)
        data = stream.read(limit + 1)
    except NotFoundError as exc:
        raise ReportError(f"inventory: {bucket}/{key} does not exist") from exc
    except CloudError as exc:
        raise ReportError(f"inventory: cannot read {bucket}/{key}: {exc}") from exc
    if len(data) > limit:
        raise ReportError(f"inventory: {bucket}/{key} is larger than {limit} bytes")
    return bytes(data)


def read_manifest(gateway: Gateway, location: str, source_bucket: str) -> Manifest:
    bucket, key = split_location(location)
    raw = _read_all(gateway, bucket, key, MAX_MANIFEST_BYTES)
    checksum = _read_all(gateway, bucket, key[:-len("manifest.json")] + "manifest.checksum", 1024)
    if checksum.decode("ascii", "replace").strip().lower() != hashlib.md5(raw).hexdigest():
        raise ReportError(f"inventory: {location} does not match its manifest.checksum")
    try:
        doc = json.loads(raw.decode("utf-8"))
        schema = [c.strip() for c in str(doc["fileSchema"]).split(",")]
        files = [DataFile(str(f["key"]), int(f.get("size") or 0), str(f.get("MD5checksum") or "").lower())
                 for f in doc["files"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportError(f"inventory: {location} is not a COS inventory manifest ({exc})") from exc
    if str(doc.get("fileFormat", "CSV")).upper() != "CSV":
        raise ReportError(f"inventory: {location} is {doc.get('fileFormat')}, only CSV is read")
    missing = [c for c in REQUIRED if c not in schema]
    if missing:
        raise ReportError(f"inventory: {location} lacks the columns {', '.join(missing)} "
                             "(OptionalFields Size, LastModifiedDate and ETag are needed)")
    source = str(doc.get("sourceBucket") or "")
    appid = str(doc.get("sourceAppid") or "")
    listed = source if source.endswith(f"-{appid}") or not appid else f"{source}-{appid}"
    if listed != source_bucket:
        raise ReportError(f"inventory: {location} lists {listed}, not {source_bucket}")
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


class RowReader:
    """The report's data files read record by record; `malformed` holds rows that were skipped
    because they do not have the schema's columns (reported as errors)."""

    def __init__(self, gateway: Gateway, manifest: Manifest, prefix: str = "", raw_keys: bool = False):
        self.gateway, self.manifest, self.prefix, self.raw_keys = gateway, manifest, prefix, raw_keys
        self.column = {name: i for i, name in enumerate(manifest.schema)}
        self.malformed: List[Dict[str, str]] = []

    def take_malformed(self) -> List[Dict[str, str]]:
        bad, self.malformed = self.malformed, []
        return bad

    def _open(self, data: DataFile) -> "_Hashing":
        try:
            return _Hashing(self.gateway.open_stream(self.manifest.bucket, data.key))
        except NotFoundError as exc:
            raise ReportError(f"inventory: data file {data.key} does not exist") from exc
        except CloudError as exc:
            raise ReportError(f"inventory: cannot read data file {data.key}: {exc}") from exc

    def verify(self, index: int) -> None:
        """Read file `index` through, to its manifest's MD5 (a fanned-out invocation does, before it
        acts on any row: a file altered since the checksum-checked manifest is refused whole)."""
        data = self.manifest.files[index]
        hashing = self._open(data)
        try:
            while hashing.readinto(bytearray(256 * 1024)):
                pass
        except CloudError as exc:
            raise ReportError(f"inventory: cannot read data file {data.key}: {exc}") from exc
        if not data.md5 or hashing.md5.hexdigest() != data.md5:
            raise ReportError(f"inventory: {data.key} does not match the manifest's MD5checksum")

    def file(self, index: int, skip: int = 0) -> Iterator[Tuple[int, Optional[Entry]]]:
        """(records read so far, the entry or None) per CSV record of file `index`, after `skip`."""
        data = self.manifest.files[index]
        hashing = self._open(data)
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
        except ReportError:
            raise
        except Exception as exc:   # csv.Error, UnicodeDecodeError, gzip's OSError/EOFError, a broken download
            raise ReportError(f"inventory: {data.key} record {row + 1}: {exc}") from exc
        if data.md5 and hashing.md5.hexdigest() != data.md5:
            raise ReportError(f"inventory: {data.key} does not match the manifest's MD5checksum")

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
