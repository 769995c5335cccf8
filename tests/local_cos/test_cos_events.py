"""The SCF COS trigger local COS emits: shape, filters, ordering and isolation from subscribers."""
from __future__ import annotations

import json
import logging
import pathlib
import threading
import time

import pytest
from qcloud_cos import CosServiceError

from cosguard.local.cos import LocalCos

EVENTS = pathlib.Path(__file__).resolve().parent.parent / "events"


class Inbox:
    """A subscriber that keeps what it is given."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    @property
    def keys(self):
        return [e["Records"][0]["cos"]["cosObject"]["key"] for e in self.events]

    @property
    def names(self):
        return [e["Records"][0]["event"]["eventName"] for e in self.events]


def compare(actual, expected, path="$"):
    """Field by field: same keys at every level; '<str>'/'<int>' match by type, the rest exactly."""
    if expected == "<str>":
        assert isinstance(actual, str) and actual, path
    elif expected == "<int>":
        assert isinstance(actual, int) and not isinstance(actual, bool), path
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), path
        expected = {k: v for k, v in expected.items() if k != "_comment"}
        assert set(actual) == set(expected), f"{path}: {sorted(actual)} != {sorted(expected)}"
        for name, value in expected.items():
            compare(actual[name], value, f"{path}.{name}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def shape(value):
    """Key paths and value types, for comparing with the verbatim documented sample."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def test_put_event_matches_the_fixture_field_by_field(cos, client, bucket):
    inbox = Inbox()
    cos.subscribe(inbox, bucket=bucket, function="cosguard-submit")
    before = int(time.time())
    put = client.put_object(Bucket=bucket, Key="incoming/hello world.txt", Body=b"hello world",
                            ContentType="text/plain", Metadata={"x-cos-meta-uploader": "alice"})
    cos.drain(5)
    assert len(inbox.events) == 1
    event = inbox.events[0]
    compare(event, json.loads((EVENTS / "cos_put_emulated_expected.json").read_text("utf-8")))

    record = event["Records"][0]
    assert record["cos"]["cosObject"]["meta"]["x-cos-request-id"] == put["x-cos-request-id"]
    assert before <= record["event"]["eventTime"] <= int(time.time())
    assert record["event"]["requestParameters"]["requestHeaders"]["Authorization"].startswith(
        f"q-sign-algorithm=sha1&q-ak={cos.credentials.secret_id}&")


def test_event_has_the_documented_shape(cos, client, bucket):
    """Same keys and value types as the verbatim §3.4 sample (user meta aside)."""
    inbox = Inbox()
    cos.subscribe(inbox)
    client.put_object(Bucket=bucket, Key="testfile", Body=b"x")
    cos.drain(5)
    sample = json.loads((EVENTS / "cos_put.json").read_text("utf-8"))
    assert shape(inbox.events[0]) == shape(sample)
    assert inbox.events[0]["Records"][0]["event"]["eventQueue"] == \
        "qcs:0:lambda:gz:appid/1250000000:default.cosguard.$LATEST"


def test_copy_multipart_and_versioned_events(cos, client, bucket):
    cos.create_bucket("versioned-1250000000", versioning=True)
    inbox = Inbox()
    cos.subscribe(inbox)
    client.put_object(Bucket=bucket, Key="a", Body=b"a")
    client.copy_object(Bucket=bucket, Key="b", CopySource={"Bucket": bucket, "Key": "a",
                                                            "Region": cos.region})
    upload = client.create_multipart_upload(Bucket=bucket, Key="m")
    etag = client.upload_part(Bucket=bucket, Key="m", Body=b"part", PartNumber=1,
                              UploadId=upload["UploadId"])["ETag"]
    client.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload["UploadId"],
                                     MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]})
    vid = client.put_object(Bucket="versioned-1250000000", Key="v", Body=b"v")["x-cos-version-id"]
    cos.drain(5)
    assert inbox.names == ["cos:ObjectCreated:Put", "cos:ObjectCreated:Copy",
                           "cos:ObjectCreated:CompleteMultipartUpload", "cos:ObjectCreated:Put"]
    assert inbox.keys == ["/1250000000/examplebucket/a", "/1250000000/examplebucket/b",
                          "/1250000000/examplebucket/m", "/1250000000/versioned/v"]
    assert [e["Records"][0]["cos"]["cosObject"]["size"] for e in inbox.events] == [1, 1, 4, 1]
    assert vid and inbox.events[3]["Records"][0]["cos"]["cosObject"]["vid"] == ""   # the default:
    # an empty vid on a versioned bucket too (both positions: test_cos_switches.py)


