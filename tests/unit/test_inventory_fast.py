"""The inventory reader (bulk/inventory.py) over the in-memory gateway: what a report that is not
what its manifest says does to a run (it stops, keeping its checkpoint; nothing is guessed), rows
that do not fit the schema, all-versions reports, decoding. The HTTP path is tested in
tests/backfill/test_backfill_inventory.py and tests/adversarial/identity/test_inventory_keys.py."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from typing import List, Sequence

import pytest

from cosguard.bulk.backfill import Backfill, Options
from cosguard.bulk.inventory import InventoryError, _epoch, keys_of, read_manifest
from cosguard.infra.config import Settings
from cosguard.infra.memory import MemoryGateway
from cosguard.runtime import Runtime
from memory_world import ENV, INTAKE, JAIL

REPORTS = "reports-1250000000"
SCHEMA = ["AppID", "Bucket", "Key", "Size", "LastModifiedDate", "ETag"]


def _csv(rows: Sequence[Sequence[str]], gz: bool = True) -> bytes:
    text = io.StringIO(newline="")
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    data = text.getvalue().encode()
    return gzip.compress(data, mtime=0) if gz else data


def _report(gateway: MemoryGateway, files: List[bytes], schema=SCHEMA, source="intake", md5s=None) -> str:
    entries = []
    for i, data in enumerate(files):
        key = f"inv/data/{i}.csv.gz"
        gateway.upload(REPORTS, key, data)
        entries.append({"key": key, "size": len(data),
                        "MD5checksum": (md5s or {}).get(i, hashlib.md5(data).hexdigest())})
    manifest = json.dumps({"sourceAppid": "1250000000", "sourceBucket": source, "fileFormat": "CSV",
                           "fileSchema": ", ".join(schema), "files": entries}).encode()
    gateway.upload(REPORTS, "inv/d/manifest.json", manifest)
    gateway.upload(REPORTS, "inv/d/manifest.checksum", hashlib.md5(manifest).hexdigest().encode())
    return f"{REPORTS}/inv/d/manifest.json"


def _row(key: str, size: int = 5) -> List[str]:
    return ["1250000000", "intake", key, str(size), "2026-01-02T03:04:05.000Z", '"0123456789abcdef0123456789abcdef"']


@pytest.fixture
def gateway() -> MemoryGateway:
    return MemoryGateway([INTAKE, JAIL, REPORTS])


def _dry(gateway, location, **options):
    return Backfill(Runtime(Settings.from_env(ENV), gateway=gateway),  # type: ignore[arg-type]
                    Options(INTAKE, dry_run=True, inventory=location, **options)).run()


def test_a_data_file_that_fails_its_md5_stops_the_run_after_the_files_before_it(gateway, tmp_path):
    location = _report(gateway, [_csv([_row("a")]), _csv([_row("b")])], md5s={1: "0" * 32})
    report = _dry(gateway, location)
    assert not report.complete and "MD5checksum" in report.failure
    assert report.counts == {"to_scan": 1}                       # file 0 was read and counted


def test_a_truncated_gzip_file_stops_the_run(gateway):
    data = _csv([_row(f"k{i}") for i in range(2000)])
    location = _report(gateway, [data[: len(data) // 2]], md5s={0: hashlib.md5(data).hexdigest()})
    report = _dry(gateway, location)
    assert not report.complete and report.failure.startswith("inventory: inv/data/0.csv.gz record")


def test_rows_without_the_schemas_columns_are_errors_never_guesses(gateway):
    location = _report(gateway, [_csv([_row("good"), ["1250000000", "intake", "short"], _row("also-good")])])
    report = _dry(gateway, location)
    assert report.complete and report.counts == {"to_scan": 2, "error": 1}
    assert report.errors == [{"key": "inv/data/0.csv.gz record 2", "reason": "3 columns, the schema has 6"}]


def test_an_all_versions_report_lists_the_latest_version_of_each_key_only(gateway):
    schema = ["AppID", "Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag"]

    def row(key, vid, latest, marker):
        return ["1250000000", "intake", key, vid, latest, marker, "5", "2026-01-02T03:04:05Z", "e"]
    location = _report(gateway, [_csv([row("a", "v1", "false", "false"), row("a", "v2", "true", "false"),
                                       row("b", "v3", "true", "true"), row("c", "v4", "false", "false")])],
                       schema=schema)
    backfill = Backfill(Runtime(Settings.from_env(ENV), gateway=gateway),  # type: ignore[arg-type]
                        Options(INTAKE, dry_run=True, inventory=location))
    assert backfill.options.versioned is True
    entries = [e for page in backfill.pages() for e in page.entries]
    assert [(e.key, e.version_id, e.token) for e in entries] == [("a", "v2", "v2")]


def test_the_manifest_must_name_this_bucket_and_carry_the_identity_columns(gateway):
    with pytest.raises(InventoryError, match="lists other-1250000000"):
        read_manifest(gateway, _report(gateway, [_csv([_row("a")])], source="other"), INTAKE)
    with pytest.raises(InventoryError, match="lacks the columns ETag"):
        read_manifest(gateway, _report(gateway, [_csv([_row("a")[:5]])], schema=SCHEMA[:5]), INTAKE)
    gateway.upload(REPORTS, "x/manifest.json", b"{not json")
    gateway.upload(REPORTS, "x/manifest.checksum", hashlib.md5(b"{not json").hexdigest().encode())
    with pytest.raises(InventoryError, match="not a COS inventory manifest"):
        read_manifest(gateway, f"{REPORTS}/x/manifest.json", INTAKE)


def test_keys_decode_both_ways_only_when_a_literal_plus_makes_them_differ():
    assert keys_of("data%2Fa%20b%2Bc.txt") == ("data/a b+c.txt",)
    assert keys_of("data%2Fa+b") == ("data/a b", "data/a+b")
    assert keys_of("a%2Fb+c", raw=True) == ("a%2Fb+c",)
    assert keys_of("%E6%96%B0%0A%22%2C") == ('新\n",',)


def test_last_modified_in_the_forms_a_report_may_use():
    assert _epoch("2026-01-02T03:04:05.000Z") == _epoch("2026-01-02T03:04:05Z") == 1767323045
    assert _epoch("1767323045") == 1767323045
    assert _epoch("Fri, 02 Jan 2026 03:04:05 GMT") == 1767323045
