"""COS's documented rules the local COS enforces, each through cos-python-sdk-v5 over HTTP: tag
limits on every request that sets tags (doc 436/42997), `x-cos-forbid-overwrite` on every write
COS lists it for, and DELETE Object without conditional headers (doc 436/7743)."""
from __future__ import annotations

from datetime import datetime

import pytest
from qcloud_cos import CosServiceError

from cosguard.local.cos import LocalCos
from test_cos_objects import read_body, source
from test_cos_post_object import form, post

KEY_127 = "k" * 127
KEY_128 = "k" * 128
CJK_KEY_129_BYTES = "标" * 43   # 43 characters (moto's S3 limit is 128), 129 bytes (COS's is < 128)


def tag_set(pairs):
    return {"TagSet": {"Tag": [{"Key": k, "Value": v} for k, v in pairs]}}


def refused(call):
    with pytest.raises(CosServiceError) as err:
        call()
    return err.value.get_status_code(), err.value.get_error_code()


def tags_of(client, bucket, key):
    answer = client.get_object_tagging(Bucket=bucket, Key=key)
    tags = answer.get("TagSet", {}).get("Tag", [])
    return {t["Key"]: t["Value"] for t in (tags if isinstance(tags, list) else [tags])}


# -- tags (doc 436/42997: at most 10; key < 128 bytes; value < 256 bytes) ----------------------
@pytest.mark.parametrize("pairs,code", [
    ([(f"k{i}", "v") for i in range(11)], "BadRequest"),
    ([(KEY_128, "v")], "InvalidTag"),
    ([(CJK_KEY_129_BYTES, "v")], "InvalidTag"),
    ([("k", "v" * 256)], "InvalidTag"),
    ([("k", "值" * 86)], "InvalidTag"),   # 86 characters, 258 bytes
])
def test_put_object_tagging_refuses_what_cos_refuses(client, bucket, pairs, code):
    client.put_object(Bucket=bucket, Key="t", Body=b"x")
    client.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set([("keep", "me")]))
    assert refused(lambda: client.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set(pairs))) \
        == (400, code)
    assert tags_of(client, bucket, "t") == {"keep": "me"}


def test_put_object_tagging_takes_the_largest_legal_set(client, bucket):
    pairs = [(KEY_127[:-1] + str(i), "v" * 255) for i in range(10)]
    client.put_object(Bucket=bucket, Key="t", Body=b"x")
    client.put_object_tagging(Bucket=bucket, Key="t", Tagging=tag_set(pairs))
    assert tags_of(client, bucket, "t") == dict(pairs)


@pytest.mark.parametrize("tagging", ["&".join(f"k{i}=v" for i in range(11)), f"{KEY_128}=v",
                                     f"k={'v' * 256}"])
def test_tagging_header_on_put_object_is_checked_and_nothing_is_written(client, bucket, tagging):
    assert refused(lambda: client.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging=tagging))[0] == 400
    assert not client.object_exists(Bucket=bucket, Key="h")
    client.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging=f"{KEY_127}=v")
    assert tags_of(client, bucket, "h") == {KEY_127: "v"}


def test_tagging_header_on_copy_is_checked_when_tags_are_replaced(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="src", Body=b"s")
    replaced = {"x-cos-tagging-directive": "Replaced", "x-cos-tagging": f"{KEY_128}=v"}
    assert refused(lambda: client.copy_object(Bucket=bucket, Key="dst", CopySource=source(cos, bucket, "src"),
                                              Metadata=replaced)) == (400, "InvalidTag")
    assert not client.object_exists(Bucket=bucket, Key="dst")
    client.copy_object(Bucket=bucket, Key="dst", CopySource=source(cos, bucket, "src"),
                       Metadata={"x-cos-tagging-directive": "Replaced", "x-cos-tagging": "a=1"})
    assert tags_of(client, bucket, "dst") == {"a": "1"}


