"""The local SCF runtime: COS events invoke scan_on_upload asynchronously in worker processes,
CI calls the callback function's URL, errors are retried like SCF's async retries."""
from __future__ import annotations

import json
import time

import pytest

from cosguard.local.samples import clean_text, eicar
from cosguard.local.scf import Function, FunctionError
from helpers import local_scf_deployment, quarantined_keys


@pytest.fixture
def stack():
    with local_scf_deployment() as (cloud, scf, intake, jail, logs):
        yield cloud, scf, intake, jail, logs


def test_upload_is_scanned_and_quarantined_without_calling_anything(stack):
    cloud, scf, intake, jail, logs = stack
    cos = cloud.client("cos")
    cos.put_object(Bucket=intake, Key="in/eicar.com", Body=eicar())
    cos.put_object(Bucket=intake, Key="in/notes.txt", Body=clean_text())
    assert scf.wait_idle(20)
    assert not cos.object_exists(Bucket=intake, Key="in/eicar.com")
    assert quarantined_keys(cos, jail, intake, "in/eicar.com")
    tags = cos.get_object_tagging(Bucket=intake, Key="in/notes.txt")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in tags}["cosguard-status"] == "clean"
    assert all(i.ok for i in scf.scan.invocations) and len(scf.scan.invocations) == 2
    assert len(scf.callback.invocations) >= 2
    logged = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    # the functions' JSON logs reach the log stream, one constant event name a line
    assert any(line["event"] == "record" and line["outcome"] == "submitted" for line in logged)
    assert scf.scan.peak_rss_kb() > 0


def test_a_raised_error_is_retried_like_scf_async_retries(stack):
    cloud, scf, intake, jail, logs = stack
    cloud.ci.faults.error_rate = 1.0
    cloud.client("cos").put_object(Bucket=intake, Key="retry.txt", Body=b"x")
    deadline = time.monotonic() + 10
    while not scf.scan.invocations and time.monotonic() < deadline:
        time.sleep(0.02)
    cloud.ci.faults.error_rate = 0.0
    assert scf.wait_idle(20)
    attempts = [(i.attempt, i.ok) for i in scf.scan.invocations]
    assert attempts[0] == (1, False) and attempts[-1][1] is True
    assert scf.invoker.failed == []


def test_events_exhausting_their_retries_are_kept(stack):
    cloud, scf, intake, jail, logs = stack
    cloud.ci.faults.error_rate = 1.0
    cloud.client("cos").put_object(Bucket=intake, Key="doomed.txt", Body=b"x")
    assert scf.wait_idle(20)
    assert [i.attempt for i in scf.scan.invocations] == [1, 2, 3]
    assert len(scf.invoker.failed) == 1 and "SubmissionError" in scf.invoker.failed[0]["error"]


def test_bad_configuration_fails_the_instance_at_init(stack):
    cloud, scf, intake, jail, logs = stack
    broken = Function("scan_on_upload", dict(scf.env, COSGUARD_CALLBACK_TOKEN="short"))
    with pytest.raises(FunctionError) as caught:
        broken.invoke({"Records": []})
    assert "ConfigError" in str(caught.value) and "COSGUARD_CALLBACK_TOKEN" in str(caught.value)
