"""Callbacks: delivered to a local receiver in XML and JSON, retried with backoff, logged."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

from ci_helpers import FAST_RETRY
from ci_samples import BUCKET
from cosguard.local.ci import eicar_bytes
from cosguard.local.ci.callbacks import RetryPolicy


def submit(client, key: str, callback: str) -> str:
    return client.ci_auditing_virus_submit(Bucket=BUCKET, Key=key, Callback=callback)["JobsDetail"]["JobId"]


def test_xml_callback(ci, client, store, receiver):
    store.put(BUCKET, "eicar.com", eicar_bytes())
    job_id = submit(client, "eicar.com", receiver.url)
    [post] = receiver.wait_posts(1)
    assert post["headers"]["Content-Type"] == "application/xml"
    detail = ET.fromstring(post["body"]).find("JobsDetail")
    assert detail.findtext("JobId") == job_id
    assert (detail.findtext("State"), detail.findtext("Suggestion")) == ("Success", "block")
    assert detail.findtext("DetectDetail/Result/FileName") == "eicar.com"
    assert ci.wait_idle(5)
    [record] = ci.deliveries.for_job(job_id)
    assert (record.attempt, record.status, record.error, record.body_format, record.ok) == (
        1, 200, None, "xml", True)
    assert record.url == receiver.url


def test_json_callback(make_ci, make_client, store, receiver):
    ci = make_ci(callback_format="json")
    store.put(BUCKET, "clean.txt", b"fine")
    job_id = submit(make_client(ci), "clean.txt", receiver.url)
    [post] = receiver.wait_posts(1)
    assert post["headers"]["Content-Type"] == "application/json"
    detail = json.loads(post["body"])["JobsDetail"]
    assert set(detail) == {"Code", "Message", "JobId", "State", "CreationTime", "Object",
                           "Suggestion", "DetectDetail"}
    assert (detail["JobId"], detail["State"], detail["Suggestion"]) == (job_id, "Success", "normal")
    assert detail["DetectDetail"] == {"Result": []}
    assert ci.wait_idle(5) and ci.deliveries[0].body_format == "json"


def test_failed_jobs_call_back_too(ci, client, receiver):
    job_id = submit(client, "missing", receiver.url)
    [post] = receiver.wait_posts(1)
    detail = ET.fromstring(post["body"]).find("JobsDetail")
    assert (detail.findtext("JobId"), detail.findtext("State"), detail.findtext("Code")) == (
        job_id, "Failed", "ResourceNotFound")


def test_retried_after_a_500_with_backoff(ci, client, store, receiver):
    receiver.statuses = [500]
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    first, second = receiver.wait_posts(2)
    assert second["body"] == first["body"]
    assert second["time"] - first["time"] >= FAST_RETRY.delay(1) * 0.9
    assert ci.wait_idle(5)
    assert [(d.attempt, d.status) for d in ci.deliveries.for_job(job_id)] == [(1, 500), (2, 200)]


def test_retries_are_bounded(ci, client, store, receiver):
    receiver.statuses = [503] * 10
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    assert ci.wait_idle(5)
    assert len(receiver.posts()) == FAST_RETRY.max_attempts == 3
    assert [d.status for d in ci.deliveries.for_job(job_id)] == [503, 503, 503]


def test_connection_errors_are_retried_and_logged(ci, client, store, closed_port_url):
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", closed_port_url())
    assert ci.wait_idle(5)
    records = ci.deliveries.for_job(job_id)
    assert [d.attempt for d in records] == [1, 2, 3]
    assert all(d.status is None and "ConnectionError" in d.error for d in records)


def test_no_callback_no_delivery(ci, client, store):
    store.put(BUCKET, "k", b"x")
    client.ci_auditing_virus_submit(Bucket=BUCKET, Key="k")
    assert ci.wait_idle(5) and len(ci.deliveries) == 0


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(backoff=0.5, factor=2, max_backoff=3)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 3, 3]


def test_unknown_format_is_refused(make_ci):
    with pytest.raises(ValueError, match="callback_format"):
        make_ci(callback_format="yaml")


# -- callback faults --------------------------------------------------------------------------
def test_dropped_callback(ci, client, store, receiver):
    ci.faults.drop_callback_rate = 1
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    assert ci.wait_idle(5)   # nothing queued: the drop is recorded, no attempt is left to come
    assert receiver.posts() == []
    [record] = ci.deliveries.for_job(job_id)
    assert (record.fault, record.status, record.ok) == ("dropped", None, False)


def test_duplicated_callback(ci, client, store, receiver):
    ci.faults.duplicate_callback_rate = 1
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    first, second = receiver.wait_posts(2)
    assert first["body"] == second["body"]
    assert ci.wait_idle(5)
    assert sorted(d.duplicate for d in ci.deliveries.for_job(job_id)) == [False, True]


def test_delayed_callback(ci, client, store, receiver):
    ci.faults.callback_delay = 0.5
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    finished = ci.backend.wait_for(job_id, 5)
    assert finished.state == "Success"
    done_at = time.monotonic()
    assert receiver.posts() == []   # not yet: the delay is a lower bound, asserted below
    [post] = receiver.wait_posts(1)
    assert post["time"] - done_at >= 0.25
