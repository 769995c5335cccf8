"""Backfill driven by a COS inventory report (bulk/inventory.py) on the local cloud: the report's
CSV(.gz) files are streamed, no claim set is loaded, and each listed write's ledger record is read
by whoever scans it, so exactly the unhandled objects are scanned; checkpoints are file + record."""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time

import pytest

from backfill_support import mixed
from cosguard.bulk.backfill import Backfill, BackfillError, Options
from cosguard.bulk.invoke import LocalInvoker
from cosguard.local.scf import LocalScf


def _jobs_per_key(stack):
    return collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())


def _handled_first(stack, items):
    """`items` scanned by an ordinary backfill and their verdicts recorded (the ledger's claims/)."""
    _, report = stack.backfill(prefix="a/")
    assert report.counts == {"submitted": len(items)}
    assert stack.cloud.ci.wait_idle(60)


@pytest.mark.parametrize("gz", [True, False], ids=["csv.gz", "csv"])
def test_inventory_backfill_scans_exactly_the_unhandled_objects(stack, gz):
    handled, fresh = mixed(30, prefix="a/"), mixed(20, infected_every=10, prefix="b/")
    stack.seed(handled + fresh + [("b/folder/", b"")])
    _handled_first(stack, handled)
    stack.cloud.ci.faults.drop_callback_rate = 1.0   # the callback's own HEADs would blur the count
    location = stack.inventory(gzip=gz)
    heads, claims_listed = stack.heads(), stack.cloud.cos.counters.snapshot().get("GetBucket", 0)

    backfill, report = stack.backfill(inventory=location, page_size=10, workers=8)

    assert report.complete and report.inventory == location
    assert report.counts == {"duplicate": 30, "submitted": 20, "skipped": 1}, report.errors
    assert report.listed == 51 and backfill.manifest is not None and len(backfill.manifest.files) == 3
    assert stack.heads() - heads == 20                      # no HEAD for a write the ledger holds as handled
    assert stack.cloud.cos.counters.snapshot().get("GetBucket", 0) == claims_listed   # no listing at all
    jobs = _jobs_per_key(stack)
    assert set(jobs) == {k for k, _ in handled + fresh} and set(jobs.values()) == {1}
    assert stack.cloud.ci.wait_idle(60)
    found = sorted(j.object_key for j in stack.cloud.ci.backend.jobs.values() if j.suggestion == "block")
    assert found == ["b/00009.com", "b/00019.com"]


def test_an_object_changed_or_deleted_since_the_report_is_judged_by_head_not_the_row(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(10, prefix="a/")
    stack.seed(items)
    location = stack.inventory()
    stack.backfill(prefix="a/")                              # all handled (jobs open: no verdicts)
    stack.cos.put_object(Bucket=stack.intake, Key="a/00001.txt", Body=b"rewritten after the report")
    stack.cos.delete_object(Bucket=stack.intake, Key="a/00002.txt")

    _, report = stack.backfill(inventory=location)

    assert report.counts == {"duplicate": 8, "submitted": 1, "gone": 1}, report.errors
    assert _jobs_per_key(stack)["a/00001.txt"] == 2          # the new write is a new upload: one more job


def test_an_interrupted_inventory_run_resumes_from_file_and_record_without_rescanning(stack, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(100))
    location = stack.inventory(rows_per_file=30)             # 4 files: 30, 30, 30, 10
    checkpoint = str(tmp_path / "inventory.json")
    runtime = stack.runtime()
    stop, scans, original = threading.Event(), [], runtime.scanner.scan_object

    def counting_scan(*args, **kwargs):
        result = original(*args, **kwargs)
        scans.append(result)
        if len(scans) == 55:   # in the 4th page: file 1, records 21..30
            stop.set()
        return result

    runtime.scanner.scan_object = counting_scan
    marks = []
    first = Backfill(runtime, Options(stack.intake, workers=4, page_size=20, checkpoint=checkpoint,
                                      inventory=location),
                     stop=stop, on_page=lambda report, marker: marks.append(dict(marker))).run()

    assert first.interrupted and not first.complete
    assert marks == [{"file": "0", "row": "20"}, {"file": "1", "row": "0"}, {"file": "1", "row": "20"}]
    done = first.counts["submitted"]
    saved = json.loads(open(checkpoint).read())
    assert saved["marker"] == {"file": "1", "row": "20"} and saved["inventory"] == location

    second = Backfill(stack.runtime(), Options(stack.intake, workers=4, page_size=20, checkpoint=checkpoint,
                                               resume=True, inventory=location)).run()

    assert second.complete and second.resumed_from == {"file": "1", "row": "20"}
    assert second.listed == 50                                # records 21..30 of file 1, files 2 and 3
    assert second.counts == {"duplicate": done - 50, "submitted": 100 - done}
    jobs = _jobs_per_key(stack)
    assert len(jobs) == 100 and set(jobs.values()) == {1}

    with pytest.raises(BackfillError, match="listing"):      # a checkpoint belongs to its listing
        Backfill(stack.runtime(), Options(stack.intake, checkpoint=checkpoint, resume=True))


def test_fan_out_sends_files_and_workers_skip_handled_writes(stack):
    handled, fresh = mixed(20, prefix="a/"), mixed(25, infected_every=25, prefix="b/")
    stack.seed(handled + fresh)
    _handled_first(stack, handled)
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    location = stack.inventory()
    scf = LocalScf(stack.cloud, stack.env, buckets=[], retry_delays=(0.2, 0.2)).start()
    try:
        sent = []
        invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))
        heads = stack.heads()
        report = Backfill(stack.runtime(), Options(stack.intake, invoker=invoker, batch_size=10,
                                                   inventory=location)).run()
        assert report.counts == {"files_sent": 2} and report.ledger_claims == 0   # the driver read no claim
        assert all("Records" not in e and e["cosguard_inventory"]["file"] for e in sent)   # a file each, no rows
        assert scf.wait_idle(60) and scf.invoker.failed == []
        counts = collections.Counter()
        for invocation in scf.scan.invocations:
            counts.update(invocation.result["counts"])
        assert counts == {"duplicate": 20, "submitted": 25}
        assert stack.heads() - heads == 25                   # the workers read the ledger, not the object
    finally:
        scf.stop()
    jobs = _jobs_per_key(stack)
    assert set(jobs) == {k for k, _ in handled + fresh} and set(jobs.values()) == {1}


