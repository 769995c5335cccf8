"""`--inventory --fan-out`: the command line reads only the report's manifest and sends one
invocation per data file; each `scan_on_upload` invocation (the local SCF runtime's worker
processes) reads its file itself, checks its MD5 against the checksum-checked manifest, and decides
"already handled" per row, so no process holds the claim set or streams every row."""
from __future__ import annotations

import collections
import json
import threading

import pytest

from backfill_support import FakeScfApi, mixed
from cosguard.bulk.backfill import Backfill, Options
from cosguard.bulk.invoke import LocalInvoker
from cosguard.bulk.rescan import Rescan, RescanOptions
from cosguard.domain.inventory_report import read_manifest
from cosguard.domain.inventory_slice import INVENTORY_EVENT_FIELD, scan_inventory_slice
from cosguard.errors import SubmissionError
from cosguard.infra.retry import Deadline, within
from cosguard.local.scf import LocalScf


def _jobs_per_key(stack):
    return collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())


def _worker_counts(scf):
    counts = collections.Counter()
    for invocation in scf.scan.invocations:
        if invocation.ok:
            counts.update(invocation.result["counts"])
    return counts


@pytest.fixture
def scf(stack):
    runtime = LocalScf(stack.cloud, stack.env, buckets=[], retry_delays=(0.2, 0.2)).start()
    yield runtime
    runtime.stop()


def _reading(runtime):
    """The keys this process opens for reading (the driver must open the manifest only)."""
    opened, original = [], runtime.gateway.open_stream

    def open_stream(bucket, key, *args, **kwargs):
        opened.append(key)
        return original(bucket, key, *args, **kwargs)
    runtime.gateway.open_stream = open_stream
    return opened


def test_one_invocation_per_data_file_and_every_unhandled_object_scanned_once(stack, scf, tmp_path):
    handled, fresh = mixed(20, prefix="a/"), mixed(40, infected_every=20, prefix="b/")
    stack.seed(handled + fresh + [("b/folder/", b"")])
    _, first = stack.backfill(prefix="a/")
    assert first.counts == {"submitted": 20}
    assert stack.cloud.ci.wait_idle(60)
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    location = stack.inventory(rows_per_file=15)            # 61 rows: 5 files
    runtime = stack.runtime()
    opened, sent = _reading(runtime), []
    checkpoint = str(tmp_path / "files.json")
    invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))

    backfill = Backfill(runtime, Options(stack.intake, invoker=invoker, inventory=location, checkpoint=checkpoint))
    report = backfill.run()

    assert report.complete and report.mode == "fan-out" and report.counts == {"files_sent": 5}
    assert report.invocations == 5 == len(sent) and report.listed == 0
    assert opened == [location.split("/", 1)[1], location.split("/", 1)[1][:-len("json")] + "checksum"]
    files = [f.key for f in backfill.manifest.files]
    assert [e[INVENTORY_EVENT_FIELD]["file"] for e in sent] == files
    assert [e[INVENTORY_EVENT_FIELD]["md5"] for e in sent] == [f.md5 for f in backfill.manifest.files]
    saved = json.loads(open(checkpoint).read())
    assert saved["complete"] and saved["files_sent"] == files and saved["marker"] == {"file": "5", "row": "0"}
    assert scf.wait_idle(60) and scf.invoker.failed == []
    assert _worker_counts(scf) == {"duplicate": 20, "submitted": 40, "skipped": 1}
    jobs = _jobs_per_key(stack)
    assert set(jobs) == {k for k, _ in handled + fresh} and set(jobs.values()) == {1}