def test_no_event_for_reads_deletes_tagging_or_failed_writes(cos, client, make_client, bucket):
    inbox = Inbox()
    cos.subscribe(inbox)
    client.put_object(Bucket=bucket, Key="x", Body=b"x", Metadata={"x-cos-forbid-overwrite": "true"})
    client.get_object(Bucket=bucket, Key="x")
    client.put_object_tagging(Bucket=bucket, Key="x", Tagging={"TagSet": {"Tag": [
        {"Key": "k", "Value": "v"}]}})
    client.delete_object(Bucket=bucket, Key="x")
    client.put_object(Bucket=bucket, Key="y", Body=b"y")
    with pytest.raises(CosServiceError):
        client.put_object(Bucket=bucket, Key="y", Body=b"y2", Metadata={"x-cos-forbid-overwrite": "true"})
    with pytest.raises(CosServiceError):
        make_client(cos, secret_key="wrong").put_object(Bucket=bucket, Key="z", Body=b"z")
    cos.drain(5)
    assert inbox.keys == ["/1250000000/examplebucket/x", "/1250000000/examplebucket/y"]


def test_prefix_suffix_bucket_and_event_filters(cos, client, bucket):
    cos.create_bucket("other-1250000000")
    uploads, exe, other, copies = Inbox(), Inbox(), Inbox(), Inbox()
    cos.subscribe(uploads, bucket=bucket, prefix="uploads/")
    cos.subscribe(exe, bucket=bucket, suffix=".exe")
    cos.subscribe(other, bucket="other-1250000000")
    cos.subscribe(copies, events=["cos:ObjectCreated:Copy"])
    for key in ("uploads/a.txt", "uploads/b.exe", "c.exe", "quarantine/uploads/d.txt"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    client.put_object(Bucket="other-1250000000", Key="uploads/e.exe", Body=b"x")
    client.copy_object(Bucket=bucket, Key="copied.exe", CopySource={
        "Bucket": bucket, "Key": "c.exe", "Region": cos.region})
    cos.drain(5)
    p = "/1250000000/examplebucket/"
    assert uploads.keys == [p + "uploads/a.txt", p + "uploads/b.exe"]
    assert exe.keys == [p + "uploads/b.exe", p + "c.exe", p + "copied.exe"]
    assert other.keys == ["/1250000000/other/uploads/e.exe"]
    assert copies.keys == [p + "copied.exe"]


def test_unknown_key_encoding_is_refused():
    with pytest.raises(ValueError):
        LocalCos(event_key_encoding="base64")


@pytest.mark.parametrize("encoding,expected", [
    ("url", "/1250000000/examplebucket/%E4%B8%8A%E4%BC%A0/my%20file%2B1%25.txt"),
    ("literal", "/1250000000/examplebucket/上传/my file+1%.txt"),
    ("raw", "/1250000000/examplebucket/上传/my file+1%.txt"),   # the earlier name of literal
])
def test_event_key_encoding(encoding, expected, make_client):
    with LocalCos(event_key_encoding=encoding) as cos:
        cos.create_bucket("examplebucket-1250000000")
        inbox = Inbox()
        cos.subscribe(inbox, prefix="上传/", suffix="%.txt")   # filters see the decoded key
        client = make_client(cos, secret_key=cos.credentials.secret_key)
        client.put_object(Bucket="examplebucket-1250000000", Key="上传/my file+1%.txt", Body=b"x")
        cos.drain(5)
    assert inbox.keys == [expected]
    url = inbox.events[0]["Records"][0]["cos"]["cosObject"]["url"]
    assert url.endswith("/%E4%B8%8A%E4%BC%A0/my%20file%2B1%25.txt")


def test_events_arrive_in_order(cos, client, bucket):
    inbox = Inbox()
    cos.subscribe(inbox)
    for i in range(20):
        client.put_object(Bucket=bucket, Key=f"seq/{i:02d}", Body=b"x")
    cos.drain(5)
    assert inbox.keys == [f"/1250000000/examplebucket/seq/{i:02d}" for i in range(20)]


def test_a_slow_subscriber_does_not_slow_uploads(cos, client, bucket):
    release = threading.Event()
    seen = []

    def slow(event):
        release.wait(10)
        seen.append(event)

    cos.subscribe(slow)
    started = time.monotonic()
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"s{i}", Body=b"x")
    assert time.monotonic() - started < 2.0
    with pytest.raises(TimeoutError):
        cos.drain(0.2)
    assert seen == []
    release.set()
    cos.drain(5)
    assert len(seen) == 5


