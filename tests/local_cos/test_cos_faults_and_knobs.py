"""Fault knobs, counters, simulated sizes and the isolation of LocalCos instances."""
from __future__ import annotations

import time

import pytest
from qcloud_cos import CosS3Client, CosServiceError

from cosguard.local.cos import LocalCos


def test_deny_answers_403_for_the_named_operations_only(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="readable", Body=b"r")
    cos.faults.deny(bucket, operations={"PutObject", "CopyObject"})
    with pytest.raises(CosServiceError) as put:
        client.put_object(Bucket=bucket, Key="blocked", Body=b"x")
    with pytest.raises(CosServiceError) as copy:
        client.copy_object(Bucket=bucket, Key="blocked2", CopySource={
            "Bucket": bucket, "Key": "readable", "Region": cos.region})
    assert read(client, bucket, "readable") == b"r"          # GetObject still allowed
    assert (put.value.get_status_code(), put.value.get_error_code()) == (403, "AccessDenied")
    assert copy.value.get_status_code() == 403
    assert cos.store.find(bucket, "blocked") is None
    cos.faults.clear()
    client.put_object(Bucket=bucket, Key="blocked", Body=b"now fine")
    assert read(client, bucket, "blocked") == b"now fine"


def test_deny_without_operations_blocks_the_whole_bucket(cos, client, bucket):
    cos.create_bucket("open-1250000000")
    cos.faults.deny(bucket)
    with pytest.raises(CosServiceError) as err:
        client.list_objects(Bucket=bucket)
    assert err.value.get_status_code() == 403
    client.put_object(Bucket="open-1250000000", Key="k", Body=b"x")   # other buckets unaffected


def test_deny_key_answers_403_for_that_one_object_only(cos, client, bucket):
    """As a bucket policy denying one resource: the rest of the bucket answers as usual."""
    client.put_object(Bucket=bucket, Key="secret.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="open.json", Body=b"[]")
    cos.faults.deny_key(bucket, "secret.json", operations={"GetObject"})
    with pytest.raises(CosServiceError) as err:
        client.get_object(Bucket=bucket, Key="secret.json")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (403, "AccessDenied")
    assert read(client, bucket, "open.json") == b"[]"
    assert client.head_object(Bucket=bucket, Key="secret.json")["Content-Length"] == "2"  # HEAD not named
    cos.faults.allow(bucket)
    assert read(client, bucket, "secret.json") == b"{}"


def test_deny_rejects_unknown_operation_names(cos, bucket):
    with pytest.raises(ValueError):
        cos.faults.deny(bucket, operations={"PutObjects"})


def test_before_runs_a_callback_once_just_before_the_first_matching_request(cos, client, bucket):
    """Another client's write lands between a caller's check and its copy, with no sleep: the copy
    reads what the callback wrote, and the hook is spent."""
    client.put_object(Bucket=bucket, Key="src", Body=b"checked")
    client.put_object(Bucket=bucket, Key="other", Body=b"o")
    seen = []

    def overwrite():
        seen.append(read(client, bucket, "src"))   # the hook may make requests of its own
        client.put_object(Bucket=bucket, Key="src", Body=b"written in between")
    cos.faults.before(overwrite, "CopyObject", bucket=bucket, key="dst")
    client.copy_object(Bucket=bucket, Key="elsewhere", CopySource={"Bucket": bucket, "Key": "other",
                                                                  "Region": cos.region})
    assert seen == []                              # another key: not a match
    client.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "Region": cos.region})
    assert seen == [b"checked"] and read(client, bucket, "dst") == b"written in between"
    client.put_object(Bucket=bucket, Key="src", Body=b"again")
    client.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "Region": cos.region})
    assert seen == [b"checked"] and not cos.faults.hook_errors   # once only


def test_before_matches_a_key_prefix_and_keeps_what_the_callback_raised(cos, client, bucket):
    def fail():
        raise RuntimeError("the test's own mistake")
    cos.faults.before(fail, "PutObject", prefix="jobs/")
    client.put_object(Bucket=bucket, Key="jobs/one.json", Body=b"{}")    # served as usual
    assert read(client, bucket, "jobs/one.json") == b"{}"
    assert [str(e) for e in cos.faults.hook_errors] == ["the test's own mistake"]
    with pytest.raises(ValueError):
        cos.faults.before(fail, "PutObjects")


def test_error_rate_one_gives_the_sdk_a_5xx(cos, client, bucket):
    cos.faults.error_rate = 1.0
    with pytest.raises(CosServiceError) as err:
        client.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert err.value.get_status_code() == 500
    assert err.value.get_error_code() == "InternalError"
    assert cos.counters.injected == 1
    assert cos.store.find(bucket, "k") is None


def test_sdk_retries_ride_out_an_injected_5xx(cos, make_client, bucket):
    """A seeded 50% error rate (seed 13 fails the first draw only): the SDK's retry gets through."""
    cos.faults.seed(13)
    cos.faults.error_rate = 0.5
    retrying = make_client(cos, retry=2)
    retrying.put_object(Bucket=bucket, Key="r0", Body=b"x")
    retrying.put_object(Bucket=bucket, Key="r1", Body=b"x")
    assert cos.counters.injected == 1
    assert cos.counters["PutObject"] == 3
    assert cos.store.find(bucket, "r0") is not None and cos.store.find(bucket, "r1") is not None


def test_throttle_rate_gives_503_slowdown(cos, client, bucket):
    cos.faults.throttle_rate = 1.0
    with pytest.raises(CosServiceError) as err:
        client.head_bucket(Bucket=bucket)
    assert err.value.get_status_code() == 503
    with pytest.raises(CosServiceError) as err2:
        client.get_object(Bucket=bucket, Key="k")
    assert err2.value.get_error_code() == "SlowDown"


