"""Cloud Monitor custom metrics (COSGUARD_MONITOR_ENABLED): the real functions on the local SCF send
each invocation's figures with PutMonitorData to a local Cloud Monitor that checks the TC3
signature; a refusing or failing Monitor never affects scanning. Never sent to Tencent."""
from __future__ import annotations

import io
import json
from typing import Any, Dict, List

import pytest

from cosguard.infra.config import Settings
from cosguard.infra.monitor import ATTEMPTS, MonitorReporter, tc3_headers
from cosguard.infra.retry import Backoff, Deadline, within
from cosguard.local.monitor import MonitorEmulator
from cosguard.local.samples import clean_text, eicar
from cosguard.local.scf import LocalScf
from cosguard.local.stack import LocalCloud
from helpers import CALLBACK_SECRET, quarantined_keys, unique_bucket


@pytest.fixture
def world():
    intake, jail = unique_bucket("intake"), unique_bucket("jail")
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    monitor = MonitorEmulator({cloud.credentials.secret_id: cloud.credentials.secret_key}).start()
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, COSGUARD_QUARANTINE_BUCKET=jail,
                             COSGUARD_BUCKETS=intake, COSGUARD_MONITOR_ENABLED="true",
                             COSGUARD_MONITOR_ENDPOINT=monitor.endpoint)
    yield cloud, monitor, env, intake, jail
    monitor.stop()
    cloud.stop()


def run(cloud, env, intake, **overrides: str) -> tuple:
    """Upload EICAR and a clean file through the local SCF; (scf, log lines) once all is settled."""
    logs = io.StringIO()
    scf = LocalScf(cloud, dict(env, **overrides), buckets=[intake], log_stream=logs).start()
    cos = cloud.client("cos")
    cos.put_object(Bucket=intake, Key="m/eicar.com", Body=eicar())
    cos.put_object(Bucket=intake, Key="m/notes.txt", Body=clean_text())
    assert scf.wait_idle(20)
    scf.stop()
    return scf, [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]


def summed(metrics: List[Dict[str, int]], name: str) -> int:
    return sum(m.get(name, 0) for m in metrics)


def test_every_invocation_sends_its_figures_signed(world):
    cloud, monitor, env, intake, jail = world
    scf, lines = run(cloud, env, intake)
    invocations = len(scf.scan.invocations) + len(scf.callback.invocations)
    assert len(monitor.received) == invocations and monitor.refused == []
    assert sorted(r["instance"] for r in monitor.received) == sorted(
        ["scan_on_upload"] * len(scf.scan.invocations) + ["quarantine_callback"] * len(scf.callback.invocations))
    sent = monitor.metrics()
    assert summed(sent, "cosguard_submitted") == 2
    assert (summed(sent, "cosguard_quarantined"), summed(sent, "cosguard_clean")) == (1, 1)
    assert summed(sent, "cosguard_viruses_found") == 1 and summed(sent, "cosguard_verdicts_settled") == 2
    # the same figures as the metrics lines
    logged = [line for line in lines if line["event"] == "metrics"]
    assert sorted(line["quarantined"] for line in logged) == sorted(m["cosguard_quarantined"] for m in sent)
    assert not any(line["event"] == "monitor_failed" for line in lines)


def test_a_refusing_monitor_is_one_warning_and_never_affects_scanning(world):
    cloud, monitor, env, intake, jail = world
    monitor.keys = {}   # the role's key unknown to Monitor: AuthFailure, not worth a retry
    scf, lines = run(cloud, env, intake)
    cos = cloud.client("cos")
    assert quarantined_keys(cos, jail, intake, "m/eicar.com") and not cos.object_exists(Bucket=intake, Key="m/eicar.com")
    assert all(i.ok for i in scf.scan.invocations + scf.callback.invocations)
    failed = [line for line in lines if line["event"] == "monitor_failed"]
    invocations = len(scf.scan.invocations) + len(scf.callback.invocations)
    assert len(failed) == invocations == len(monitor.refused)   # one attempt each, one warning each
    assert {line["reason"] for line in failed} == {"AuthFailure.SecretIdNotFound"}
    assert all(line["level"] == "WARNING" and cloud.credentials.secret_key not in json.dumps(line) for line in failed)
    assert monitor.received == []


def test_transient_failures_are_retried_while_time_remains(world):
    cloud, monitor, env, intake, jail = world
    monitor.faults = [503, "RequestLimitExceeded"]   # fewer than ATTEMPTS, whoever meets them
    scf, lines = run(cloud, env, intake)
    assert monitor.faults == [] and monitor.refused == ["RequestLimitExceeded"]
    invocations = len(scf.scan.invocations) + len(scf.callback.invocations)
    assert len(monitor.received) == invocations   # each invocation's figures arrived in the end
    assert not any(line["event"] == "monitor_failed" for line in lines)


def _settings(cloud, endpoint: str) -> Settings:
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, COSGUARD_MONITOR_ENDPOINT=endpoint)
    return Settings.from_env(env, require_callback_url=False)


def test_retries_stop_at_the_invocations_deadline(world):
    cloud, monitor, env, intake, jail = world
    monitor.faults = [503] * 10
    settings = _settings(cloud, monitor.endpoint)
    naps: List[float] = []
    reporter = MonitorReporter(settings, backoff=Backoff(base=5.0, cap=5.0, sleep=naps.append))
    reporter.backoff.rng.seed(7)
    with within(Deadline(2.0, margin=0.5)):
        assert reporter.send({"function": "scan_on_upload", "submitted": 1}, settings) is False
    # the pause drawn (up to 5 s) did not fit in what was left: no sleep past the deadline
    assert len(monitor.faults) >= 10 - ATTEMPTS and all(nap < 1.5 for nap in naps)
    with within(Deadline(0.2, margin=0.5)):   # nothing left: not even one request
        before = len(monitor.faults)
        assert reporter.send({"function": "scan_on_upload"}, settings) is False
        assert len(monitor.faults) == before


def test_the_local_monitor_refuses_what_is_not_signed_right(world):
    """The receiver's check is real: a wrong key, a changed payload and an old timestamp are refused."""
    import time

    import requests

    cloud, monitor, env, intake, jail = world
    host = monitor.endpoint.split("://", 1)[1]
    body = json.dumps({"Metrics": [{"MetricName": "cosguard_submitted", "Value": 1}]}).encode()
    creds = cloud.credentials

    def post(payload: bytes, headers: Dict[str, Any]) -> str:
        answer = requests.post(monitor.endpoint + "/", data=payload, headers=headers, timeout=5).json()
        return answer["Response"].get("Error", {}).get("Code", "")

    now = int(time.time())
    assert post(body, tc3_headers(creds.secret_id, creds.secret_key, host, body, now)) == ""
    assert post(body, tc3_headers(creds.secret_id, "not-the-key", host, body, now)) == "AuthFailure.SignatureFailure"
    tampered = body.replace(b"1}", b"9}")
    assert post(tampered, tc3_headers(creds.secret_id, creds.secret_key, host, body, now)) == "AuthFailure.SignatureFailure"
    old = now - 3600
    assert post(body, tc3_headers(creds.secret_id, creds.secret_key, host, body, old)) == "AuthFailure.SignatureExpire"
    assert len(monitor.received) == 1
