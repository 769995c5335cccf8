"""The public callback URL: per-object, expiring tokens; one answer for every authentication
failure; bad bodies are 4xx, never a 5xx or a trace; tokens never logged."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from cosguard.domain.security import callback_url
from cosguard.local.samples import clean_text, eicar


def submitted(s, key, body):
    s.put(key, body)
    job_id = s.scan()["jobs"][key]
    s.settle()
    return job_id, s.cloud.ci.backend.jobs[job_id].callback


def with_query(url, **changes):
    parts = urlsplit(url)
    return parts._replace(query=urlencode(dict(parse_qsl(parts.query), **changes))).geturl()


def xml(job_id):
    return f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>".encode()


@pytest.fixture
def quiet(stack):
    s = stack()
    s.cloud.ci.faults.drop_callback_rate = 1.0  # verdicts wait for the requests the test sends
    return s


def test_every_authentication_failure_looks_the_same(quiet, capsys):
    s = quiet
    job_id, url = submitted(s, "up/evil.com", eicar())
    other_job, other_url = submitted(s, "up/other.com", eicar())
    query = dict(parse_qsl(urlsplit(url).query))
    expired = callback_url(s.callback_server.url, s.runtime.sealer, s.intake, query["ref"], int(time.time()) - 1)
    capsys.readouterr()
    attempts = {
        "bad token": with_query(url, token="f00d" * 16),
        "missing token": with_query(url, token=""),
        "unknown bucket": with_query(url, bucket="stranger-1250000000"),
        "expired": expired,
        "exp moved": with_query(url, exp=str(int(query["exp"]) + 3600)),
        "another object's URL": other_url,
    }
    answers = {name: requests.post(target, data=xml(job_id), timeout=5) for name, target in attempts.items()}
    assert {name: (a.status_code, a.json()) for name, a in answers.items()} == {
        name: (401, {"error": "unauthorized"}) for name in attempts}
    assert s.exists("up/evil.com") and s.tags("up/evil.com")["cosguard-status"] == "pending"
    logged = capsys.readouterr().out
    assert query["token"] not in logged and "f00d" * 16 not in logged
    # the genuine URL still works, for its own job only
    assert requests.post(url, data=xml(job_id), timeout=5).json()["outcome"] == "quarantined"
    assert requests.post(url, data=xml(other_job), timeout=5).status_code == 401
    assert s.exists("up/other.com")


def test_a_url_seen_by_an_uploader_cannot_drive_other_objects(quiet):
    s = quiet
    _, mine = submitted(s, "mine/clean.txt", clean_text())
    victim_job, _ = submitted(s, "victim/evil.com", eicar())
    answer = requests.post(mine, data=xml(victim_job), timeout=5)
    assert answer.status_code == 401
    assert s.tags("victim/evil.com")["cosguard-status"] == "pending"


DEEP_XML = b"<a>" * 50000 + b"</a>" * 50000


@pytest.mark.parametrize("body, status", [
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400),   # deeply nested JSON (was a RecursionError)
    (b"[" * 20000 + b"]" * 20000, 400),
    (DEEP_XML[:60000], 400),                           # unbalanced, deep XML
    (b"\xff\xfe not text", 400),
    (b"[1, 2, 3]", 400),
    (b'{"JobsDetail": {"JobId": ["ss1"]}}', 400),
    (b'{"JobsDetail": {"JobId": {"x": 1}}}', 400),
    (b"", 400),
    (b"<Response>" + b" " * (70 * 1024) + b"</Response>", 413),
], ids=["deep-json", "deep-array", "deep-xml", "binary", "json-list", "jobid-list", "jobid-object", "empty",
        "oversized"])
def test_malformed_bodies_with_a_valid_token_are_4xx_without_a_trace(quiet, capsys, body, status):
    s = quiet
    _, url = submitted(s, "up/any.txt", clean_text())
    capsys.readouterr()
    answer = requests.post(url, data=body, timeout=10)
    assert answer.status_code == status, answer.text
    assert "Traceback" not in answer.text
    logged = capsys.readouterr().out
    assert "Traceback" not in logged and '"level": "ERROR"' not in logged


def test_malformed_events_are_4xx(quiet):
    s = quiet
    _, url = submitted(s, "up/any.txt", clean_text())
    query = dict(parse_qsl(urlsplit(url).query))
    for event in ({"body": 42, "queryString": query, "httpMethod": "POST"},
                  {"body": "!!!", "isBase64Encoded": True, "queryString": query, "httpMethod": "POST"},
                  {"queryString": ["not", "a", "dict"], "httpMethod": "POST", "body": "x"},
                  "not even a dict"):
        answer = s.callback_handler(event, {"request_id": "r"})
        assert 400 <= answer["statusCode"] < 500, (event, answer)
        assert "Traceback" not in json.dumps(answer)
