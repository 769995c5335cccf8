"""Bucket inventory (清单) as COS documents it, so a backfill can be driven by a report locally.

API (cos-python-sdk-v5 `put_bucket_inventory`, `get_bucket_inventory`, `delete_bucket_inventory`,
`post_bucket_inventory`): `PUT|GET|DELETE /?inventory&id=ID` (PUT: doc 436/30625; GET and DELETE:
listed by doc 436/34940) store, answer and remove an `<InventoryConfiguration>`; `POST
/?inventory&id=ID` (doc 436/46869) runs a one-time inventory at once. Real COS runs configured
inventories daily or weekly; `LocalCos.run_inventory(bucket, id)` runs one now.

The report (doc 436/33702, 436/30622): `<Prefix>/<appid>/<bucket name>/<id>/<YYYYMMDD>/manifest.json`
and `manifest.checksum` (doc 436/46869's example path), the CSV data files under
`<Prefix>/<appid>/<bucket name>/<id>/data/`. Each row: AppID, Bucket, Key (URL-encoded: "使用 CSV
文件格式时,对象文件名称采用 URL 编码形式,必须解码然后才能使用", doc 436/33702), VersionId, IsLatest
and IsDeleteMarker when every version is listed, then the configured optional fields.

Not documented, so each takes the answer worse for a reader, with a switch (`InventoryDialect`):
- the URL encoding: `key_encoding="form"` (space as `+`, `+` as `%2B`: a reader using plain
  percent-decoding gets a key with `+` for every space), `"percent"` (space as `%20`), or
  `"percent-keep-plus"` (space as `%20`, `+` left as is: a reader using form decoding gets a space
  for every `+`); `"raw"` writes keys unencoded (CSV quoting only), a parser's worst case;
- the optional fields' order: the configuration's order, not a fixed one (read `fileSchema`);
- the ETag with its double quotes (doubled inside the CSV field);
- gzip: `gzip=True` (`.csv.gz`, as S3 does) or plain `.csv`;
- `rows_per_file`: small (1,000) so a test's report has several files.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote, quote_plus
from xml.sax.saxutils import escape

from defusedxml import ElementTree

from .naming import cos_storage_class, split_bucket
from .wire import CosError

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")   # doc 436/30625: a-z, A-Z, 0-9, '-', '_', '.'
_DESTINATION = re.compile(r"^qcs::cos:([a-z0-9-]+)::([a-z0-9-]+-[0-9]+)$")
FIELDS = ("Size", "LastModifiedDate", "ETag", "StorageClass", "IsMultipartUploaded", "ReplicationStatus",
          "Tag", "Crc64")


@dataclass
class InventoryDialect:
    key_encoding: str = "form"   # "form" | "percent" | "percent-keep-plus" | "raw"
    gzip: bool = True
    rows_per_file: int = 1000


@dataclass
class InventoryConfig:
    id: str
    xml: bytes
    enabled: bool
    destination: str          # COS bucket name-appid
    prefix: str
    filter_prefix: str
    all_versions: bool
    fields: List[str]


def _text(node: Any, path: str) -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None and found.text else ""


def parse_config(body: bytes, wanted_id: str, region: str) -> InventoryConfig:
    if not _ID.match(wanted_id or ""):
        raise CosError(400, "InvalidArgument", "invalid inventory id")
    try:
        root = ElementTree.fromstring(body)
    except Exception:
        raise CosError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag != "InventoryConfiguration":
        raise CosError(400, "MalformedXML", "The XML you provided was not well-formed.")
    if _text(root, "Id") != wanted_id:
        raise CosError(400, "InvalidArgument", "Id in the body does not match the id parameter")
    cos = root.find("Destination/COSBucketDestination")
    if cos is None or _text(cos, "Format").upper() != "CSV":
        raise CosError(400, "InvalidArgument", "Destination/COSBucketDestination with Format CSV is required")
    match = _DESTINATION.match(_text(cos, "Bucket"))
    if not match:
        raise CosError(400, "InvalidArgument", "Destination Bucket must be qcs::cos:<region>::<bucket>")
    if match.group(1) != region:
        raise CosError(400, "InvalidArgument", "the destination bucket must be in the source bucket's region")
    versions = _text(root, "IncludedObjectVersions") or "Current"
    if versions not in ("All", "Current"):
        raise CosError(400, "InvalidArgument", "IncludedObjectVersions is All or Current")
    fields = [(f.text or "").strip() for f in root.findall("OptionalFields/Field")]
    unknown = [f for f in fields if f not in FIELDS and not f.startswith("x-cos-meta-")]
    if unknown:
        raise CosError(400, "InvalidArgument", f"unknown optional field {unknown[0]}")
    filter_prefix = _text(root, "Filter/Prefix") or _text(root, "Filter/And/Prefix")
    return InventoryConfig(wanted_id, body, _text(root, "IsEnabled").lower() != "false", match.group(2),
                           _text(cos, "Prefix"), filter_prefix, versions == "All", fields)


class Inventories:
    """The inventory configurations of one LocalCos, and the reports they produce."""

    def __init__(self, cos: Any):
        self.cos = cos
        self.dialect = InventoryDialect()
        self._configs: Dict[Tuple[str, str], InventoryConfig] = {}
        self._lock = threading.Lock()

    # -- the API ------------------------------------------------------------------------------
    def answer(self, op: str, bucket: str, query: Dict[str, str], body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        if not self.cos.bucket_exists(bucket):
            raise CosError(404, "NoSuchBucket", "The specified bucket does not exist.")
        wanted = query.get("id", "")
        if op == "PutBucketInventory" or op == "PostBucketInventory":
            config = parse_config(body, wanted, self.cos.region)
            if not self.cos.bucket_exists(config.destination):
                raise CosError(400, "InvalidArgument", "the destination bucket does not exist")
            if op == "PostBucketInventory":
                self.run(bucket, config, one_time=True)
                job = uuid.uuid4().hex
                xml = f"<PostInventoryResult><JobId>{job}</JobId></PostInventoryResult>".encode()
                return 200, {"Content-Type": "application/xml"}, xml
            with self._lock:
                self._configs[(bucket, wanted)] = config
            return 200, {}, b""
        with self._lock:
            config_found = self._configs.get((bucket, wanted))
            if op == "DeleteBucketInventory" and config_found is not None:
                del self._configs[(bucket, wanted)]
        if config_found is None:
            raise CosError(404, "NoSuchInventoryConfiguration", "The specified inventory configuration does not exist.")
        if op == "DeleteBucketInventory":
            return 204, {}, b""
        return 200, {"Content-Type": "application/xml"}, config_found.xml

    def configuration(self, bucket: str, inventory_id: str) -> Optional[InventoryConfig]:
        with self._lock:
            return self._configs.get((bucket, inventory_id))

    # -- reports --------------------------------------------------------------------------------
    def run_configured(self, bucket: str, inventory_id: str) -> str:
        """What COS's daily or weekly run does, now; the manifest's key in the destination bucket."""
        config = self.configuration(bucket, inventory_id)
        if config is None:
            raise KeyError(f"{bucket} has no inventory configuration {inventory_id!r}")
        return self.run(bucket, config)

    def run(self, bucket: str, config: InventoryConfig, one_time: bool = False) -> str:
        name, appid = split_bucket(bucket)
        now = time.time() + self.cos.clock_offset
        base = "/".join(p for p in (config.prefix.strip("/"), appid, name, config.id) if p)
        schema = ["AppID", "Bucket", "Key"] + (["VersionId", "IsLatest", "IsDeleteMarker"]
                                               if config.all_versions else []) + config.fields
        files: List[Dict[str, Any]] = []
        count = size_total = 0
        rows: List[List[str]] = []

        def flush() -> None:
            if not rows:
                return
            data = self._csv(rows)
            suffix = ".csv.gz" if self.dialect.gzip else ".csv"
            key = f"{base}/data/{uuid.uuid4().hex}{suffix}"
            self._write(config.destination, key, data)
            files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
            rows.clear()

        for row, size in self._rows(bucket, appid, name, config):
            rows.append(row)
            count += 1
            size_total += size
            if len(rows) >= self.dialect.rows_per_file:
                flush()
        flush()
        manifest = {
            "sourceAppid": appid, "sourceBucket": name, "destinationBucket": f"qcs::cos:{self.cos.region}::{config.destination}",
            "version": "2019-07-12", "creationTimestamp": str(int(now * 1000)), "fileFormat": "CSV",
            "fileSchema": ", ".join(schema), "listObjectCount": count, "listStorageSize": size_total,
            "filterObjectCount": count, "filterStorageSize": size_total, "files": files,
        }
        day = time.strftime("%Y%m%d", time.gmtime(now))
        folder = f"{base}/{day}"   # a one-time run (doc 436/46869) lands in the same layout
        document = json.dumps(manifest, indent=2).encode("utf-8")
        self._write(config.destination, f"{folder}/manifest.json", document)
        self._write(config.destination, f"{folder}/manifest.checksum", hashlib.md5(document).hexdigest().encode())
        return f"{folder}/manifest.json"

    def _rows(self, bucket: str, appid: str, name: str, config: InventoryConfig) -> Iterator[Tuple[List[str], int]]:
        found = self.cos.moto_backend().buckets.get(self.cos.names.to_moto(bucket))
        if found is None:
            return
        for key, versions in sorted(found.keys.iterlists()):
            if not key.startswith(config.filter_prefix):
                continue
            chosen = versions if config.all_versions else versions[-1:]
            for index, obj in enumerate(chosen):
                marker = not hasattr(obj, "value")
                if marker and not config.all_versions:
                    continue
                latest = obj is versions[-1]
                row = [appid, name, self._encode(key)]
                if config.all_versions:
                    vid = str(getattr(obj, "version_id", "") or "")
                    row += ["" if vid == "null" else vid, "true" if latest else "false", "true" if marker else "false"]
                size = 0 if marker else self.cos.store.size_of(bucket, key, obj.size)
                row += [self._field(f, obj, marker, size) for f in config.fields]
                yield row, size

    def _field(self, name: str, obj: Any, marker: bool, size: int) -> str:
        if marker:
            return ""
        if name == "Size":
            return str(size)
        if name == "LastModifiedDate":
            return obj.last_modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if name == "ETag":
            return str(obj.etag)   # with its quotes: undocumented, the worse answer
        if name == "StorageClass":
            return cos_storage_class(obj.storage_class)
        if name == "IsMultipartUploaded":
            return "true" if "-" in str(obj.etag) else "false"
        return ""

    def _encode(self, key: str) -> str:
        encoding = self.dialect.key_encoding
        if encoding == "raw":
            return key
        if encoding == "form":
            return quote_plus(key, safe="")
        return quote(key, safe="+" if encoding == "percent-keep-plus" else "")

    def _csv(self, rows: List[List[str]]) -> bytes:
        text = io.StringIO(newline="")
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
        data = text.getvalue().encode("utf-8")
        return gzip.compress(data, mtime=0) if self.dialect.gzip else data

    def _write(self, bucket: str, key: str, data: bytes) -> None:
        self.cos.moto_backend().put_object(self.cos.names.to_moto(bucket), key, data, disable_notification=True)


def config_xml(inventory_id: str, destination: str, region: str, prefix: str = "", fields: Tuple[str, ...] = (
        "Size", "LastModifiedDate", "ETag", "StorageClass"), versions: str = "Current", frequency: str = "Daily") -> bytes:
    """An `<InventoryConfiguration>` body (for tests and the admin command)."""
    optional = "".join(f"<Field>{escape(f)}</Field>" for f in fields)
    return (f"<InventoryConfiguration><Id>{escape(inventory_id)}</Id><IsEnabled>true</IsEnabled>"
            f"<Destination><COSBucketDestination><Format>CSV</Format>"
            f"<Bucket>qcs::cos:{escape(region)}::{escape(destination)}</Bucket><Prefix>{escape(prefix)}</Prefix>"
            f"</COSBucketDestination></Destination><Schedule><Frequency>{escape(frequency)}</Frequency></Schedule>"
            f"<IncludedObjectVersions>{escape(versions)}</IncludedObjectVersions>"
            f"<OptionalFields>{optional}</OptionalFields></InventoryConfiguration>").encode()
