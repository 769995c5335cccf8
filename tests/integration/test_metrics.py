"""One `metrics` line per invocation of each function, with that invocation's figures: uploads
through the COS emulator trigger the real functions on the local SCF, CI calls the callback
function's URL, the reconcile timer's function is invoked; their logs are read back."""
from __future__ import annotations

import io
import json
from typing import Any, Dict, List

import pytest

from cosguard.infra.metrics import COUNTERS
from cosguard.local.samples import clean_text, eicar
from cosguard.local.scf import Function
from helpers import local_scf_deployment


@pytest.fixture
def stack():
    with local_scf_deployment() as (cloud, scf, intake, jail, logs):
        yield cloud, scf, intake, logs


def metrics_lines(logs: io.StringIO, function: str) -> List[Dict[str, Any]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "metrics" and line["function"] == function]


def total(lines: List[Dict[str, Any]], field: str) -> int:
    return sum(line[field] for line in lines)


def test_each_invocation_logs_one_metrics_line_with_its_counts(stack):
    cloud, scf, intake, logs = stack
    cloud.ci.faults.stuck_jobs = {"in/slow.txt"}
    cos = cloud.client("cos")
    cos.put_object(Bucket=intake, Key="in/eicar.com", Body=eicar())
    cos.put_object(Bucket=intake, Key="in/notes.txt", Body=clean_text())
    cos.put_object(Bucket=intake, Key="in/slow.txt", Body=b"CI never finishes this one")
    assert scf.wait_idle(20)
    timer = Function("reconcile_pending", scf.env, log_stream=logs)
    sweep = timer.invoke({"Type": "Timer", "TriggerName": "reconcile"})
    timer.close()
    scf.stop()   # every instance's log lines forwarded

    scans = metrics_lines(logs, "scan_on_upload")
    assert len(scans) == len(scf.scan.invocations) == 3
    assert all(line["submitted"] == 1 and line["failed"] == 0 for line in scans)
    assert len({line["request_id"] for line in scans}) == 3   # one line per invocation, not per thread
    assert all(set(COUNTERS) <= set(line) for line in scans)   # every counter, zero or not

    callbacks = metrics_lines(logs, "quarantine_callback")
    assert len(callbacks) == len(scf.callback.invocations) >= 2
    assert (total(callbacks, "quarantined"), total(callbacks, "clean")) == (1, 1)
    assert total(callbacks, "viruses_found") == 1
    assert total(callbacks, "verdicts_settled") == 2
    settled = [line for line in callbacks if line["verdicts_settled"]]
    # upload -> verdict, on COS's one-second Last-Modified: within this test's run, never negative
    assert all(0 <= line["verdict_latency_max_ms"] < 60_000 for line in settled)
    assert all(line["duration_ms"] >= 0 and "pending_jobs" not in line for line in callbacks)

    [reconcile] = metrics_lines(logs, "reconcile_pending")
    assert sweep["pending"] == 1
    assert (reconcile["pending_jobs"], reconcile["pending"]) == (1, 1)   # the stuck job, re-queried
    assert 0 <= reconcile["oldest_pending_seconds"] < 60
    assert (reconcile["clean"], reconcile["quarantined"], reconcile["retried"]) == (0, 0, 0)


def test_an_invocation_that_raises_still_logs_its_line(stack):
    cloud, scf, intake, logs = stack
    cloud.ci.faults.error_rate = 1.0
    cloud.client("cos").put_object(Bucket=intake, Key="doomed.txt", Body=b"x")
    assert scf.wait_idle(20)
    scf.stop()
    scans = metrics_lines(logs, "scan_on_upload")
    assert [i.ok for i in scf.scan.invocations] == [False, False, False]   # SCF's async retries
    assert len(scans) == 3
    assert all(line["failed"] == 1 and line["error"] == 1 and line["submitted"] == 0 for line in scans)
