"""Hostile keys in a COS inventory report (backfill --inventory, bulk/inventory.py): commas,
quotes, newlines, a key spelled like a CSV row, non-ASCII, percent and plus signs. Under each URL
encoding COS might use (and none), every object is scanned exactly once and no other object is
scanned or skipped in its place."""
from __future__ import annotations

import collections
from urllib.parse import unquote, urlsplit

import pytest

from cosguard.bulk.backfill import Backfill, Options
from cosguard.infra.config import Settings
from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime

HOSTILE = {
    "inv/a,b.txt": clean_text(),
    'inv/quote"d"".txt': clean_text() + b"1",
    "inv/new\nline.txt": eicar(),
    "inv/cr\r\nlf.txt": clean_text() + b"22",
    'inv/evil.txt","1250000000","x","inv/victim.txt': clean_text() + b"333",
    "inv/victim.txt": clean_text() + b"4444",
    "inv/新しい 文件.txt": clean_text() + b"55555",
    "inv/pct%41.txt": clean_text() + b"666666",
    "inv/pctA.txt": clean_text() + b"7777777",        # the decoding of the key above: a decoy
    "inv/plus+sign.txt": eicar(),
    "inv/plus sign.txt": clean_text() + b"88888888",   # the form decoding of the key above
    "inv/x%2Fy": clean_text() + b"999999999",
    "inv/x/y": clean_text() + b"0000000000",
}


def _jobs(stack) -> collections.Counter:
    """CI jobs per object key (a key XML cannot carry goes as a pre-signed URL naming it)."""
    return collections.Counter(j.object_key or unquote(urlsplit(j.url).path[1:])
                               for j in stack.cloud.ci.backend.jobs.values())


def _report(stack, encoding: str) -> str:
    cos = stack.cloud.cos
    reports = f"reports-{stack.intake.rsplit('-', 1)[1]}"
    cos.create_bucket(reports)
    cos.inventories.dialect.key_encoding, cos.inventories.dialect.rows_per_file = encoding, 4
    stack.cos.put_bucket_inventory(Bucket=stack.intake, Id="hostile", InventoryConfiguration={
        "Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:{cos.region}::{reports}", "Format": "CSV"}},
        "IsEnabled": "true", "IncludedObjectVersions": "Current", "Schedule": {"Frequency": "Weekly"},
        "OptionalFields": {"Field": ["ETag", "Size", "LastModifiedDate"]}})
    return f"{reports}/{cos.run_inventory(stack.intake, 'hostile')}"


@pytest.mark.parametrize("encoding", ["form", "percent", "percent-keep-plus", "raw"])
def test_every_hostile_key_is_scanned_once_and_none_stands_in_for_another(stack, encoding):
    for key, body in HOSTILE.items():
        stack.put(key, body)
    stack.take_events()                                     # the trigger never saw them: a backfill's case
    location = _report(stack, encoding)

    report = Backfill(Runtime(Settings.from_env(stack.env)), Options(
        stack.intake, inventory=location, inventory_keys="raw" if encoding == "raw" else "url")).run()

    assert report.complete and not report.errors, report.errors
    assert report.counts == {"submitted": len(HOSTILE)}
    assert _jobs(stack) == collections.Counter(HOSTILE.keys())      # each object once, nothing else
    stack.settle()
    assert stack.body("inv/plus+sign.txt") is None          # the infected one of the two spellings
    assert stack.body("inv/plus sign.txt") == HOSTILE["inv/plus sign.txt"]
    assert stack.tags("inv/pctA.txt")["cosguard-status"] == "clean"
    # CR/LF keys go to CI as a pre-signed Url, which the local CI fetches without its query by
    # default: a failed scan (COSGUARD_FAILED_ACTION, default tag), never clean (test_crlf_keys.py)
    assert stack.tags("inv/new\nline.txt")["cosguard-status"] == "error"
    assert stack.tags("inv/cr\r\nlf.txt")["cosguard-status"] == "error"


def test_a_handled_decoy_with_the_same_identity_does_not_skip_the_ambiguous_key(stack):
    """`+` left unencoded: `inv%2Fa+b` is `inv/a b` or `inv/a+b`. A handled `inv/a b` with the same
    bytes and second (same ETag@Last-Modified) must not answer for `inv/a+b`."""
    stack.put("inv/a b", b"same bytes")
    stack.put("inv/a+b", b"same bytes")
    stack.cloud.cos.store.find(stack.intake, "inv/a+b").last_modified = \
        stack.cloud.cos.store.find(stack.intake, "inv/a b").last_modified
    stack.take_events()
    runtime = Runtime(Settings.from_env(stack.env))
    assert runtime.scanner.scan_object(stack.intake, ["inv/a b"]).outcome.value == "submitted"
    stack.settle()
    location = _report(stack, "percent-keep-plus")

    report = Backfill(Runtime(Settings.from_env(stack.env)), Options(stack.intake, inventory=location)).run()

    assert report.counts == {"submitted": 1, "duplicate": 1}, report.errors
    assert _jobs(stack) == {"inv/a b": 1, "inv/a+b": 1}
