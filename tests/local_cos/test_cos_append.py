"""APPEND Object through cos-python-sdk-v5's `append_object`, as COS documents it (doc 436/7741)."""
from __future__ import annotations

import hashlib

import pytest
from qcloud_cos.cos_exception import CosServiceError

from cos_helpers import signed
from cosguard.local.cos.append import MAX_APPENDABLE_SIZE
from cosguard.local.cos.crc64 import crc64


def _read(client, bucket, key) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def _refused(call, **kwargs) -> CosServiceError:
    with pytest.raises(CosServiceError) as caught:
        call(**kwargs)
    return caught.value


def test_appends_grow_one_appendable_object(client, bucket):
    first = client.append_object(Bucket=bucket, Key="log.txt", Position=0, Data=b"hello ")
    second = client.append_object(Bucket=bucket, Key="log.txt", Position=6, Data=b"world")
    assert first["x-cos-next-append-position"] == "6"
    assert second["x-cos-next-append-position"] == "11"
    assert first["ETag"] == second["ETag"]   # undocumented: by default the first append's ETag stays
    assert second["x-cos-content-sha1"] == hashlib.sha1(b"world").hexdigest()   # of this part (doc sample)
    assert _read(client, bucket, "log.txt") == b"hello world"
    head = client.head_object(Bucket=bucket, Key="log.txt")
    assert head["x-cos-object-type"] == "appendable"
    assert head["x-cos-next-append-position"] == "11"
    assert head["Content-Length"] == "11" and head["ETag"] == second["ETag"]
    assert head["x-cos-hash-crc64ecma"] == str(crc64(b"hello world"))
    got = client.get_object(Bucket=bucket, Key="log.txt")
    assert got["x-cos-object-type"] == "appendable"


def test_the_etag_changes_on_each_append_when_switched(cos, client, bucket):
    cos.append_keeps_etag = False
    first = client.append_object(Bucket=bucket, Key="log.txt", Position=0, Data=b"hello ")
    second = client.append_object(Bucket=bucket, Key="log.txt", Position=6, Data=b"world")
    assert first["ETag"] != second["ETag"]
    assert second["ETag"].strip('"') == hashlib.md5(b"hello world").hexdigest()
    assert client.head_object(Bucket=bucket, Key="log.txt")["ETag"] == second["ETag"]


def test_a_position_other_than_the_length_is_a_409(client, bucket):
    error = _refused(client.append_object, Bucket=bucket, Key="new.txt", Position=3, Data=b"x")
    assert (error.get_status_code(), error.get_error_code()) == (409, "PositionNotEqualToLength")
    client.append_object(Bucket=bucket, Key="new.txt", Position=0, Data=b"abc")
    for position in (0, 2, 4):
        error = _refused(client.append_object, Bucket=bucket, Key="new.txt", Position=position, Data=b"x")
        assert (error.get_status_code(), error.get_error_code()) == (409, "PositionNotEqualToLength")
    assert _read(client, bucket, "new.txt") == b"abc"


def test_a_normal_object_is_not_appendable(client, bucket):
    client.put_object(Bucket=bucket, Key="plain.txt", Body=b"abc")
    error = _refused(client.append_object, Bucket=bucket, Key="plain.txt", Position=3, Data=b"x")
    assert (error.get_status_code(), error.get_error_code()) == (409, "ObjectNotAppendable")
    assert "x-cos-object-type" not in client.head_object(Bucket=bucket, Key="plain.txt")


def test_any_other_upload_makes_the_key_normal_again(client, bucket):
    client.append_object(Bucket=bucket, Key="k", Position=0, Data=b"abc")
    client.put_object(Bucket=bucket, Key="k", Body=b"xyz")
    assert "x-cos-object-type" not in client.head_object(Bucket=bucket, Key="k")
    error = _refused(client.append_object, Bucket=bucket, Key="k", Position=3, Data=b"x")
    assert error.get_error_code() == "ObjectNotAppendable"


def test_an_appendable_object_cannot_be_copied(client, bucket):
    client.append_object(Bucket=bucket, Key="src", Position=0, Data=b"abc")
    source = {"Bucket": bucket, "Key": "src", "Region": "ap-guangzhou"}
    error = _refused(client.copy_object, Bucket=bucket, Key="dst", CopySource=source)
    assert (error.get_status_code(), error.get_error_code()) == (400, "InvalidRequest")
    upload = client.create_multipart_upload(Bucket=bucket, Key="dst2")["UploadId"]
    error = _refused(client.upload_part_copy, Bucket=bucket, Key="dst2", PartNumber=1, UploadId=upload,
                     CopySource=source)
    assert error.get_status_code() == 400
    assert not client.object_exists(Bucket=bucket, Key="dst")