def test_a_report_that_is_missing_tampered_or_for_another_bucket_is_refused(stack):
    stack.seed(mixed(3))
    location = stack.inventory()
    reports, key = location.split("/", 1)
    with pytest.raises(BackfillError, match="does not exist"):
        stack.backfill(inventory=f"{reports}/nothing/manifest.json")
    with pytest.raises(BackfillError, match="manifest.json"):
        stack.backfill(inventory=f"{reports}/{key}.bak")
    stack.cos.put_object(Bucket=reports, Key=key, Body=stack.cos.get_object(Bucket=reports, Key=key)[
        "Body"].get_raw_stream().read().replace(b"intake", b"other"))
    with pytest.raises(BackfillError, match="manifest.checksum"):
        stack.backfill(inventory=location)


def test_cli_backfill_inventory_dry_run_and_scan(stack, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(12))
    location = stack.inventory()
    dry = stack.cli(tmp_path, "--inventory", location, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["counts"] == {"to_scan": 12}
    done = stack.cli(tmp_path, "--inventory", location, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"submitted": 12}
    bad = stack.cli(tmp_path, "--inventory", "nowhere")
    assert bad.returncode == 2 and "manifest.json" in bad.stderr and "Traceback" not in bad.stderr


def test_a_versioned_bucket_with_an_all_versions_report_matches_claims_by_version_id(stacks):
    stack = stacks(versioned=True)
    stack.upload([("a.txt", b"first a"), ("b.txt", b"first b"), ("c.txt", b"first c")])
    stack.upload([("b.txt", b"second b")])
    stack.cos.delete_object(Bucket=stack.intake, Key="c.txt")          # a delete marker is its latest
    _, first = stack.backfill()
    assert first.counts == {"submitted": 2}
    assert stack.cloud.ci.wait_idle(60)
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.upload([("d.txt", b"new d")])
    location = stack.inventory(fields=("Size", "LastModifiedDate", "ETag"))   # a Current one: replaced
    stack.cos.put_bucket_inventory(Bucket=stack.intake, Id="cosguard", InventoryConfiguration={
        "Destination": {"COSBucketDestination": {"Bucket": f"qcs::cos:ap-guangzhou::{location.split('/')[0]}",
                                                 "Format": "CSV", "Prefix": "all"}},
        "IsEnabled": "true", "IncludedObjectVersions": "All", "Schedule": {"Frequency": "Daily"},
        "OptionalFields": {"Field": ["Size", "LastModifiedDate", "ETag"]}})
    location = f"{location.split('/')[0]}/{stack.cloud.cos.run_inventory(stack.intake, 'cosguard')}"
    heads = stack.heads()

    backfill, report = stack.backfill(inventory=location)

    assert backfill.manifest is not None and backfill.manifest.versioned and report.versioned
    assert report.listed == 3 and report.counts == {"duplicate": 2, "submitted": 1}, report.errors
    assert stack.heads() - heads == 1                                  # d.txt only
    assert _jobs_per_key(stack) == {"a.txt": 1, "b.txt": 1, "d.txt": 1}


def test_rescan_takes_an_inventory_too_and_a_write_not_due_costs_one_read_and_no_head(stack):
    """`cosguard rescan --inventory` (merged from h-rescan24): each listed write's record decides."""
    from cosguard.bulk.rescan import Rescan, RescanOptions
    from helpers import settle_ci

    items = mixed(12, prefix="r/")
    stack.seed(items)
    _, first = stack.backfill()
    assert first.counts == {"submitted": 12}
    settle_ci(stack.cloud.ci, 30)
    location = stack.inventory(rows_per_file=5)
    heads = stack.heads()

    rescan = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=1.0, workers=4, inventory=location))
    report = rescan.run()

    assert report.complete and report.counts == {"not_due": 12}, report.errors
    assert stack.heads() == heads and stack.jobs() == 12            # no HEAD, no job: each record said not due

    due = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=time.time() + 2, workers=4,
                                                inventory=location)).run()
    assert due.counts == {"rescanned": 12} and stack.jobs() == 24


def test_cli_rescan_takes_inventory(stack, tmp_path):
    stack.seed(mixed(3))
    location = stack.inventory()
    done = subprocess.run([sys.executable, "-m", "cosguard.cli", "rescan", "--env-file", stack.env_file(tmp_path),
                           "--bucket", stack.intake, "--older-than", "30d", "--inventory", location, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["inventory"] == location and report["listed"] == 3