def test_tagging_header_on_initiate_multipart_upload_is_checked(client, bucket):
    assert refused(lambda: client.create_multipart_upload(
        Bucket=bucket, Key="mp", Tagging="&".join(f"k{i}=v" for i in range(11)))) == (400, "BadRequest")
    assert client.list_multipart_uploads(Bucket=bucket).get("Upload") in (None, [])


def test_tagging_field_of_post_object_is_checked_and_stored(cos, client, bucket):
    answer = post(cos, form(cos, key="uploads/bad", extra={"x-cos-tagging": f"{KEY_128}=v"}))
    assert answer.status_code == 400 and b"<Code>InvalidTag</Code>" in answer.content
    assert not client.object_exists(Bucket=bucket, Key="uploads/bad")
    assert post(cos, form(cos, key="uploads/good", extra={"x-cos-tagging": "a=1&b=2"})).status_code == 204
    assert tags_of(client, bucket, "uploads/good") == {"a": "1", "b": "2"}


# -- x-cos-forbid-overwrite (unversioned buckets) ----------------------------------------------
def _multipart(client, bucket, key, body, **headers):
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = client.upload_part(Bucket=bucket, Key=key, Body=body, PartNumber=1, UploadId=upload)["ETag"]
    return lambda: client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Part": [{"PartNumber": 1, "ETag": etag}]}, **headers)


def test_forbid_overwrite_on_complete_multipart_upload(client, bucket):
    claim = {"Metadata": {"x-cos-forbid-overwrite": "true"}}
    _multipart(client, bucket, "mp", b"first", **claim)()
    assert refused(_multipart(client, bucket, "mp", b"second", **claim)) == (409, "FileAlreadyExists")
    assert read_body(client.get_object(Bucket=bucket, Key="mp")) == b"first"


def test_forbid_overwrite_on_initiate_multipart_upload(client, bucket):
    client.put_object(Bucket=bucket, Key="mp", Body=b"there")
    assert refused(lambda: client.create_multipart_upload(
        Bucket=bucket, Key="mp", Metadata={"x-cos-forbid-overwrite": "true"})) == (409, "FileAlreadyExists")
    client.create_multipart_upload(Bucket=bucket, Key="new", Metadata={"x-cos-forbid-overwrite": "true"})


def test_forbid_overwrite_is_ignored_on_a_versioned_bucket(cos, client):
    cos.create_bucket("versioned-1250000000", versioning=True)
    claim = {"x-cos-forbid-overwrite": "true"}
    client.put_object(Bucket="versioned-1250000000", Key="v", Body=b"one", Metadata=claim)
    client.put_object(Bucket="versioned-1250000000", Key="v", Body=b"two", Metadata=claim)
    assert read_body(client.get_object(Bucket="versioned-1250000000", Key="v")) == b"two"


# -- DELETE Object: common headers only (doc 436/7743) -----------------------------------------
@pytest.mark.parametrize("fast_path", [True, False])
def test_delete_ignores_if_match_by_default(make_client, bucket, fast_path):
    server = LocalCos(fast_path=fast_path).start()
    try:
        server.create_bucket(bucket)
        sdk = make_client(server)
        sdk.put_object(Bucket=bucket, Key="d", Body=b"current")
        sdk.delete_object(Bucket=bucket, Key="d", IfMatch='"0123456789abcdef0123456789abcdef"')
        assert not sdk.object_exists(Bucket=bucket, Key="d")
    finally:
        server.stop()


@pytest.mark.parametrize("fast_path", [True, False])
def test_delete_honours_if_match_when_switched_on(make_client, bucket, fast_path):
    server = LocalCos(fast_path=fast_path, delete_honours_if_match=True).start()
    try:
        server.create_bucket(bucket)
        sdk = make_client(server)
        etag = sdk.put_object(Bucket=bucket, Key="d", Body=b"current")["ETag"]
        assert refused(lambda: sdk.delete_object(Bucket=bucket, Key="d", IfMatch='"0123456789abcdef0123456789abcdef"')) \
            == (412, "PreconditionFailed")
        assert sdk.object_exists(Bucket=bucket, Key="d")
        sdk.delete_object(Bucket=bucket, Key="d", IfMatch=etag)
        assert not sdk.object_exists(Bucket=bucket, Key="d")
    finally:
        server.stop()


