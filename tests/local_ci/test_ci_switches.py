"""The local CI's switches for what CI does not document about virus callbacks (docs/tencent-facts.md):
body format, signed or not, retried or not. Each position through the SDK and a real receiver, set at
construction, from the environment, or on the running instance."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ci_samples import BUCKET
from cosguard.local.auth import SignatureError, verify
from cosguard.local.ci import LocalCi, eicar_bytes


def submit(client, key: str, callback: str) -> str:
    return client.ci_auditing_virus_submit(Bucket=BUCKET, Key=key, Callback=callback)["JobsDetail"]["JobId"]


@pytest.mark.parametrize("body_format", ["xml", "json"])
def test_callback_format_set_on_the_running_instance(ci, client, store, receiver, body_format):
    ci.callback_format = body_format
    store.put(BUCKET, "eicar.com", eicar_bytes())
    job_id = submit(client, "eicar.com", receiver.url)
    [post] = receiver.wait_posts(1)
    if body_format == "xml":
        assert post["headers"]["Content-Type"] == "application/xml"
        assert ET.fromstring(post["body"]).findtext("JobsDetail/JobId") == job_id
    else:
        assert post["headers"]["Content-Type"] == "application/json"
        assert json.loads(post["body"])["JobsDetail"]["JobId"] == job_id
    assert ci.wait_idle(5) and ci.deliveries.for_job(job_id)[0].body_format == body_format


def test_an_unknown_callback_format_is_refused(ci):
    with pytest.raises(ValueError):
        ci.callback_format = "yaml"
    assert ci.callback_format == "xml"


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_callback_signed(make_ci, make_client, store, receiver, credentials, signed):
    ci = make_ci(callback_signed=signed)
    assert ci.callback_signed is signed
    store.put(BUCKET, "clean.txt", b"fine")
    submit(make_client(ci), "clean.txt", receiver.url + "?token=abc%2Fdef")
    [post] = receiver.wait_posts(1)
    headers = post["headers"]
    if not signed:
        assert "Authorization" not in headers
        return
    assert headers["Authorization"].startswith("q-sign-algorithm=sha1&q-ak=" + credentials.secret_id)
    # COS's request signature (doc 436/7778), checked as the local COS checks a request's
    verify(credentials, "POST", "/callback", {"token": "abc/def"}, headers)
    with pytest.raises(SignatureError):
        verify(credentials, "POST", "/callback", {"token": "forged"}, headers)


def test_callback_signed_switched_on_a_running_instance(ci, client, store, receiver):
    assert ci.callback_signed is False   # the default: CI documents no signature on callbacks
    ci.callback_signed = True
    store.put(BUCKET, "k", b"x")
    submit(client, "k", receiver.url)
    [post] = receiver.wait_posts(1)
    assert "q-signature=" in post["headers"]["Authorization"]


@pytest.mark.parametrize("retries", [0, 2])
def test_callback_retries(make_ci, make_client, store, receiver, retries):
    ci = make_ci(callback_retries=retries)
    assert ci.callback_retries == retries
    receiver.statuses = [500] * 10
    store.put(BUCKET, "k", b"x")
    job_id = submit(make_client(ci), "k", receiver.url)
    assert ci.wait_idle(10)
    assert [d.status for d in ci.deliveries.for_job(job_id)] == [500] * (retries + 1)
    assert len(receiver.posts()) == retries + 1


def test_callback_retries_set_on_a_running_instance(ci, client, store, receiver):
    ci.callback_retries = 1
    receiver.statuses = [500]
    store.put(BUCKET, "k", b"x")
    job_id = submit(client, "k", receiver.url)
    assert ci.wait_idle(10)
    assert [(d.attempt, d.status) for d in ci.deliveries.for_job(job_id)] == [(1, 500), (2, 200)]
    with pytest.raises(ValueError):
        ci.callback_retries = -1


def test_defaults_are_the_worse_answers_and_the_environment_sets_them(monkeypatch, store, credentials):
    plain = LocalCi(store=store, credentials=credentials)
    try:
        assert (plain.callback_format, plain.callback_signed, plain.callback_retries) == ("xml", False, 0)
    finally:
        plain.stop()
    monkeypatch.setenv("COSGUARD_LOCAL_CALLBACK_FORMAT", "json")
    monkeypatch.setenv("COSGUARD_LOCAL_CALLBACK_SIGNED", "1")
    monkeypatch.setenv("COSGUARD_LOCAL_CALLBACK_RETRIES", "3")
    switched = LocalCi(store=store, credentials=credentials)
    try:
        assert (switched.callback_format, switched.callback_signed, switched.callback_retries) == ("json", True, 3)
    finally:
        switched.stop()
    monkeypatch.setenv("COSGUARD_LOCAL_CALLBACK_RETRIES", "many")
    with pytest.raises(ValueError, match="callback_retries"):
        LocalCi(store=store, credentials=credentials)
