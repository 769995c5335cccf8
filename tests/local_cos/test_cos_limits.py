"""COS's key and metadata size rules (limits.py), as cos-python-sdk-v5 meets them: keys up to 850
bytes (doc 436/13324), user metadata up to 2 KB (doc 436/7749), on every write that sets them."""
from __future__ import annotations

import pytest
from qcloud_cos import CosServiceError

from test_cos_post_object import form, post

KEY_850 = "k/" + "é" * 424      # 2 + 848 = 850 bytes: the longest legal key, in multi-byte UTF-8
KEY_851 = KEY_850 + "x"


def meta_of(total: int, headers: int = 1):
    """`headers` x-cos-meta-* headers whose names and values add up to `total` bytes."""
    names = [f"x-cos-meta-m{i:02d}" for i in range(headers)]
    room = total - sum(len(n) for n in names)
    return {name: "v" * (room // headers + (1 if i < room % headers else 0)) for i, name in enumerate(names)}


def refused(call, code: str) -> CosServiceError:
    with pytest.raises(CosServiceError) as err:
        call()
    assert (err.value.get_status_code(), err.value.get_error_code()) == (400, code)
    return err.value


def test_a_key_of_850_bytes_is_stored_and_851_bytes_are_key_too_long(cos, client, bucket):
    client.put_object(Bucket=bucket, Key=KEY_850, Body=b"x")
    assert client.get_object(Bucket=bucket, Key=KEY_850)["Body"].get_raw_stream().read() == b"x"
    error = refused(lambda: client.put_object(Bucket=bucket, Key=KEY_851, Body=b"x"), "KeyTooLong")
    assert "851 bytes" in error.get_error_msg()
    assert cos.store.find(bucket, KEY_851) is None


def test_copy_and_multipart_refuse_a_key_over_850_bytes(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="source", Body=b"x")
    source = {"Bucket": bucket, "Key": "source", "Region": "ap-guangzhou"}
    refused(lambda: client.copy_object(Bucket=bucket, Key=KEY_851, CopySource=source), "KeyTooLong")
    refused(lambda: client.create_multipart_upload(Bucket=bucket, Key=KEY_851), "KeyTooLong")
    client.copy_object(Bucket=bucket, Key=KEY_850, CopySource=source)
    assert cos.store.find(bucket, KEY_851) is None and cos.store.find(bucket, KEY_850) is not None


def test_user_metadata_of_2_kb_is_stored_and_one_byte_more_is_refused(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="fits", Body=b"x", Metadata=meta_of(2048, headers=3))
    assert len(client.head_object(Bucket=bucket, Key="fits")["x-cos-meta-m00"]) > 600
    error = refused(lambda: client.put_object(Bucket=bucket, Key="over", Body=b"x",
                                              Metadata=meta_of(2049, headers=3)), "InvalidArgument")
    assert "2049 bytes" in error.get_error_msg()
    refused(lambda: client.create_multipart_upload(Bucket=bucket, Key="over", Metadata=meta_of(2049)),
            "InvalidArgument")
    assert cos.store.find(bucket, "over") is None


def test_copy_checks_metadata_it_replaces_and_ignores_the_request_s_when_copying(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="source", Body=b"x", Metadata={"x-cos-meta-origin": "a"})
    source = {"Bucket": bucket, "Key": "source", "Region": "ap-guangzhou"}
    refused(lambda: client.copy_object(Bucket=bucket, Key="replaced", CopySource=source, CopyStatus="Replaced",
                                       Metadata=meta_of(2049)), "InvalidArgument")
    client.copy_object(Bucket=bucket, Key="copied", CopySource=source, CopyStatus="Copy", Metadata=meta_of(2049))
    head = client.head_object(Bucket=bucket, Key="copied")
    assert head["x-cos-meta-origin"] == "a" and "x-cos-meta-m00" not in head  # the source's, not the request's


def test_append_obeys_the_same_rules(cos, client, bucket):
    """APPEND Object: one check for every write (the key, and the metadata under either rule)."""
    append = lambda key, meta: client.append_object(Bucket=bucket, Key=key, Position=0, Data=b"x",  # noqa: E731
                                                    Metadata=meta)
    refused(lambda: append(KEY_851, {}), "KeyTooLong")
    error = refused(lambda: append("over", meta_of(2049, headers=2)), "InvalidArgument")
    assert "2049 bytes" in error.get_error_msg()
    append(KEY_850, meta_of(2048, headers=2))
    cos.limits.metadata_rule = "each"   # 2 KB a header, 4 KB in all: the append follows the switch
    append("each", meta_of(4096, headers=2))
    refused(lambda: append("each-over", meta_of(2049, headers=1)), "InvalidArgument")
    assert cos.store.find(bucket, KEY_850) is not None and cos.store.find(bucket, "each") is not None
    assert cos.store.find(bucket, "over") is None and cos.store.find(bucket, KEY_851) is None


def test_a_post_form_obeys_the_same_rules(cos, bucket):
    assert post(cos, form(cos, extra={"x-cos-meta-note": "n" * 100})).status_code == 204
    too_long = post(cos, form(cos, key="uploads/" + "a" * 843))
    assert too_long.status_code == 400 and b"<Code>KeyTooLong</Code>" in too_long.content
    too_much = post(cos, form(cos, extra=meta_of(2049)))
    assert too_much.status_code == 400 and b"<Code>InvalidArgument</Code>" in too_much.content
    assert cos.store.find(bucket, "uploads/note.txt") is not None


@pytest.mark.parametrize("rule, total, headers, stored", [
    ("total", 2049, 2, False), ("each", 2049, 2, True), ("each", 4096, 2, True),
    ("each", 4097, 2, False), ("each", 2049, 1, False)])
def test_the_metadata_rule_switch(cos, client, bucket, rule, total, headers, stored):
    """Which 2 KB COS means is not documented (2 KB in all, or 2 KB a header and 4 KB in all)."""
    cos.limits.metadata_rule = rule
    put = lambda: client.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata=meta_of(total, headers))  # noqa: E731
    if stored:
        put()
        assert cos.store.find(bucket, "k") is not None
    else:
        refused(put, "InvalidArgument")