def test_a_worker_killed_mid_file_is_retried_by_scf_and_finishes_without_double_jobs(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(30, prefix="k/")
    stack.seed(items)
    location = stack.inventory(rows_per_file=30)            # one file
    release = threading.Event()
    # the HEAD of the 20th object hangs: the instance runs past its time limit and is killed (SIGKILL)
    stack.cloud.cos.faults.before(lambda: release.wait(30), operation="HeadObject", bucket=stack.intake,
                                  key="k/00019.txt")
    scf = LocalScf(stack.cloud, stack.env, buckets=[], retry_delays=(0.2, 0.2), time_limit_ms=6000).start()
    try:
        report = Backfill(stack.runtime(), Options(stack.intake, invoker=LocalInvoker(scf.invoker.enqueue),
                                                   inventory=location)).run()
        assert report.counts == {"files_sent": 1}
        assert scf.wait_idle(90)
        release.set()
        attempts = scf.scan.invocations
        assert [a.ok for a in attempts] == [False, True], [(a.attempt, a.error) for a in attempts]
        assert attempts[0].duration_ms >= 6000 and "scan_on_upload" in attempts[0].error   # ended at its limit
        done = attempts[1].result["counts"]
        assert done.get("duplicate", 0) >= 1 and done["duplicate"] + done["submitted"] == 30, done
    finally:
        release.set()
        scf.stop()
    jobs = _jobs_per_key(stack)
    assert set(jobs) == {k for k, _ in items} and set(jobs.values()) == {1}   # the retry made no second job


def test_a_slice_out_of_time_fails_for_a_retry_that_skips_what_was_handled(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(10))
    location = stack.inventory(rows_per_file=10)
    runtime = stack.runtime()
    manifest = read_manifest(runtime.gateway, location, stack.intake)
    spec = {"manifest": location, "bucket": stack.intake, "file": manifest.files[0].key,
            "md5": manifest.files[0].md5, "rows": [0, None]}
    with within(Deadline(0.001)):
        with pytest.raises(SubmissionError, match="out of time"):
            scan_inventory_slice(runtime.scanner, spec)
    assert stack.jobs() == 0
    assert scan_inventory_slice(runtime.scanner, dict(spec, rows=[0, 4])).counts() == {"submitted": 4}
    assert scan_inventory_slice(runtime.scanner, spec).counts() == {"duplicate": 4, "submitted": 6}
    assert set(_jobs_per_key(stack).values()) == {1} and stack.jobs() == 10


def test_a_tampered_data_file_is_refused_by_its_worker_and_the_others_are_scanned(stack, scf):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(30)
    stack.seed(items)
    location = stack.inventory(rows_per_file=10, gzip=False)
    reports = location.split("/", 1)[0]
    manifest = read_manifest(stack.runtime().gateway, location, stack.intake)
    victim = manifest.files[1].key
    body = stack.cos.get_object(Bucket=reports, Key=victim)["Body"].get_raw_stream().read()
    stack.cos.put_object(Bucket=reports, Key=victim, Body=body + body.splitlines(True)[0])   # one row more

    report = Backfill(stack.runtime(), Options(stack.intake, invoker=LocalInvoker(scf.invoker.enqueue),
                                               inventory=location)).run()

    assert report.counts == {"files_sent": 3}
    assert scf.wait_idle(60) and scf.invoker.failed == []
    results = [i.result for i in scf.scan.invocations]
    refused = [r for r in results if r["counts"] == {"error": 1}]
    assert len(refused) == 1 and "MD5checksum" in refused[0]["errors"][0]["reason"]
    assert refused[0]["errors"][0]["key"] == victim
    assert _worker_counts(scf) == {"submitted": 20, "error": 1}
    scanned_rows = {k for k, _ in items} - {k for k, _ in items[10:20]}
    assert set(_jobs_per_key(stack)) == scanned_rows        # nothing of the tampered file was acted on


def test_rescan_fan_out_sends_files_with_its_cut_off(stack, scf):
    from helpers import settle_ci
    items = mixed(12, prefix="r/")
    stack.seed(items)
    _, first = stack.backfill()
    settle_ci(stack.cloud.ci, 30)
    location = stack.inventory(rows_per_file=5)
    sent = []
    invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))

    report = Rescan(stack.runtime(), RescanOptions(bucket=stack.intake, before=1.0, invoker=invoker,
                                                   inventory=location)).run()

    assert report.counts == {"files_sent": 3} and all(e["cosguard_rescan"] == {"before": 1.0} for e in sent)
    assert scf.wait_idle(60) and _worker_counts(scf) == {"not_due": 12} and stack.jobs() == 12


def test_cli_backfill_inventory_fan_out_signs_one_invoke_per_file(stack, scf, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(20)
    stack.seed(items)
    location = stack.inventory(rows_per_file=8)             # 3 files
    api = FakeScfApi(stack.env["TENCENTCLOUD_SECRETID"], stack.env["TENCENTCLOUD_SECRETKEY"],
                     forward=scf.invoker.enqueue)
    try:
        done = stack.cli(tmp_path, "--inventory", location, "--fan-out", "--function", "scan-on-upload-prod",
                         "--scf-endpoint", api.endpoint, "--json")
    finally:
        api.close()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"files_sent": 3} and report["invocations"] == 3
    assert all(r["signature_ok"] for r in api.requests)
    assert scf.wait_idle(60) and _worker_counts(scf) == {"submitted": 20}
    assert set(_jobs_per_key(stack).values()) == {1}


def test_rows_per_invocation_splits_a_file_into_ranges_each_scanned_once(stack, scf):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(22)
    stack.seed(items)
    location = stack.inventory(rows_per_file=11)            # 2 files of 11 records
    sent = []
    invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))

    report = Backfill(stack.runtime(), Options(stack.intake, invoker=invoker, inventory=location,
                                               rows_per_invocation=4)).run()

    assert report.counts == {"files_sent": 2} and report.invocations == 6
    assert [e[INVENTORY_EVENT_FIELD]["rows"] for e in sent] == [[0, 4], [4, 8], [8, None]] * 2
    assert scf.wait_idle(60) and scf.invoker.failed == []
    assert sorted(i.result["records"] for i in scf.scan.invocations) == [3, 3, 4, 4, 4, 4]
    jobs = _jobs_per_key(stack)
    assert set(jobs) == {k for k, _ in items} and set(jobs.values()) == {1}


def test_an_interrupted_file_fan_out_resumes_with_the_files_not_sent(stack, scf, tmp_path):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    items = mixed(20)
    stack.seed(items)
    location = stack.inventory(rows_per_file=5)             # 4 files
    checkpoint, stop, sent = str(tmp_path / "files.json"), threading.Event(), []
    invoker = LocalInvoker(lambda event: (sent.append(event[INVENTORY_EVENT_FIELD]["file"]),
                                          scf.invoker.enqueue(event)))

    first = Backfill(stack.runtime(), Options(stack.intake, invoker=invoker, inventory=location, checkpoint=checkpoint),
                     stop=stop, on_page=lambda report, marker: stop.set() if report.invocations == 2 else None).run()

    assert first.interrupted and first.counts == {"files_sent": 2}
    saved = json.loads(open(checkpoint).read())
    assert saved["marker"] == {"file": "2", "row": "0"} and saved["files_sent"] == sent
    second = Backfill(stack.runtime(), Options(stack.intake, invoker=invoker, inventory=location,
                                               checkpoint=checkpoint, resume=True)).run()
    assert second.complete and second.counts == {"files_sent": 2} and len(set(sent)) == len(sent) == 4
    assert json.loads(open(checkpoint).read())["files_sent"] == sent
    assert scf.wait_idle(60) and _worker_counts(scf) == {"submitted": 20}
    assert set(_jobs_per_key(stack).values()) == {1} and len(_jobs_per_key(stack)) == 20
