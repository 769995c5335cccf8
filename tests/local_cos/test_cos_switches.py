"""The local COS's switches for what doc 583/9707 and COS's docs leave open (docs/cos-parity.md
"Switches"): the trigger event's key encoding and `vid`, a multipart object's Last-Modified, Append
events. Each position through cos-python-sdk-v5, set at construction, from the environment, or on
the running instance."""
from __future__ import annotations

import datetime

import pytest

from cosguard.local.cos import LocalCos

VERSIONED = "versioned-1250000000"


def records(inbox):
    return [event["Records"][0] for event in inbox]


@pytest.mark.parametrize("encoding,expected", [("url", "a%20b%25c.txt"), ("literal", "a b%c.txt")])
def test_event_key_encoding_set_on_the_running_instance(cos, client, bucket, encoding, expected):
    inbox = []
    cos.subscribe(inbox.append)
    cos.event_key_encoding = encoding
    client.put_object(Bucket=bucket, Key="a b%c.txt", Body=b"x")
    cos.drain(5)
    assert [r["cos"]["cosObject"]["key"] for r in records(inbox)] == ["/1250000000/examplebucket/" + expected]
    with pytest.raises(ValueError):
        cos.event_key_encoding = "base64"


@pytest.mark.parametrize("vid", ["empty", "set"])
@pytest.mark.parametrize("how", ["constructor", "running"])
def test_event_vid(make_client, vid, how):
    cos = LocalCos(event_vid=vid if how == "constructor" else None).start()
    try:
        if how == "running":
            assert cos.event_vid == "empty"   # the default, the worse: cosguard must HEAD the current version
            cos.event_vid = vid
        cos.create_bucket(VERSIONED, versioning=True)
        cos.create_bucket("plain-1250000000")
        inbox = []
        cos.subscribe(inbox.append)
        client = make_client(cos)
        version = client.put_object(Bucket=VERSIONED, Key="v", Body=b"v")["x-cos-version-id"]
        client.put_object(Bucket="plain-1250000000", Key="p", Body=b"p")
        cos.drain(5)
    finally:
        cos.stop()
    assert version
    assert [r["cos"]["cosObject"]["vid"] for r in records(inbox)] == [version if vid == "set" else "", ""]


def _multipart(client, bucket, key, cos, pause):
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    started = cos.clock()
    etag = client.upload_part(Bucket=bucket, Key=key, Body=b"part", PartNumber=1,
                              UploadId=upload["UploadId"])["ETag"]
    cos.clock_offset += pause   # the upload takes `pause` seconds, without waiting
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                     MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]})
    return started, cos.clock()


def _head_time(client, bucket, key) -> float:
    stamp = client.head_object(Bucket=bucket, Key=key)["Last-Modified"]
    return datetime.datetime.strptime(stamp, "%a, %d %b %Y %H:%M:%S GMT").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.parametrize("position", ["initiation", "completion"])
def test_multipart_last_modified(cos, client, bucket, position):
    assert cos.multipart_last_modified == "initiation"   # the default, the worse
    cos.multipart_last_modified = position
    inbox = []
    cos.subscribe(inbox.append)
    started, completed = _multipart(client, bucket, "m", cos, pause=600)
    cos.drain(5)
    expected = started if position == "initiation" else completed
    assert abs(_head_time(client, bucket, "m") - expected) <= 1.5
    listed = client.list_objects(Bucket=bucket)["Contents"][0]["LastModified"]   # the same in a listing
    assert abs(datetime.datetime.strptime(listed[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp() - expected) <= 1.5
    # the event is the completion's, whichever time Last-Modified reports
    assert abs(records(inbox)[0]["event"]["eventTime"] - completed) <= 1.5
    with pytest.raises(ValueError):
        cos.multipart_last_modified = "upload"


def test_a_put_keeps_its_own_time_whatever_the_multipart_switch(cos, client, bucket):
    cos.clock_offset = 300
    client.put_object(Bucket=bucket, Key="p", Body=b"p")
    assert abs(_head_time(client, bucket, "p") - cos.clock()) <= 1.5


@pytest.mark.parametrize("variable,value,attribute,expected", [
    ("COSGUARD_LOCAL_EVENT_KEY", "literal", "event_key_encoding", "literal"),
    ("COSGUARD_LOCAL_EVENT_VID", "set", "event_vid", "set"),
    ("COSGUARD_LOCAL_MULTIPART_LAST_MODIFIED", "completion", "multipart_last_modified", "completion"),
    ("COSGUARD_LOCAL_APPEND_EVENTS", "1", "append_events", True),
    ("COSGUARD_LOCAL_DELETE_IF_MATCH", "on", "delete_honours_if_match", True),
])
def test_switches_are_read_from_the_environment(monkeypatch, variable, value, attribute, expected):
    assert getattr(LocalCos(), attribute) != expected   # the default is the other position
    monkeypatch.setenv(variable, value)
    assert getattr(LocalCos(), attribute) == expected
    monkeypatch.setenv(variable, "maybe")
    with pytest.raises(ValueError):
        LocalCos()
