"""Bucket inventory through the SDK (doc 436/30625 PUT; GET and DELETE as the SDK sends them, doc 436/34940; 436/46869
POST one-time), and the report's layout: manifest.json + manifest.checksum, CSV(.gz) files whose
rows follow `fileSchema`, keys URL-encoded (doc 436/33702)."""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from urllib.parse import unquote_plus

import pytest
from qcloud_cos import CosServiceError

REPORTS = "reports-1250000000"


def config(prefix: str = "inv", fields=("Size", "LastModifiedDate", "ETag", "StorageClass"), versions="Current"):
    return {"Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:ap-guangzhou::{REPORTS}", "Format": "CSV",
                                                     "Prefix": prefix}},
            "IsEnabled": "true", "IncludedObjectVersions": versions,
            "OptionalFields": {"Field": list(fields)}, "Schedule": {"Frequency": "Daily"}}


@pytest.fixture
def reports(cos):
    cos.create_bucket(REPORTS)
    return REPORTS


def read(client, bucket, key) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def rows_of(client, manifest_key):
    manifest = json.loads(read(client, REPORTS, manifest_key))
    schema = [c.strip() for c in manifest["fileSchema"].split(",")]
    rows = []
    for item in manifest["files"]:
        data = read(client, REPORTS, item["key"])
        assert hashlib.md5(data).hexdigest() == item["MD5checksum"] and len(data) == item["size"]
        text = gzip.decompress(data) if item["key"].endswith(".gz") else data
        rows += [dict(zip(schema, r)) for r in csv.reader(io.StringIO(text.decode("utf-8"), newline=""))]
    return manifest, rows


def test_a_configuration_put_is_read_back_and_deleted(client, bucket, reports):
    client.put_bucket_inventory(Bucket=bucket, Id="daily", InventoryConfiguration=config())
    got = client.get_bucket_inventory(Bucket=bucket, Id="daily")
    assert got["Id"] == "daily"
    assert got["Destination"]["COSBucketDestination"]["Bucket"] == f"qcs::cos:ap-guangzhou::{REPORTS}"
    assert got["OptionalFields"]["Field"] == ["Size", "LastModifiedDate", "ETag", "StorageClass"]
    client.delete_bucket_inventory(Bucket=bucket, Id="daily")
    with pytest.raises(CosServiceError) as missing:
        client.get_bucket_inventory(Bucket=bucket, Id="daily")
    assert missing.value.get_status_code() == 404


def test_a_destination_in_another_region_or_missing_is_refused(client, bucket, reports):
    wrong = config()
    wrong["Destination"]["COSBucketDestination"]["Bucket"] = f"qcs::cos:ap-beijing::{REPORTS}"
    with pytest.raises(CosServiceError) as refused:
        client.put_bucket_inventory(Bucket=bucket, Id="x", InventoryConfiguration=wrong)
    assert refused.value.get_status_code() == 400
    absent = config()
    absent["Destination"]["COSBucketDestination"]["Bucket"] = "qcs::cos:ap-guangzhou::nothere-1250000000"
    with pytest.raises(CosServiceError):
        client.put_bucket_inventory(Bucket=bucket, Id="x", InventoryConfiguration=absent)


def test_a_run_writes_manifest_checksum_and_csv_gz_rows_with_url_encoded_keys(cos, client, bucket, reports):
    keys = ["plain.txt", "a b+c,d\"e.txt", "新\nline%41.txt"]
    for i, key in enumerate(keys):
        client.put_object(Bucket=bucket, Key=key, Body=b"x" * (i + 1))
    client.put_bucket_inventory(Bucket=bucket, Id="daily", InventoryConfiguration=config(fields=("ETag", "Size")))
    manifest_key = cos.run_inventory(bucket, "daily")
    assert manifest_key.startswith("inv/1250000000/examplebucket/daily/") and manifest_key.endswith("/manifest.json")
    checksum = read(client, REPORTS, manifest_key.replace("manifest.json", "manifest.checksum")).decode()
    assert checksum == hashlib.md5(read(client, REPORTS, manifest_key)).hexdigest()
    manifest, rows = rows_of(client, manifest_key)
    assert manifest["sourceBucket"] == "examplebucket" and manifest["fileFormat"] == "CSV"
    assert manifest["fileSchema"] == "AppID, Bucket, Key, ETag, Size"   # the configuration's order
    assert all(f["key"].endswith(".csv.gz") for f in manifest["files"])
    assert sorted(unquote_plus(r["Key"]) for r in rows) == sorted(keys)
    assert all("," not in r["Key"] and "\n" not in r["Key"] for r in rows)
    by_key = {unquote_plus(r["Key"]): r for r in rows}
    head = client.head_object(Bucket=bucket, Key=keys[1])
    assert by_key[keys[1]]["ETag"].strip('"') == head["ETag"].strip('"') and by_key[keys[1]]["Size"] == "2"


def test_plain_csv_several_files_and_a_filter_prefix(cos, client, bucket, reports):
    cos.inventories.dialect.gzip = False
    cos.inventories.dialect.rows_per_file = 2
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"in/{i}", Body=b"y")
    client.put_object(Bucket=bucket, Key="out/1", Body=b"y")
    wanted = config()
    wanted["Filter"] = {"Prefix": "in/"}
    client.put_bucket_inventory(Bucket=bucket, Id="p", InventoryConfiguration=wanted)
    manifest, rows = rows_of(client, cos.run_inventory(bucket, "p"))
    assert len(manifest["files"]) == 3 and all(f["key"].endswith(".csv") for f in manifest["files"])
    assert [unquote_plus(r["Key"]) for r in rows] == [f"in/{i}" for i in range(5)]


def test_a_one_time_inventory_runs_at_once(cos, client, bucket, reports):
    client.put_object(Bucket=bucket, Key="now.txt", Body=b"z")
    client.post_bucket_inventory(Bucket=bucket, Id="once", InventoryConfiguration=config(prefix=""))
    listed = client.list_objects(Bucket=REPORTS, Prefix="1250000000/examplebucket/once/")["Contents"]
    manifest = next(c["Key"] for c in listed if c["Key"].endswith("manifest.json"))
    _, rows = rows_of(client, manifest)
    assert [r["Key"] for r in rows] == ["now.txt"]
