"""Bucket CORS as browsers meet it: rules set with the SDK's put_bucket_cors, preflights and
actual answers checked with raw requests (no SDK sends OPTIONS)."""
from __future__ import annotations

import pytest
import requests

from cos_helpers import signed

HOST = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
RULES = {"CORSRule": [
    {"ID": "app", "AllowedOrigin": ["http://*.example.com"], "AllowedMethod": ["PUT", "GET"],
     "AllowedHeader": ["content-type", "x-cos-*", "authorization"],
     "ExposeHeader": ["ETag", "x-cos-request-id"], "MaxAgeSeconds": 600},
    {"ID": "read", "AllowedOrigin": ["*"], "AllowedMethod": ["GET", "HEAD"], "AllowedHeader": ["*"]},
]}


def preflight(cos, origin, method, headers="", path="/upload.bin"):
    sent = {"Host": HOST, "Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(f"{cos.endpoint}{path}", headers=sent)


@pytest.fixture
def with_rules(client, bucket):
    client.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    return client


def test_without_cors_rules_a_preflight_is_refused_403(cos):
    answer = preflight(cos, "http://app.example.com", "PUT")
    assert answer.status_code == 403
    assert b"<Code>AccessForbidden</Code>" in answer.content
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_matching_preflight_is_allowed_without_a_signature(cos, with_rules):
    answer = preflight(cos, "http://app.example.com", "PUT", "Content-Type, x-cos-meta-a")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == "http://app.example.com"
    assert answer.headers["Access-Control-Allow-Methods"] == "PUT,GET"
    assert answer.headers["Access-Control-Allow-Headers"].lower() == "content-type,x-cos-meta-a"
    assert answer.headers["Access-Control-Expose-Headers"] == "ETag,x-cos-request-id"
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert cos.counters["OptionsObject"] == 1


@pytest.mark.parametrize("origin,method,headers", [
    ("http://evil.test", "PUT", ""),                         # origin matches no rule
    ("http://app.example.com", "DELETE", ""),                # method not allowed
    ("http://app.example.com", "PUT", "x-evil-header"),      # a requested header not allowed
    ("https://app.example.com", "PUT", ""),                  # the scheme is part of the origin
])
def test_a_preflight_no_rule_allows_is_refused(cos, with_rules, origin, method, headers):
    answer = preflight(cos, origin, method, headers)
    assert answer.status_code == 403
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)


def test_a_wildcard_rule_answers_star(cos, with_rules):
    answer = preflight(cos, "http://anyone.test", "GET", "range")
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_for_a_missing_bucket_is_404(cos):
    answer = requests.options(f"{cos.endpoint}/x", headers={
        "Host": "nobucket-1250000000.cos.ap-guangzhou.myqcloud.com", "Origin": "http://a.test",
        "Access-Control-Request-Method": "PUT"})
    assert answer.status_code == 404 and b"NoSuchBucket" in answer.content


def test_actual_answers_carry_the_rules_headers(cos, with_rules, bucket):
    with_rules.put_object(Bucket=bucket, Key="k", Body=b"v")
    allowed = signed(with_rules, cos, "GET", bucket, "k", headers={"Origin": "http://a.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://a.example.com"
    assert "ETag" in allowed.headers["Access-Control-Expose-Headers"]
    refused = signed(with_rules, cos, "PUT", bucket, "k", data=b"w",
                     headers={"Origin": "http://evil.test"})
    assert refused.status_code == 200   # served; the browser withholds it from the page
    assert "Access-Control-Allow-Origin" not in refused.headers
    error = signed(with_rules, cos, "GET", bucket, "missing", headers={"Origin": "http://a.example.com"})
    assert error.status_code == 404   # errors are readable by an allowed page too
    assert error.headers["Access-Control-Allow-Origin"] == "http://a.example.com"


def test_get_bucket_cors_returns_the_rules(with_rules, bucket):
    rules = with_rules.get_bucket_cors(Bucket=bucket)["CORSRule"]
    assert [r["ID"] for r in rules] == ["app", "read"]
