"""Fault knobs and counters: per instance, visible to the SDK as CI's own failures would be."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
from qcloud_cos.cos_exception import CosServiceError

from ci_helpers import scan
from ci_samples import BUCKET
from cosguard.local.ci import Faults


def submit_error(client, key="k"):
    with pytest.raises(CosServiceError) as caught:
        client.ci_auditing_virus_submit(Bucket=BUCKET, Key=key)
    return caught.value.get_status_code(), caught.value.get_error_code()


def test_error_rate_gives_the_sdk_500(ci, client, store):
    store.put(BUCKET, "k", b"x")
    ci.faults.error_rate = 1
    assert submit_error(client) == (500, "InternalError")
    assert ci.counters.statuses("SubmitVirusJob") == {500: 1}
    assert ci.backend.jobs == {}


def test_throttling_is_503_slowdown_and_the_sdk_retries_it(ci, make_client, store):
    store.put(BUCKET, "k", b"x")
    ci.faults.throttle_rate = 1
    assert submit_error(make_client(ci, retry=1)) == (503, "SlowDown")
    assert ci.counters["SubmitVirusJob"] == 2  # the SDK retried the 5xx once


def test_rates_are_rates(make_ci, make_client, store):
    ci = make_ci(fault_seed=1234)
    client = make_client(ci)
    store.put(BUCKET, "k", b"x")
    ci.faults.error_rate = 0.5
    for _ in range(40):
        try:
            client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
        except CosServiceError:
            pass
    statuses = ci.counters.statuses("SubmitVirusJob")
    assert set(statuses) == {200, 500} and 8 <= statuses[500] <= 32
    assert len(ci.backend.jobs) == statuses[200]


def test_latency(ci, client, store):
    store.put(BUCKET, "k", b"x")
    ci.faults.latency_ms = 300
    started = time.monotonic()
    client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
    assert time.monotonic() - started >= 0.3


def test_counters_per_api(ci, client, store):
    store.put(BUCKET, "k", b"x")
    scan(client, "k")
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["JobId"]
    client.ci_auditing_virus_query(Bucket=BUCKET, JobID=job_id)
    snapshot = ci.counters.snapshot()
    assert snapshot["SubmitVirusJob"] == 2 and snapshot["QueryVirusJob"] >= 2
    assert ci.counters["NoSuchApi"] == 0
    ci.counters.reset()
    assert ci.counters.snapshot() == {} and ci.counters["SubmitVirusJob"] == 0


def test_all_jobs_stuck(make_ci, make_client, store):
    ci = make_ci(scan_delay=0.01)
    client = make_client(ci)
    ci.faults.stuck_jobs = True
    store.put(BUCKET, "k", b"x")
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["JobId"]
    assert ci.wait_idle(5)  # a stuck job counts as settled: held, with no scan scheduled
    assert ci.backend.jobs[job_id].stuck
    assert client.ci_auditing_virus_query(Bucket=BUCKET, JobID=job_id)["JobsDetail"]["State"] == "Auditing"


def test_some_jobs_stuck(ci, client, store):
    store.put(BUCKET, "stuck", b"x")
    store.put(BUCKET, "fine", b"x")
    ci.faults.stuck_jobs = {"stuck"}
    stuck = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="stuck")["JobsDetail"]["JobId"]
    fine = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="fine")["JobsDetail"]["JobId"]
    assert ci.wait_idle(5)
    states = {job_id: job.state for job_id, job in ci.backend.jobs.items()}
    assert states == {stuck: "Auditing", fine: "Success"}


def test_faults_belong_to_one_instance(make_ci, make_client, store):
    first, second = make_ci(), make_ci()
    store.put(BUCKET, "k", b"x")
    first.faults.error_rate = 1
    assert submit_error(make_client(first))[0] == 500
    assert make_client(second).ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
    assert "error_rate" not in vars(Faults)
    assert (first.counters["SubmitVirusJob"], second.counters["SubmitVirusJob"]) == (1, 1)


def test_knobs_are_validated_and_cleared():
    faults = Faults()
    with pytest.raises(ValueError):
        faults.error_rate = 1.5
    with pytest.raises(ValueError):
        faults.callback_delay = -1
    with pytest.raises(AttributeError):
        faults.configure(eror_rate=0.5)
    faults.configure(error_rate=0.25, stuck_jobs={"k"}, latency_ms=5)
    assert (faults.error_rate, faults.is_stuck("k"), faults.is_stuck("j")) == (0.25, True, False)
    faults.clear()
    assert (faults.error_rate, faults.latency_ms, faults.stuck_jobs) == (0.0, 0, False)


def test_reset_is_a_clean_slate(ci, client, store, receiver):
    store.put(BUCKET, "k", b"x")
    client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k", Callback=receiver.url)
    assert ci.wait_idle(5)
    ci.faults.error_rate = 1
    ci.reset()
    assert (ci.backend.jobs, len(ci.deliveries), ci.counters.snapshot(), ci.faults.error_rate) == (
        {}, 0, {}, 0.0)


def test_unbound_bucket_is_a_permanent_4xx(ci, make_client, store):
    store.put(BUCKET, "k", b"x")
    client = make_client(ci, retry=2)
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")["JobsDetail"]["JobId"]
    ci.faults.unbound_buckets.add(BUCKET)
    assert submit_error(client) == (400, "BucketNotBound")
    with pytest.raises(CosServiceError) as caught:
        client.ci_auditing_virus_query(Bucket=BUCKET, JobID=job_id)
    assert caught.value.get_error_code() == "BucketNotBound"
    assert ci.counters["SubmitVirusJob"] == 2  # the SDK does not retry a 4xx
    ci.faults.clear()
    assert ci.faults.unbound_buckets == set()


def finished_answer(ci, client, key: str) -> dict:
    """Submit `key`, wait for the job to end in the backend, and read its answer via the SDK."""
    job_id = client.ci_auditing_virus_submit(Bucket=BUCKET, Key=key)["JobsDetail"]["JobId"]
    ci.backend.wait_for(job_id, 5)
    return client.ci_auditing_virus_query(Bucket=BUCKET, JobID=job_id)["JobsDetail"]


@pytest.mark.parametrize("overrides", [
    {"State": "Weird"}, {"State": "Failed"}, {"Suggestion": "review"}, {"Suggestion": ""},
    {"Suggestion": "BLOCK"}, {"Suggestion": "Normal"}, {"Object": "another/key"}])
def test_answer_overrides_replace_a_finished_jobs_fields(ci, client, store, overrides):
    store.put(BUCKET, "k", b"clean bytes")
    ci.faults.answer_overrides["k"] = overrides
    detail = finished_answer(ci, client, "k")
    expected = {"State": "Success", "Suggestion": "normal", "Object": "k", **overrides}
    assert {name: detail.get(name) or "" for name in expected} == expected


@pytest.mark.parametrize("field", ["State", "Suggestion", "Object"])
def test_answer_overrides_leave_a_field_out(ci, client, store, field):
    store.put(BUCKET, "k", b"clean bytes")
    ci.faults.answer_overrides["k"] = {field: None}
    detail = finished_answer(ci, client, "k")
    assert field not in detail and detail["JobId"]


def test_answer_overrides_reach_the_callback_and_only_their_key(ci, client, store, receiver):
    store.put(BUCKET, "k", b"clean bytes")
    store.put(BUCKET, "other", b"clean bytes")
    ci.faults.answer_overrides["k"] = {"Suggestion": "review", "State": None}
    for key in ("k", "other"):
        client.ci_auditing_virus_submit(Bucket=BUCKET, Key=key, Callback=receiver.url)
    details = {}
    for post in receiver.wait_posts(2):
        detail = ET.fromstring(post["body"]).find("JobsDetail")
        details[detail.findtext("Object")] = (detail.findtext("State"), detail.findtext("Suggestion"))
    assert details == {"k": (None, "review"), "other": ("Success", "normal")}
    ci.faults.clear()
    assert ci.faults.answer_overrides == {}
