"""PostObject: a browser form upload signed by a policy, which also fires the COS trigger."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from cosguard.local.cos.postobject import policy_signature

HOST = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"


def form(cos, key="uploads/${filename}", conditions=None, secret_key=None, expires_in=600,
         extra=None):
    """The fields a browser would post, signed like COS's PostObject docs say."""
    expiration = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
    now = int(time.time())
    key_time = f"{now - 60};{now + 600}"
    policy = json.dumps({
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": conditions if conditions is not None else [
            {"bucket": "examplebucket-1250000000"}, ["starts-with", "$key", "uploads/"],
            ["content-length-range", 1, 1024]],
    })
    fields = {
        "key": key,
        "policy": base64.b64encode(policy.encode()).decode(),
        "q-sign-algorithm": "sha1",
        "q-ak": cos.credentials.secret_id,
        "q-key-time": key_time,
        "q-signature": policy_signature(secret_key or cos.credentials.secret_key, key_time, policy),
        "Content-Type": "text/plain",
        "x-cos-meta-source": "browser",
    }
    fields.update(extra or {})
    return fields


def post(cos, fields, content=b"posted body", filename="note.txt"):
    return requests.post(f"{cos.endpoint}/", headers={"Host": HOST}, data=fields,
                         files={"file": (filename, content)})


def test_post_object_stores_the_file_and_fires_a_post_event(cos, client, bucket):
    events = []
    cos.subscribe(events.append)
    response = post(cos, form(cos))
    assert response.status_code == 204
    assert response.headers["x-cos-request-id"]
    assert response.headers["ETag"]
    head = client.head_object(Bucket=bucket, Key="uploads/note.txt")
    assert head["x-cos-meta-source"] == "browser"
    assert head["Content-Type"] == "text/plain"
    assert cos.store.get(bucket, "uploads/note.txt").open().read() == b"posted body"
    cos.drain(5)
    record = events[0]["Records"][0]
    assert record["event"]["eventName"] == "cos:ObjectCreated:Post"
    assert record["cos"]["cosObject"]["key"] == "/1250000000/examplebucket/uploads/note.txt"
    assert record["cos"]["cosObject"]["meta"]["x-cos-meta-source"] == "browser"
    assert cos.counters["PostObject"] == 1


def test_post_object_201_answers_with_xml(cos):
    response = post(cos, form(cos, extra={"success_action_status": "201"}))
    assert response.status_code == 201
    assert b"<Key>uploads/note.txt</Key>" in response.content
    assert b"<Bucket>examplebucket-1250000000</Bucket>" in response.content


@pytest.mark.parametrize("change,code", [
    (dict(secret_key="wrong-secret"), "SignatureDoesNotMatch"),
    (dict(expires_in=-60), "AccessDenied"),
    (dict(key="elsewhere/${filename}"), "AccessDenied"),
])
def test_post_object_refuses_bad_signature_expired_policy_and_broken_conditions(cos, bucket,
                                                                                   change, code):
    response = post(cos, form(cos, **change))
    assert response.status_code == 403
    assert f"<Code>{code}</Code>".encode() in response.content
    assert b"<RequestId>" in response.content
    assert cos.store.find(bucket, "uploads/note.txt") is None
    assert cos.store.find(bucket, "elsewhere/note.txt") is None


def test_post_object_enforces_content_length_range(cos, bucket):
    response = post(cos, form(cos), content=b"x" * 2000)
    assert response.status_code == 400
    assert cos.store.find(bucket, "uploads/note.txt") is None