def test_an_appendable_object_stops_at_5_gb(cos, client, bucket):
    client.append_object(Bucket=bucket, Key="big", Position=0, Data=b"a")
    cos.simulate_size(bucket, "big", MAX_APPENDABLE_SIZE - 1)
    error = _refused(client.append_object, Bucket=bucket, Key="big", Position=MAX_APPENDABLE_SIZE - 1,
                     Data=b"bc")
    assert (error.get_status_code(), error.get_error_code()) == (400, "EntityTooLarge")
    answer = client.append_object(Bucket=bucket, Key="big", Position=MAX_APPENDABLE_SIZE - 1, Data=b"b")
    assert answer["x-cos-next-append-position"] == str(MAX_APPENDABLE_SIZE)


def test_metadata_and_content_type_come_from_the_first_append(client, bucket):
    client.append_object(Bucket=bucket, Key="m", Position=0, Data=b"a", ContentType="text/plain",
                         Metadata={"x-cos-meta-first": "1"})
    client.append_object(Bucket=bucket, Key="m", Position=1, Data=b"b", ContentType="image/png",
                         Metadata={"x-cos-meta-second": "2"})
    head = client.head_object(Bucket=bucket, Key="m")
    assert head["Content-Type"] == "text/plain"
    assert head["x-cos-meta-first"] == "1" and "x-cos-meta-second" not in head


def test_user_metadata_over_2_kb_is_refused(client, bucket):
    error = _refused(client.append_object, Bucket=bucket, Key="meta", Position=0, Data=b"a",
                     Metadata={"x-cos-meta-big": "v" * 2100})
    assert (error.get_status_code(), error.get_error_code()) == (400, "InvalidArgument")   # as PUT's
    assert not client.object_exists(Bucket=bucket, Key="meta")


def test_position_is_required(cos, client, bucket):
    answer = signed(client, cos, "POST", bucket, "nopos", params={"append": ""}, data=b"abc")
    assert answer.status_code == 400 and b"<Code>InvalidArgument</Code>" in answer.content


def test_appends_stay_outside_versioning(cos, client):
    versioned = "versioned-1250000000"
    cos.create_bucket(versioned, versioning=True)
    client.append_object(Bucket=versioned, Key="v", Position=0, Data=b"a")
    second = client.append_object(Bucket=versioned, Key="v", Position=1, Data=b"b")
    assert "x-cos-version-id" not in second
    assert "x-cos-version-id" not in client.head_object(Bucket=versioned, Key="v")
    versions = client.list_objects_versions(Bucket=versioned, Prefix="v").get("Version", [])
    versions = versions if isinstance(versions, list) else [versions]
    assert [v["VersionId"] for v in versions] == ["null"]
    assert _read(client, versioned, "v") == b"ab"


def test_append_events_are_off_by_default(cos, client, bucket):
    heard = []
    cos.subscribe(heard.append, bucket=bucket)
    client.append_object(Bucket=bucket, Key="quiet", Position=0, Data=b"abc")
    client.put_object(Bucket=bucket, Key="loud", Body=b"abc")
    cos.drain()
    assert [e["Records"][0]["event"]["eventName"] for e in heard] == ["cos:ObjectCreated:Put"]


def test_each_append_publishes_an_append_event_when_switched_on(cos, client, bucket):
    cos.append_events = True
    heard = []
    cos.subscribe(heard.append, bucket=bucket)
    client.append_object(Bucket=bucket, Key="a.bin", Position=0, Data=b"abc", ContentType="text/plain",
                         Metadata={"x-cos-meta-who": "me"})
    client.append_object(Bucket=bucket, Key="a.bin", Position=3, Data=b"de")
    cos.drain()
    records = [e["Records"][0] for e in heard]
    assert [r["event"]["eventName"] for r in records] == ["cos:ObjectCreated:Append"] * 2
    assert [r["cos"]["cosObject"]["size"] for r in records] == [3, 5]
    assert records[1]["cos"]["cosObject"]["meta"]["x-cos-meta-who"] == "me"
    assert records[1]["cos"]["cosObject"]["vid"] == ""


def test_a_refused_append_publishes_nothing(cos, client, bucket):
    cos.append_events = True
    heard = []
    cos.subscribe(heard.append, bucket=bucket)
    _refused(client.append_object, Bucket=bucket, Key="x", Position=5, Data=b"abc")
    cos.drain()
    assert heard == []


def test_tags_survive_an_append(client, bucket):
    """Undocumented: the answer worse for a scanner (a `clean` tag stays on bytes never scanned)."""
    client.append_object(Bucket=bucket, Key="t", Position=0, Data=b"a")
    client.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": {"Tag": [{"Key": "k", "Value": "v"}]}})
    client.append_object(Bucket=bucket, Key="t", Position=1, Data=b"b")
    tags = client.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]["Tag"]
    assert [(t["Key"], t["Value"]) for t in (tags if isinstance(tags, list) else [tags])] == [("k", "v")]
