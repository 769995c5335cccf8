"""COS behaviour moto's S3 lacks, measured through cos-python-sdk-v5 as a user would see it."""
from __future__ import annotations

import os

import crcmod
import pytest
import requests
from qcloud_cos.cos_exception import CosServiceError

from cos_helpers import signed
from cosguard.local.cos.multipart import MIN_PART_SIZE

# The SDK's own CRC64 (qcloud_cos.resumable_downloader checks downloads with exactly this).
SDK_CRC64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xffffffffffffffff, rev=True)


def sdk_crc(data: bytes) -> str:
    return str(SDK_CRC64(data))


@pytest.fixture
def big_file(tmp_path):
    data = os.urandom(3 * MIN_PART_SIZE + MIN_PART_SIZE // 2)   # 3.5 MB: 4 parts of the SDK's 1 MB
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def test_upload_file_with_the_sdks_default_1mb_parts(cos, client, bucket, big_file, tmp_path):
    path, data = big_file
    answer = client.upload_file(Bucket=bucket, Key="big.bin", LocalFilePath=str(path))
    assert cos.counters["UploadPart"] == 4 and cos.counters["CompleteMultipartUpload"] == 1
    assert answer["x-cos-hash-crc64ecma"] == sdk_crc(data)   # combined from the parts' CRCs
    head = client.head_object(Bucket=bucket, Key="big.bin")
    assert int(head["Content-Length"]) == len(data)
    assert head["x-cos-hash-crc64ecma"] == sdk_crc(data)
    target = tmp_path / "back.bin"
    # The SDK's resumable download compares its own CRC64 with the object's and raises on mismatch.
    client.download_file(Bucket=bucket, Key="big.bin", DestFilePath=str(target), PartSize=1,
                         EnableCRC=True)
    assert target.read_bytes() == data


def _multipart(client, bucket, key, sizes):
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts, data = [], b""
    for number, size in enumerate(sizes, start=1):
        chunk = os.urandom(size)
        data += chunk
        answer = client.upload_part(Bucket=bucket, Key=key, Body=chunk, PartNumber=number,
                                    UploadId=upload_id)
        assert answer["x-cos-hash-crc64ecma"] == sdk_crc(chunk)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    return upload_id, parts, data


def test_parts_of_1mb_and_a_smaller_last_one_complete(client, bucket):
    upload_id, parts, data = _multipart(client, bucket, "m.bin", [MIN_PART_SIZE, MIN_PART_SIZE, 10])
    answer = client.complete_multipart_upload(Bucket=bucket, Key="m.bin", UploadId=upload_id,
                                              MultipartUpload={"Part": parts})
    assert answer["ETag"].endswith('-3"')
    got = client.get_object(Bucket=bucket, Key="m.bin")
    assert got["x-cos-hash-crc64ecma"] == sdk_crc(data)
    assert got["Body"].get_raw_stream().read() == data


def test_a_part_under_1mb_before_the_last_is_entity_too_small(client, bucket):
    upload_id, parts, _ = _multipart(client, bucket, "s.bin", [MIN_PART_SIZE - 1, 10])
    with pytest.raises(CosServiceError) as caught:
        client.complete_multipart_upload(Bucket=bucket, Key="s.bin", UploadId=upload_id,
                                         MultipartUpload={"Part": parts})
    assert (caught.value.get_status_code(), caught.value.get_error_code()) == (400, "EntityTooSmall")
    with pytest.raises(CosServiceError):
        client.head_object(Bucket=bucket, Key="s.bin")


def test_crc64_on_put_get_head_and_copy(client, bucket):
    body = b"the quick brown fox" * 1000
    put = client.put_object(Bucket=bucket, Key="a.txt", Body=body)
    assert put["x-cos-hash-crc64ecma"] == sdk_crc(body)
    assert client.head_object(Bucket=bucket, Key="a.txt")["x-cos-hash-crc64ecma"] == sdk_crc(body)
    assert client.get_object(Bucket=bucket, Key="a.txt", Range="bytes=0-3")[
        "x-cos-hash-crc64ecma"] == sdk_crc(body)    # always the whole object's
    client.copy_object(Bucket=bucket, Key="b.txt", CopySource={
        "Bucket": bucket, "Key": "a.txt", "Region": "ap-guangzhou"})
    assert client.head_object(Bucket=bucket, Key="b.txt")["x-cos-hash-crc64ecma"] == sdk_crc(body)
    client.put_object(Bucket=bucket, Key="a.txt", Body=b"new")   # an overwrite: a new CRC
    assert client.head_object(Bucket=bucket, Key="a.txt")["x-cos-hash-crc64ecma"] == sdk_crc(b"new")


def test_the_crc64_survives_a_copy_and_a_multipart_copy_whose_etags_differ(client, bucket):
    """CRC64 is of the content (doc 436/40334): a copy keeps it whatever its ETag becomes, which is
    what tells cosguard's own quarantine copies apart from other bytes of the same size."""
    body = bytes(range(256)) * 6 * 1024   # 1.5 MB: two parts of a multipart copy (1 MB, then the rest)
    upload = client.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    part = client.upload_part(Bucket=bucket, Key="parts", Body=body, PartNumber=1, UploadId=upload)
    done = client.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload, MultipartUpload={
        "Part": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    source = {"Bucket": bucket, "Key": "parts", "Region": "ap-guangzhou"}
    client.copy_object(Bucket=bucket, Key="one-request", CopySource=source)
    upload = client.create_multipart_upload(Bucket=bucket, Key="multipart-copy")["UploadId"]
    parts = [{"PartNumber": n, "ETag": client.upload_part_copy(
        Bucket=bucket, Key="multipart-copy", PartNumber=n, UploadId=upload, CopySource=source,
        CopySourceRange=f"bytes={first}-{last}")["ETag"]} for n, (first, last) in
        enumerate([(0, 1024 * 1024 - 1), (1024 * 1024, len(body) - 1)], start=1)]
    client.complete_multipart_upload(Bucket=bucket, Key="multipart-copy", UploadId=upload,
                                     MultipartUpload={"Part": parts})
    heads = {key: client.head_object(Bucket=bucket, Key=key) for key in ("parts", "one-request", "multipart-copy")}
    assert {head["x-cos-hash-crc64ecma"] for head in heads.values()} == {sdk_crc(body)}
    assert len({head["ETag"] for head in heads.values()}) == 3 and heads["parts"]["ETag"] == done["ETag"]


def test_head_reads_the_cached_crc_not_the_body(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="c.txt", Body=b"abc")
    stored = cos.store.find(bucket, "c.txt")
    answers = cos._app._answers
    answers.crcs.remember(stored, 12345)   # a HEAD that recomputed would not answer this
    assert client.head_object(Bucket=bucket, Key="c.txt")["x-cos-hash-crc64ecma"] == "12345"


def test_list_objects_counts_common_prefixes_in_max_keys(client, bucket):
    names = ["a.txt", "d0/x", "d0/y", "d1/x", "e.txt", "f/g/h", "z.txt"]
    for name in names:
        client.put_object(Bucket=bucket, Key=name, Body=b"x")
    seen, marker, pages = [], "", 0
    while True:
        page = client.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2, Marker=marker)
        pages += 1
        keys = [c["Key"] for c in page.get("Contents", [])]
        prefixes = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert len(keys) + len(prefixes) <= 2
        seen += keys + prefixes
        if page["IsTruncated"] != "true":
            assert "NextMarker" not in page
            break
        assert page["NextMarker"] == max(keys + prefixes)
        marker = page["NextMarker"]
    assert sorted(seen) == ["a.txt", "d0/", "d1/", "e.txt", "f/", "z.txt"] and len(seen) == 6
    assert pages == 3


def test_list_objects_without_delimiter_and_with_prefix(client, bucket):
    for name in ["p/1", "p/2", "p/3", "q"]:
        client.put_object(Bucket=bucket, Key=name, Body=b"xy")
    page = client.list_objects(Bucket=bucket, Prefix="p/", MaxKeys=2)
    assert [c["Key"] for c in page["Contents"]] == ["p/1", "p/2"]
    assert page["IsTruncated"] == "true" and page["NextMarker"] == "p/2"
    assert page["Contents"][0]["Size"] == "2" and page["Contents"][0]["StorageClass"] == "STANDARD"
    rest = client.list_objects(Bucket=bucket, Prefix="p/", Marker="p/2")
    assert [c["Key"] for c in rest["Contents"]] == ["p/3"] and rest["IsTruncated"] == "false"


def test_head_bucket_names_the_configured_region(client, bucket):
    assert client.head_bucket(Bucket=bucket)["x-cos-bucket-region"] == "ap-guangzhou"


def test_versioning_document_is_cos_versioning_configuration(client, bucket):
    assert client.get_bucket_versioning(Bucket=bucket) == {"VersioningConfiguration": None}
    client.put_bucket_versioning(Bucket=bucket, Status="Enabled")
    assert client.get_bucket_versioning(Bucket=bucket) == {"Status": "Enabled"}
    client.put_bucket_versioning(Bucket=bucket, Status="Suspended")
    assert client.get_bucket_versioning(Bucket=bucket) == {"Status": "Suspended"}


def test_no_internal_or_s3_names_in_answers(cos, client, bucket):
    answers = [signed(client, cos, "PUT", "fresh-1250000000"),
               signed(client, cos, "PUT", bucket, "k", data=b"v"),
               signed(client, cos, "HEAD", bucket, "k"),
               signed(client, cos, "GET", bucket, "k"),
               signed(client, cos, "HEAD", bucket),
               signed(client, cos, "GET", bucket, params={"versioning": ""}),
               signed(client, cos, "GET", bucket, "missing"),
               requests.put(f"{cos.endpoint}/k", headers={"Host": f"{bucket}.cos.ap-guangzhou."
                                                          "myqcloud.com", "Authorization": "x"})]
    assert [a.status_code for a in answers] == [200] * 6 + [404, 403]
    for answer in answers:
        for name, value in answer.headers.items():
            assert "amz" not in name.lower() and cos.names.prefix not in value, (name, value)
            assert name.lower() != "location", value   # COS's PUT Bucket sends none
            assert not name.lower().startswith("access-control-")   # no Origin sent, no CORS
        assert answer.headers["Server"] == "tencent-cos"
        assert cos.names.prefix.encode() not in answer.content


def test_bucket_location_and_acl_owner_are_cos_shaped(cos, client, bucket):
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "ap-guangzhou"
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    for acl in (client.get_bucket_acl(Bucket=bucket), client.get_object_acl(Bucket=bucket, Key="k")):
        assert acl["Owner"]["ID"] == "qcs::cam::uin/1250000000:uin/1250000000"
        assert "webfile" not in str(acl)
    service = signed(client, cos, "GET", "service")   # GET Service: the bucket list
    assert service.status_code == 200 and b"<Name>examplebucket-1250000000</Name>" in service.content
    assert b"webfile" not in service.content and b"<ID>qcs::cam::uin/" in service.content


def test_crc64_on_a_post_object_form_upload(cos, client, bucket):
    from test_cos_post_object import form, post  # the form helpers of the PostObject tests

    answer = post(cos, form(cos), content=b"posted for crc")
    assert answer.status_code == 204
    assert answer.headers["x-cos-hash-crc64ecma"] == sdk_crc(b"posted for crc")
    head = client.head_object(Bucket=bucket, Key="uploads/note.txt")
    assert head["x-cos-hash-crc64ecma"] == sdk_crc(b"posted for crc")