def test_a_failing_subscriber_is_logged_and_others_still_get_events(cos, client, bucket, caplog):
    def broken(event):
        raise RuntimeError("subscriber bug")

    inbox = Inbox()
    cos.subscribe(broken)
    cos.subscribe(inbox)
    with caplog.at_level(logging.ERROR, logger="cosguard_local.cos.events"):
        client.put_object(Bucket=bucket, Key="one", Body=b"x")
        client.put_object(Bucket=bucket, Key="two", Body=b"x")
        cos.drain(5)
    assert len(inbox.events) == 2
    assert cos.events.failed == 2
    assert "subscriber bug" in caplog.text


def test_cancel_stops_deliveries(cos, client, bucket):
    inbox = Inbox()
    sub = cos.subscribe(inbox)
    client.put_object(Bucket=bucket, Key="before", Body=b"x")
    cos.drain(5)
    sub.cancel()
    client.put_object(Bucket=bucket, Key="after", Body=b"x")
    cos.drain(5)
    assert inbox.keys == ["/1250000000/examplebucket/before"]


def test_simulated_size_is_reported_in_events(cos, client, bucket):
    inbox = Inbox()
    cos.subscribe(inbox)
    cos.simulate_size(bucket, "huge.iso", 2 * 1024 ** 3)
    client.put_object(Bucket=bucket, Key="huge.iso", Body=b"small really")
    cos.drain(5)
    assert inbox.events[0]["Records"][0]["cos"]["cosObject"]["size"] == 2 * 1024 ** 3


def test_delivery_waits_until_the_answer_is_written(cos, bucket):
    """Driving the WSGI app by hand: the event goes out only when the server closes the answer."""
    from werkzeug.test import EnvironBuilder

    from cosguard.local.auth import sign

    host = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
    now = int(time.time())
    key_time = f"{now - 60};{now + 600}"
    signature = sign(cos.credentials.secret_key, "put", "/w.txt", {}, {"host": host}, key_time)
    auth = (f"q-sign-algorithm=sha1&q-ak={cos.credentials.secret_id}&q-sign-time={key_time}"
            f"&q-key-time={key_time}&q-header-list=host&q-url-param-list=&q-signature={signature}")
    environ = EnvironBuilder(path="/w.txt", method="PUT", data=b"w",
                             headers={"Host": host, "Authorization": auth}).get_environ()
    inbox = Inbox()
    cos.subscribe(inbox)
    statuses = []
    answer = cos._app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["200 OK"]
    with pytest.raises(TimeoutError):
        cos.drain(0.3)
    assert inbox.events == []
    answer.close()
    cos.drain(5)
    assert inbox.keys == ["/1250000000/examplebucket/w.txt"]
