"""Fan-out: batches of synthetic COS events handed to scan_on_upload on the local SCF runtime
(worker processes, async queue), which scans them through the same path as real uploads."""
from __future__ import annotations

import collections
import json

import pytest

from backfill_support import FakeScfApi, mixed
from cosguard.bulk.backfill import Backfill, Options
from cosguard.bulk.invoke import LocalInvoker
from cosguard.local.scf import LocalScf


@pytest.fixture
def scf(stack):
    runtime = LocalScf(stack.cloud, stack.env, buckets=[], retry_delays=(0.2, 0.2)).start()  # no COS trigger
    yield runtime
    runtime.stop()


def _check_everything_scanned(stack, scf, items, already=()):
    assert scf.wait_idle(60)
    assert scf.invoker.failed == [] and all(i.ok for i in scf.scan.invocations)
    jobs = collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())
    assert set(jobs) == {k for k, _ in items} and set(jobs.values()) == {1}   # one job per object
    infected = sorted(k for k, _ in items if k.endswith(".com"))
    # quarantine keys are <prefix><source bucket>/<job id>/<original key>
    assert sorted(k.split("/", 3)[3] for k in stack.keys(stack.jail, "quarantine/")) == sorted(infected)
    assert all(k.startswith(f"quarantine/{stack.intake}/ss") for k in stack.keys(stack.jail, "quarantine/"))
    for key, _ in items:
        if not key.endswith(".com"):
            assert stack.tags(key)["cosguard-status"] == "clean", key


def test_fan_out_through_the_local_scf_runtime_scans_every_object(stack, scf):
    items = mixed(60, infected_every=30)
    stack.seed(items)
    runtime = stack.runtime()
    for key, _ in items[:7]:  # scanned before: not sent again
        assert runtime.scanner.scan_object(stack.intake, [key]).outcome.value == "submitted"
    sent = []
    invoker = LocalInvoker(lambda event: (sent.append(event), scf.invoker.enqueue(event)))

    report = Backfill(runtime, Options(stack.intake, invoker=invoker, batch_size=20, page_size=40)).run()

    assert report.mode == "fan-out" and report.complete
    assert report.counts == {"already_scanned": 7, "sent": 53}
    assert report.invocations == 3 == len(sent)                 # pages of 33 and 20 records: 20+13, 20
    assert [len(e["Records"]) for e in sent] == [20, 13, 20]
    assert {r["event"]["reservedInfo"] for e in sent for r in e["Records"]} == {"cosguard-backfill"}
    _check_everything_scanned(stack, scf, items)
    assert sum(i.result["records"] for i in scf.scan.invocations) == 53


def test_cli_fan_out_signs_scf_invoke_and_the_events_get_scanned(stack, scf, tmp_path):
    items = mixed(40, infected_every=20)
    stack.seed(items)
    api = FakeScfApi(stack.env["TENCENTCLOUD_SECRETID"], stack.env["TENCENTCLOUD_SECRETKEY"],
                     forward=scf.invoker.enqueue)
    try:
        done = stack.cli(tmp_path, "--fan-out", "--function", "scan-on-upload-prod-cosguard",
                         "--batch-size", "10", "--scf-endpoint", api.endpoint, "--json")
    finally:
        api.close()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"] == {"sent": 40} and report["invocations"] == 4
    assert len(api.requests) == 4 and all(r["signature_ok"] for r in api.requests)
    bodies = [json.loads(r["body"]) for r in api.requests]
    assert {(b["FunctionName"], b["InvocationType"]) for b in bodies} == {("scan-on-upload-prod-cosguard", "Event")}
    _check_everything_scanned(stack, scf, items)


def test_cli_fan_out_reports_refused_invocations_and_exits_1(stack, tmp_path):
    stack.seed(mixed(5))
    api = FakeScfApi(stack.env["TENCENTCLOUD_SECRETID"], "a-different-key")
    try:
        done = stack.cli(tmp_path, "--fan-out", "--function", "f", "--scf-endpoint", api.endpoint, "--json")
    finally:
        api.close()
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["counts"] == {"error": 5} and report["invocations"] == 0
    assert "AuthFailure.SignatureFailure" in report["errors"][0]["reason"]
