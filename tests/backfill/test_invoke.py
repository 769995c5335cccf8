"""The fan-out seam: synthetic COS events in reference §3.4's shape, batching under SCF's async
event limit, and the production invoker's signed Invoke request, checked against a local receiver
(nothing here calls Tencent) and the signature against Tencent's documented worked example."""
from __future__ import annotations

import json

import pytest

from backfill_support import FakeScfApi
from cosguard.bulk.invoke import (
    MAX_ASYNC_EVENT_BYTES,
    InvokeError,
    ObjectRef,
    ScfInvoker,
    batch_events,
    synthetic_record,
    tc3_authorization,
)
from cosguard.infra.retry import Backoff
from cosguard.triggers.events import CosUploadEvent
from helpers import load_event

FIXED_CLOCK = 1700000000.0  # 2023-11-14T22:13:20Z


def _shape(value):
    """The structure of a JSON value: dict keys and value types, recursively."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_tc3_signature_matches_tencents_worked_example():
    # Tencent API 3.0 "Signature v3" page: CVM DescribeInstances, its example keys and timestamp.
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    authorization = tc3_authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                                      service="cvm", host="cvm.tencentcloudapi.com", payload=payload,
                                      timestamp=1551113065)
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_synthetic_records_have_the_cos_trigger_shape_and_parse_back():
    documented = load_event("cos_put.json")["Records"][0]
    refs = [ObjectRef("photos-1250000000", "dir/a file 文件 100%25.txt", 12),
            ObjectRef("photos-1250000000", "v.bin", 3, version_id="MTg0NDUxNzc2ODQ2NjM4NDY0NDE")]
    records = [synthetic_record(ref, "ap-guangzhou", function="scan-on-upload-prod-cosguard", now=FIXED_CLOCK)
               for ref in refs]
    assert _shape(records[0]) == _shape(documented)
    assert records[0]["cos"]["cosBucket"] == {"region": "gz", "name": "photos", "appid": "1250000000"}
    assert records[0]["event"]["eventQueue"] == \
        "qcs:0:lambda:gz:appid/1250000000:default.scan-on-upload-prod-cosguard.$LATEST"
    parsed = list(CosUploadEvent({"Records": records}).records)
    assert [(r.bucket, r.key_candidates[0], r.version_id, r.size) for r in parsed] == [
        ("photos-1250000000", "dir/a file 文件 100%25.txt", None, 12),   # the literal key is tried first
        ("photos-1250000000", "v.bin", "MTg0NDUxNzc2ODQ2NjM4NDY0NDE", 3)]


def test_batches_respect_the_record_count_and_the_async_event_size():
    records = [synthetic_record(ObjectRef("b-1250000000", f"k{i}", 1), "ap-guangzhou") for i in range(250)]
    assert [len(e["Records"]) for e in batch_events(records, 100)] == [100, 100, 50]
    long_keys = [synthetic_record(ObjectRef("b-1250000000", f"{i}/" + "x" * 900, 1), "ap-guangzhou")
                 for i in range(200)]
    events = batch_events(long_keys, 100)
    assert sum(len(e["Records"]) for e in events) == 200 and len(events) > 2
    assert all(len(json.dumps(e, ensure_ascii=False).encode()) <= MAX_ASYNC_EVENT_BYTES for e in events)


@pytest.fixture
def api():
    receiver = FakeScfApi("AKIDtest", "test-secret-key")
    yield receiver
    receiver.close()


def _invoker(api, **kwargs):
    return ScfInvoker("AKIDtest", "test-secret-key", "ap-guangzhou", "scan-on-upload-prod-cosguard",
                      endpoint=api.endpoint, clock=lambda: FIXED_CLOCK,
                      backoff=Backoff(sleep=lambda seconds: None), **kwargs)


def test_invoke_request_is_an_async_signed_scf_invoke(api):
    event = {"Records": [synthetic_record(ObjectRef("b-1250000000", "k", 1), "ap-guangzhou")]}
    request_id = _invoker(api, token="session-token", namespace="prod").invoke(event)
    assert request_id
    [request] = api.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/" and request["signature_ok"]
    assert headers["x-tc-action"] == "Invoke" and headers["x-tc-version"] == "2018-04-16"
    assert headers["x-tc-timestamp"] == "1700000000" and headers["x-tc-region"] == "ap-guangzhou"
    assert headers["x-tc-token"] == "session-token"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["authorization"].startswith(
        "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/scf/tc3_request, SignedHeaders=content-type;host, ")
    body = json.loads(request["body"])
    assert {k: body[k] for k in ("FunctionName", "InvocationType", "Namespace")} == {
        "FunctionName": "scan-on-upload-prod-cosguard", "InvocationType": "Event", "Namespace": "prod"}
    assert json.loads(body["ClientContext"]) == event


def test_throttling_is_retried_and_a_permanent_error_is_not(api):
    api.script = [{"Code": "RequestLimitExceeded", "Message": "slow down"}] * 2
    assert _invoker(api).invoke({"Records": []})
    assert len(api.requests) == 3

    api.script = [{"Code": "ResourceNotFound.Function", "Message": "no such function"}]
    with pytest.raises(InvokeError) as failed:
        _invoker(api).invoke({"Records": []})
    assert "ResourceNotFound.Function" in str(failed.value) and not failed.value.retryable
    assert len(api.requests) == 4


def test_a_wrong_key_is_refused_by_the_receiver(api):
    wrong = ScfInvoker("AKIDtest", "not-the-key", "ap-guangzhou", "f", endpoint=api.endpoint, attempts=1)
    with pytest.raises(InvokeError) as refused:
        wrong.invoke({"Records": []})
    assert "AuthFailure.SignatureFailure" in str(refused.value)
    assert api.requests[-1]["signature_ok"] is False