def test_latency_delays_every_request(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    cos.faults.latency_ms = 150
    started = time.monotonic()
    client.head_object(Bucket=bucket, Key="k")
    client.head_object(Bucket=bucket, Key="k")
    assert time.monotonic() - started >= 0.3
    cos.faults.clear()
    assert cos.faults.latency_ms == 0


def test_counters_count_requests_per_api_and_bytes_read(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="a", Body=b"12345")
    client.put_object(Bucket=bucket, Key="b", Body=b"1234567890")
    client.head_object(Bucket=bucket, Key="a")
    client.get_object(Bucket=bucket, Key="a")["Body"].get_raw_stream().read()
    client.get_object(Bucket=bucket, Key="b")["Body"].get_raw_stream().read()
    client.list_objects(Bucket=bucket)
    client.put_object_tagging(Bucket=bucket, Key="a", Tagging={"TagSet": {"Tag": [
        {"Key": "k", "Value": "v"}]}})
    with pytest.raises(CosServiceError):
        client.get_object(Bucket=bucket, Key="missing")
    snap = cos.counters.snapshot()
    assert snap["PutObject"] == 2
    assert snap["HeadObject"] == 1
    assert snap["GetObject"] == 3
    assert snap["GetBucket"] == 1
    assert snap["PutObjectTagging"] == 1
    assert cos.counters["DeleteObject"] == 0
    assert cos.counters.bytes_read == 15          # the failed GET served no object bytes
    cos.counters.reset()
    assert cos.counters["PutObject"] == 0 and cos.counters.bytes_read == 0
    assert cos.counters.snapshot() == {"bytes_read": 0, "injected": 0}


def test_ranged_get_counts_only_the_bytes_served(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="r", Body=b"0123456789")
    got = client.get_object(Bucket=bucket, Key="r", Range="bytes=2-5")
    assert got["Body"].get_raw_stream().read() == b"2345"
    assert cos.counters.bytes_read == 4


def test_simulate_size_in_head_listing_and_store(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="big/disk.img", Body=b"tiny")
    client.put_object(Bucket=bucket, Key="big/other.img", Body=b"tiny")
    cos.simulate_size(bucket, "big/disk.img", 3 * 1024 ** 3)
    assert client.head_object(Bucket=bucket, Key="big/disk.img")["Content-Length"] == str(3 * 1024 ** 3)
    sizes = {c["Key"]: c["Size"] for c in client.list_objects(Bucket=bucket)["Contents"]}
    assert sizes == {"big/disk.img": str(3 * 1024 ** 3), "big/other.img": "4"}
    stored = cos.store.get(bucket, "big/disk.img")
    assert stored.size == 3 * 1024 ** 3
    assert stored.open().read() == b"tiny"                # the bytes stay what was written
    assert client.get_object(Bucket=bucket, Key="big/disk.img")["Body"].get_raw_stream().read() == b"tiny"
    cos.simulate_size(bucket, "big/disk.img", None)
    assert client.head_object(Bucket=bucket, Key="big/disk.img")["Content-Length"] == "4"


def test_instances_do_not_share_buckets_faults_or_counters(make_client):
    with LocalCos() as first, LocalCos() as second:
        first.create_bucket("shared-1250000000")
        second.create_bucket("shared-1250000000")            # same name, no conflict
        a, b = make_client(first), make_client(second)
        a.put_object(Bucket="shared-1250000000", Key="k", Body=b"first")
        assert b.object_exists(Bucket="shared-1250000000", Key="k") is False
        first.faults.error_rate = 1.0
        b.put_object(Bucket="shared-1250000000", Key="k", Body=b"second")
        assert second.store.get("shared-1250000000", "k").open().read() == b"second"
        assert first.counters["PutObject"] == 1 and second.counters["PutObject"] == 1
        assert second.faults.error_rate == 0
        assert second.buckets() == ["shared-1250000000"]
        with pytest.raises(CosServiceError):
            make_client(first).head_bucket(Bucket="shared-1250000000")
    with LocalCos() as third:                                   # a stopped instance leaves nothing
        third.create_bucket("shared-1250000000")
        assert third.buckets() == ["shared-1250000000"]


def test_client_config_points_the_sdk_here(cos, bucket):
    client = CosS3Client(cos.client_config(), retry=0)
    client.put_object(Bucket=bucket, Key="cfg", Body=b"x")
    assert cos.endpoint == f"http://127.0.0.1:{cos.port}"
    assert cos.store.get(bucket, "cfg").size == 1


def read(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def test_clock_offset_moves_cos_s_clock_for_dates_and_later_writes(cos, client, bucket):
    """COS answers with its own time (`Date`, doc 436/7729) and dates each write (`Last-Modified`):
    `clock_offset` moves that clock, so time passes for earlier writes without waiting."""
    from email.utils import parsedate_to_datetime

    def times(key):
        head = client.head_object(Bucket=bucket, Key=key)
        return (parsedate_to_datetime(head["Date"]).timestamp(),
                parsedate_to_datetime(head["Last-Modified"]).timestamp())

    client.put_object(Bucket=bucket, Key="before", Body=b"x")
    date, written = times("before")
    assert abs(date - time.time()) < 5 and 0 <= date - written < 5
    cos.clock_offset = 3600
    date, written_then = times("before")
    assert abs(date - (time.time() + 3600)) < 5 and written_then == written   # an hour since it was written
    client.put_object(Bucket=bucket, Key="after", Body=b"y")
    date, written = times("after")
    assert 0 <= date - written < 5   # written at COS's (moved) clock
    cos.clock_offset = 0
    assert abs(times("before")[0] - time.time()) < 5