def test_delete_if_match_switch_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("COSGUARD_LOCAL_DELETE_IF_MATCH", "1")
    assert LocalCos().delete_honours_if_match is True
    monkeypatch.setenv("COSGUARD_LOCAL_DELETE_IF_MATCH", "0")
    assert LocalCos().delete_honours_if_match is False
    monkeypatch.delenv("COSGUARD_LOCAL_DELETE_IF_MATCH")
    assert LocalCos().delete_honours_if_match is False


def test_forbid_overwrite_is_ignored_once_versioning_was_suspended(cos, client):
    """Doc 436/7742: the header is invalid on a bucket whose versioning is enabled or suspended."""
    cos.create_bucket("suspended-1250000000", versioning=True)
    client.put_bucket_versioning(Bucket="suspended-1250000000", Status="Suspended")
    claim = {"x-cos-forbid-overwrite": "true"}
    client.put_object(Bucket="suspended-1250000000", Key="v", Body=b"one", Metadata=claim)
    client.put_object(Bucket="suspended-1250000000", Key="v", Body=b"two", Metadata=claim)
    assert read_body(client.get_object(Bucket="suspended-1250000000", Key="v")) == b"two"


def test_post_object_tags_moto_refuses_are_a_400_and_nothing_is_written(cos, client, bucket):
    answer = post(cos, form(cos, key="uploads/aws", extra={"x-cos-tagging": "aws:x=1"}))
    assert answer.status_code == 400 and b"<Code>InvalidTag</Code>" in answer.content
    assert not client.object_exists(Bucket=bucket, Key="uploads/aws")


# -- PUT Object - Copy: x-cos-copy-source-If-Match / If-None-Match (doc 436/10881) ----------------
@pytest.mark.parametrize("fast_path, key", [(True, "plain.txt"), (False, "plain.txt"), (True, "line\nbreak.txt")],
                         ids=["fast path", "moto's app", "fast path, key with LF"])
def test_copy_honours_the_source_preconditions(make_client, bucket, fast_path, key):
    """412 when the source's ETag differs (moto ignores a copy's If-Match: checked before either path
    answers); a matching one copies, also a key with LF on the fast path (moto's own routes cannot
    match a key with LF: with the fast path off such keys stay unreachable, see docs/cos-parity.md)."""
    server = LocalCos(fast_path=fast_path).start()
    try:
        server.create_bucket(bucket)
        sdk = make_client(server)
        etag = sdk.put_object(Bucket=bucket, Key=key, Body=b"scanned")["ETag"]
        stale = '"0123456789abcdef0123456789abcdef"'
        assert refused(lambda: sdk.copy_object(Bucket=bucket, Key="copy/" + key, CopySourceIfMatch=stale,
                                               CopySource=source(server, bucket, key))) == (412, "PreconditionFailed")
        assert refused(lambda: sdk.copy_object(Bucket=bucket, Key="copy/" + key, CopySourceIfNoneMatch=etag,
                                               CopySource=source(server, bucket, key))) == (412, "PreconditionFailed")
        assert not sdk.object_exists(Bucket=bucket, Key="copy/" + key)
        sdk.copy_object(Bucket=bucket, Key="copy/" + key, CopySource=source(server, bucket, key), CopySourceIfMatch=etag)
        assert read_body(sdk.get_object(Bucket=bucket, Key="copy/" + key)) == b"scanned"
    finally:
        server.stop()


