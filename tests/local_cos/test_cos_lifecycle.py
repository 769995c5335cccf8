"""Bucket lifecycle through the SDK, as COS answers it (doc 436/8280: a PUT replaces the whole
configuration). The local COS stores rules; it does not run them (docs/cos-parity.md)."""
from __future__ import annotations

import pytest
from qcloud_cos import CosServiceError

RULES = [{"ID": "cosguard-closed-abc", "Filter": {"Prefix": ".cosguard/closed/"}, "Status": "Enabled",
          "Expiration": {"Days": 180}},
         {"ID": "cosguard-noncurrent-abc", "Filter": {"Prefix": ".cosguard/"}, "Status": "Enabled",
          "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]


def test_a_bucket_without_rules_answers_404_no_such_lifecycle_configuration(client, bucket):
    with pytest.raises(CosServiceError) as refused:
        client.get_bucket_lifecycle(Bucket=bucket)
    assert refused.value.get_status_code() == 404
    assert refused.value.get_error_code() == "NoSuchLifecycleConfiguration"


def test_rules_put_are_read_back_and_a_put_replaces_them_all(client, bucket):
    client.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rule": RULES})
    read = client.get_bucket_lifecycle(Bucket=bucket)["Rule"]
    assert [(r["ID"], r["Filter"]["Prefix"], r["Status"]) for r in read] == \
        [(r["ID"], r["Filter"]["Prefix"], r["Status"]) for r in RULES]
    assert read[0]["Expiration"]["Days"] == "180"
    assert read[1]["NoncurrentVersionExpiration"]["NoncurrentDays"] == "1"
    client.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rule": RULES[:1]})
    rules = client.get_bucket_lifecycle(Bucket=bucket)["Rule"]
    assert [r["ID"] for r in (rules if isinstance(rules, list) else [rules])] == ["cosguard-closed-abc"]


def test_delete_removes_the_configuration(client, bucket):
    client.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rule": RULES})
    client.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(CosServiceError) as refused:
        client.get_bucket_lifecycle(Bucket=bucket)
    assert refused.value.get_error_code() == "NoSuchLifecycleConfiguration"


def test_a_missing_bucket_answers_no_such_bucket(client):
    with pytest.raises(CosServiceError) as refused:
        client.get_bucket_lifecycle(Bucket="absent-1250000000")
    assert (refused.value.get_status_code(), refused.value.get_error_code()) == (404, "NoSuchBucket")