# Each of the four, on PUT Object - Copy and Upload Part - Copy (doc 436/10881, doc 436/8287): 412
# when it does not hold, a copy when it does. The source is dated 2026-01-01 12:00:00 GMT.
_SOURCE_TIME = datetime(2026, 1, 1, 12, 0, 0)
_AT, _BEFORE = "Thu, 01 Jan 2026 12:00:00 GMT", "Thu, 01 Jan 2026 11:59:59 GMT"
_STALE = '"0123456789abcdef0123456789abcdef"'
_CONDITIONS = [   # (SDK parameter, a value that fails, a value that holds); None: the source's ETag
    ("CopySourceIfMatch", _STALE, None), ("CopySourceIfNoneMatch", None, _STALE),
    ("CopySourceIfModifiedSince", _AT, _BEFORE), ("CopySourceIfUnmodifiedSince", _BEFORE, _AT)]


def _copy(sdk, server, bucket, operation, target, src="src.txt", **condition):
    """Copy `src` to `target` by PUT Object - Copy or a one-part Upload Part - Copy."""
    copy_source = source(server, bucket, src)
    if operation == "copy_object":
        return sdk.copy_object(Bucket=bucket, Key=target, CopySource=copy_source, **condition)
    upload_id = sdk.create_multipart_upload(Bucket=bucket, Key=target)["UploadId"]
    part = sdk.upload_part_copy(Bucket=bucket, Key=target, PartNumber=1, UploadId=upload_id,
                                CopySource=copy_source, **condition)
    return sdk.complete_multipart_upload(Bucket=bucket, Key=target, UploadId=upload_id, MultipartUpload={
        "Part": [{"PartNumber": 1, "ETag": part["ETag"]}]})


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "moto's app"])
@pytest.mark.parametrize("operation", ["copy_object", "upload_part_copy"])
@pytest.mark.parametrize("parameter, failing, holding", _CONDITIONS, ids=[c[0] for c in _CONDITIONS])
def test_every_copy_precondition_is_honoured(make_client, bucket, fast_path, operation, parameter, failing, holding):
    server = LocalCos(fast_path=fast_path).start()
    try:
        server.create_bucket(bucket)
        sdk = make_client(server)
        etag = sdk.put_object(Bucket=bucket, Key="src.txt", Body=b"scanned")["ETag"]
        server.store.find(bucket, "src.txt").last_modified = _SOURCE_TIME
        assert refused(lambda: _copy(sdk, server, bucket, operation, "copy.txt", **{parameter: failing or etag})
                       ) == (412, "PreconditionFailed")
        assert not sdk.object_exists(Bucket=bucket, Key="copy.txt")
        _copy(sdk, server, bucket, operation, "copy.txt", **{parameter: holding or etag})
        assert read_body(sdk.get_object(Bucket=bucket, Key="copy.txt")) == b"scanned"
    finally:
        server.stop()


@pytest.mark.parametrize("parameter, failing, holding", _CONDITIONS, ids=[c[0] for c in _CONDITIONS])
def test_the_fast_path_takes_every_conditional_copy(client, cos, bucket, parameter, failing, holding):
    """A key with LF, which moto's routes cannot match: only the fast path can copy it."""
    etag = client.put_object(Bucket=bucket, Key="a\nb.txt", Body=b"scanned")["ETag"]
    cos.store.find(bucket, "a\nb.txt").last_modified = _SOURCE_TIME
    assert refused(lambda: _copy(client, cos, bucket, "copy_object", "c\nd.txt", "a\nb.txt",
                                 **{parameter: failing or etag})) == (412, "PreconditionFailed")
    _copy(client, cos, bucket, "copy_object", "c\nd.txt", "a\nb.txt", **{parameter: holding or etag})
    assert read_body(client.get_object(Bucket=bucket, Key="c\nd.txt")) == b"scanned"


def test_an_unparsable_copy_precondition_date_is_ignored(client, cos, bucket):
    client.put_object(Bucket=bucket, Key="src.txt", Body=b"scanned")
    _copy(client, cos, bucket, "copy_object", "copy.txt", CopySourceIfUnmodifiedSince="not a date")
    assert read_body(client.get_object(Bucket=bucket, Key="copy.txt")) == b"scanned"
