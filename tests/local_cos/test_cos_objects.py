"""Object and bucket APIs through cos-python-sdk-v5, over real HTTP, as cosguard calls them."""
from __future__ import annotations

import hashlib
import os

import pytest
from qcloud_cos import CosS3Client, CosServiceError


def read_body(response) -> bytes:
    return response["Body"].get_raw_stream().read()


def source(cos, bucket, key, **extra):
    return dict(Bucket=bucket, Key=key, Region=cos.region, **extra)


def test_put_head_get_delete_roundtrip(client, bucket):
    put = client.put_object(Bucket=bucket, Key="docs/a.txt", Body=b"hello cos",
                            ContentType="text/plain", Metadata={"x-cos-meta-owner": "alice"})
    assert put["ETag"] == '"%s"' % hashlib.md5(b"hello cos").hexdigest()
    assert put["x-cos-request-id"]

    head = client.head_object(Bucket=bucket, Key="docs/a.txt")
    assert head["Content-Length"] == "9"
    assert head["Content-Type"] == "text/plain"
    assert head["x-cos-meta-owner"] == "alice"
    assert head["ETag"] == put["ETag"]
    assert not any(name.lower().startswith("x-amz-") for name in head)

    got = client.get_object(Bucket=bucket, Key="docs/a.txt")
    assert read_body(got) == b"hello cos"
    assert got["x-cos-meta-owner"] == "alice"

    client.delete_object(Bucket=bucket, Key="docs/a.txt")
    assert client.object_exists(Bucket=bucket, Key="docs/a.txt") is False
    with pytest.raises(CosServiceError) as missing:
        client.get_object(Bucket=bucket, Key="docs/a.txt")
    assert missing.value.get_status_code() == 404
    assert missing.value.get_error_code() == "NoSuchKey"
    assert missing.value.get_request_id()


def test_missing_bucket_is_no_such_bucket(cos, client):
    with pytest.raises(CosServiceError) as err:
        client.put_object(Bucket="nosuchbucket-1250000000", Key="k", Body=b"x")
    assert err.value.get_status_code() == 404
    assert err.value.get_error_code() == "NoSuchBucket"
    assert cos.names.prefix not in err.value.get_origin_msg()   # moto's internal name never leaks


@pytest.mark.parametrize("key", [
    "with space.txt", "plus+sign.txt", "percent%sign.txt", "report%20final.txt",
    "中文目录/病毒样本.txt", "deep/./dots/..x", "a&b=c?d#e.txt",
])
def test_awkward_keys_keep_their_exact_name(client, bucket, key):
    client.put_object(Bucket=bucket, Key=key, Body=key.encode("utf-8"))
    assert read_body(client.get_object(Bucket=bucket, Key=key)) == key.encode("utf-8")
    assert client.head_object(Bucket=bucket, Key=key)["Content-Length"] == str(len(key.encode()))
    listed = client.list_objects(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [key]
    client.delete_object(Bucket=bucket, Key=key)
    assert "Contents" not in client.list_objects(Bucket=bucket)


def test_literal_percent_20_is_not_a_space(client, bucket):
    client.put_object(Bucket=bucket, Key="report%20final.txt", Body=b"literal")
    assert client.object_exists(Bucket=bucket, Key="report final.txt") is False
    assert client.object_exists(Bucket=bucket, Key="report%20final.txt") is True


def test_object_tagging_put_get_delete_and_on_upload(client, bucket):
    client.put_object(Bucket=bucket, Key="t.bin", Body=b"x", Tagging="stage=new&team=sec")
    tags = client.get_object_tagging(Bucket=bucket, Key="t.bin")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in tags} == {"stage": "new", "team": "sec"}
    assert client.head_object(Bucket=bucket, Key="t.bin").get("x-cos-tagging-count") == "2"

    client.put_object_tagging(Bucket=bucket, Key="t.bin", Tagging={
        "TagSet": {"Tag": [{"Key": "cosguard-verdict", "Value": "clean"}]}})
    tags = client.get_object_tagging(Bucket=bucket, Key="t.bin")["TagSet"]["Tag"]
    assert tags == [{"Key": "cosguard-verdict", "Value": "clean"}]

    client.delete_object_tagging(Bucket=bucket, Key="t.bin")
    assert "Tag" not in (client.get_object_tagging(Bucket=bucket, Key="t.bin").get("TagSet") or {})


def test_copy_object_with_copy_source_dict(cos, client, bucket):
    cos.create_bucket("quarantine-1250000000")
    client.put_object(Bucket=bucket, Key="in/evil file.exe", Body=b"MZ payload",
                      Metadata={"x-cos-meta-origin": "upload"})
    out = client.copy_object(Bucket="quarantine-1250000000", Key="q/evil file.exe",
                             CopySource=source(cos, bucket, "in/evil file.exe"))
    assert out["ETag"] == '"%s"' % hashlib.md5(b"MZ payload").hexdigest()
    copied = client.get_object(Bucket="quarantine-1250000000", Key="q/evil file.exe")
    assert read_body(copied) == b"MZ payload"
    assert copied["x-cos-meta-origin"] == "upload"


def test_copy_with_replaced_metadata(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="m.txt", Body=b"body", Metadata={"x-cos-meta-a": "1"})
    client.copy_object(Bucket=bucket, Key="m.txt", CopySource=source(cos, bucket, "m.txt"),
                       CopyStatus="Replaced", Metadata={"x-cos-meta-b": "2"}, ContentType="text/x-b")
    head = client.head_object(Bucket=bucket, Key="m.txt")
    assert head["x-cos-meta-b"] == "2"
    assert "x-cos-meta-a" not in head
    assert head["Content-Type"] == "text/x-b"
    assert read_body(client.get_object(Bucket=bucket, Key="m.txt")) == b"body"


def test_copy_of_missing_source_is_404(cos, client, bucket):
    with pytest.raises(CosServiceError) as err:
        client.copy_object(Bucket=bucket, Key="dst", CopySource=source(cos, bucket, "nope"))
    assert err.value.get_status_code() == 404
    assert err.value.get_error_code() == "NoSuchKey"


def test_storage_classes_use_cos_names(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="cold", Body=b"c", StorageClass="ARCHIVE")
    client.put_object(Bucket=bucket, Key="ia", Body=b"i", StorageClass="STANDARD_IA")
    client.put_object(Bucket=bucket, Key="deep", Body=b"d", StorageClass="DEEP_ARCHIVE")
    for cos_class in ("INTELLIGENT_TIERING", "MAZ_STANDARD", "MAZ_STANDARD_IA"):
        client.put_object(Bucket=bucket, Key="other", Body=b"o", StorageClass=cos_class)
        assert client.head_object(Bucket=bucket, Key="other")["x-cos-storage-class"] == cos_class
        assert cos.store.get(bucket, "other").storage_class == cos_class
    client.delete_object(Bucket=bucket, Key="other")
    assert client.head_object(Bucket=bucket, Key="cold")["x-cos-storage-class"] == "ARCHIVE"
    assert client.head_object(Bucket=bucket, Key="ia")["x-cos-storage-class"] == "STANDARD_IA"
    listed = {i["Key"]: i["StorageClass"] for i in client.list_objects(Bucket=bucket)["Contents"]}
    assert listed == {"cold": "ARCHIVE", "deep": "DEEP_ARCHIVE", "ia": "STANDARD_IA"}
    assert cos.store.get(bucket, "deep").storage_class == "DEEP_ARCHIVE"
    with pytest.raises(CosServiceError) as err:   # archived objects need a restore first
        client.get_object(Bucket=bucket, Key="cold")
    assert err.value.get_status_code() == 403
    with pytest.raises(CosServiceError) as bad:
        client.put_object(Bucket=bucket, Key="x", Body=b"x", StorageClass="GLACIER")
    assert bad.value.get_status_code() == 400
    assert bad.value.get_error_code() == "InvalidStorageClass"


def test_list_objects_prefix_marker_pagination(client, bucket):
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"p/{i}.txt", Body=b"x" * i)
    client.put_object(Bucket=bucket, Key="other.txt", Body=b"o")
    first = client.list_objects(Bucket=bucket, Prefix="p/", MaxKeys=2)
    assert [c["Key"] for c in first["Contents"]] == ["p/0.txt", "p/1.txt"]
    assert first["IsTruncated"] == "true"
    assert first["Name"] == bucket
    rest = client.list_objects(Bucket=bucket, Prefix="p/", Marker=first["NextMarker"], MaxKeys=10)
    assert [c["Key"] for c in rest["Contents"]] == ["p/2.txt", "p/3.txt", "p/4.txt"]
    assert rest["IsTruncated"] == "false"
    assert [c["Size"] for c in rest["Contents"]] == ["2", "3", "4"]
    dirs = client.list_objects(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in dirs["CommonPrefixes"]] == ["p/"]


def test_list_objects_url_encoding_type(client, bucket):
    client.put_object(Bucket=bucket, Key="a b/中.txt", Body=b"x")
    listed = client.list_objects(Bucket=bucket, EncodingType="url")   # asked for: left encoded
    assert [c["Key"] for c in listed["Contents"]] == ["a%20b/%E4%B8%AD.txt"]
    assert [c["Key"] for c in client.list_objects(Bucket=bucket)["Contents"]] == ["a b/中.txt"]


def test_versioning_and_delete_of_a_specific_version(cos, client, bucket):
    assert client.get_bucket_versioning(Bucket=bucket).get("Status") in (None, "Suspended")
    client.put_bucket_versioning(Bucket=bucket, Status="Enabled")
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = client.put_object(Bucket=bucket, Key="v.txt", Body=b"one")["x-cos-version-id"]
    v2 = client.put_object(Bucket=bucket, Key="v.txt", Body=b"two")["x-cos-version-id"]
    assert v1 and v2 and v1 != v2
    assert read_body(client.get_object(Bucket=bucket, Key="v.txt", VersionId=v1)) == b"one"
    versions = client.list_objects_versions(Bucket=bucket, Prefix="v.txt")["Version"]
    assert sorted(v["VersionId"] for v in versions) == sorted([v1, v2])

    client.delete_object(Bucket=bucket, Key="v.txt", VersionId=v2)
    assert read_body(client.get_object(Bucket=bucket, Key="v.txt")) == b"one"
    with pytest.raises(CosServiceError) as gone:
        client.get_object(Bucket=bucket, Key="v.txt", VersionId=v2)
    assert gone.value.get_status_code() == 404
    assert cos.store.get(bucket, "v.txt").version_id == v1


def test_copy_of_a_specific_version(cos, client):
    cos.create_bucket("versioned-1250000000", versioning=True)
    b = "versioned-1250000000"
    v1 = client.put_object(Bucket=b, Key="s", Body=b"old")["x-cos-version-id"]
    client.put_object(Bucket=b, Key="s", Body=b"new")
    client.copy_object(Bucket=b, Key="d", CopySource=source(cos, b, "s", VersionId=v1))
    assert read_body(client.get_object(Bucket=b, Key="d")) == b"old"


def test_forbid_overwrite_conflicts_and_writes_nothing(client, bucket):
    claim = {"x-cos-forbid-overwrite": "true"}
    client.put_object(Bucket=bucket, Key="claim/job-1", Body=b"first", Metadata=claim)
    with pytest.raises(CosServiceError) as err:
        client.put_object(Bucket=bucket, Key="claim/job-1", Body=b"second", Metadata=claim)
    assert err.value.get_status_code() == 409
    assert err.value.get_error_code() == "FileAlreadyExists"
    assert read_body(client.get_object(Bucket=bucket, Key="claim/job-1")) == b"first"
    client.put_object(Bucket=bucket, Key="claim/job-1", Body=b"third")   # without the header
    assert read_body(client.get_object(Bucket=bucket, Key="claim/job-1")) == b"third"


def test_forbid_overwrite_on_copy(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="src", Body=b"s")
    client.put_object(Bucket=bucket, Key="dst", Body=b"d")
    with pytest.raises(CosServiceError) as err:
        client.copy_object(Bucket=bucket, Key="dst", CopySource=source(cos, bucket, "src"),
                           Metadata={"x-cos-forbid-overwrite": "true"})
    assert err.value.get_status_code() == 409
    assert read_body(client.get_object(Bucket=bucket, Key="dst")) == b"d"


def test_forbid_overwrite_claims_are_exclusive_under_concurrency(make_client, cos, bucket):
    from concurrent.futures import ThreadPoolExecutor

    def claim(i):
        try:
            make_client(cos).put_object(Bucket=bucket, Key="race", Body=str(i).encode(),
                                        Metadata={"x-cos-forbid-overwrite": "true"})
            return i
        except CosServiceError as err:
            assert err.get_status_code() == 409
            return None

    with ThreadPoolExecutor(8) as pool:
        winners = [w for w in pool.map(claim, range(16)) if w is not None]
    assert len(winners) == 1
    assert cos.store.get(bucket, "race").open().read() == str(winners[0]).encode()


def test_multipart_upload_and_complete(client, bucket):
    part = os.urandom(5 * 1024 * 1024)
    upload = client.create_multipart_upload(Bucket=bucket, Key="big.bin")
    assert upload["Bucket"] == bucket
    etags = []
    for n, data in enumerate([part, b"tail"], start=1):
        etags.append(client.upload_part(Bucket=bucket, Key="big.bin", Body=data, PartNumber=n,
                                        UploadId=upload["UploadId"])["ETag"])
    done = client.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"],
        MultipartUpload={"Part": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    assert done["Bucket"] == bucket
    assert done["Location"] == f"{bucket}.cos.ap-guangzhou.myqcloud.com/big.bin"
    assert client.head_object(Bucket=bucket, Key="big.bin")["Content-Length"] == str(len(part) + 4)


def test_managed_copy_uses_multipart_copy(cos, bucket):
    """`copy()` copies part by part (UploadPartCopy with ranges) when storage classes differ.

    Its source HEAD ignores IP/Port, so this client reaches local COS as an HTTP proxy.
    """
    config = cos.client_config(proxy=True)
    config.set_copy_part_threshold_size(5 * 1024 * 1024)
    client = CosS3Client(config, retry=0)
    data = os.urandom(12 * 1024 * 1024)
    client.put_object(Bucket=bucket, Key="large.bin", Body=data)
    client.copy(Bucket=bucket, Key="large-ia.bin", CopySource=source(cos, bucket, "large.bin"),
                StorageClass="STANDARD_IA", PartSize=5, MAXThread=2)
    assert cos.counters["UploadPartCopy"] == 3
    assert cos.counters["CompleteMultipartUpload"] == 1
    assert cos.store.get(bucket, "large-ia.bin").open().read() == data
    assert client.head_object(Bucket=bucket, Key="large-ia.bin")["x-cos-storage-class"] == "STANDARD_IA"


def test_delete_objects_batch(client, bucket):
    for key in ("d/1", "d/2", "keep"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    out = client.delete_objects(Bucket=bucket, Delete={"Quiet": "false", "Object": [
        {"Key": "d/1"}, {"Key": "d/2"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["d/1", "d/2"]
    assert [c["Key"] for c in client.list_objects(Bucket=bucket)["Contents"]] == ["keep"]


def test_buckets_through_the_sdk(cos, client):
    client.create_bucket(Bucket="made-1250000000")
    client.head_bucket(Bucket="made-1250000000")
    assert "made-1250000000" in cos.buckets()
    client.delete_bucket(Bucket="made-1250000000")
    assert "made-1250000000" not in cos.buckets()


def test_store_reads_objects_for_local_ci(cos, client, bucket):
    from cosguard.local.store import ObjectMissing

    client.put_object(Bucket=bucket, Key="s/x.bin", Body=b"abc")
    stored = cos.store.get(bucket, "s/x.bin")
    assert (stored.bucket, stored.key, stored.size, stored.storage_class) == (bucket, "s/x.bin", 3, "STANDARD")
    assert stored.etag == '"%s"' % hashlib.md5(b"abc").hexdigest()
    assert stored.version_id is None
    assert stored.open().read() == b"abc"
    with pytest.raises(ObjectMissing):
        cos.store.get(bucket, "s/none")
    with pytest.raises(ObjectMissing):
        cos.store.get("otherbucket-1250000000", "s/x.bin")


def test_list_buckets_through_the_proxy_config(cos):
    """`list_buckets` goes to service.cos.myqcloud.com, ignoring IP: the proxy config reaches us."""
    cos.create_bucket("second-1250000000")
    client = CosS3Client(cos.client_config(proxy=True), retry=0)
    names = [b["Name"] for b in client.list_buckets()["Buckets"]["Bucket"]]
    assert names == ["examplebucket-1250000000", "second-1250000000"]
    assert cos.counters["GetService"] == 1


@pytest.mark.parametrize("storage_class", ["ARCHIVE", "DEEP_ARCHIVE"])
def test_archived_objects_cannot_be_read_until_restored(client, bucket, storage_class):
    """GET of an ARCHIVE / DEEP_ARCHIVE object answers 403 InvalidObjectState until POST ?restore
    (doc 436/7753, doc 436/12633, error codes doc 436/7730); HEAD still answers."""
    client.put_object(Bucket=bucket, Key="cold.json", Body=b"{}", StorageClass=storage_class)
    with pytest.raises(CosServiceError) as err:
        client.get_object(Bucket=bucket, Key="cold.json")
    assert (err.value.get_status_code(), err.value.get_error_code()) == (403, "InvalidObjectState")
    assert "storage class" in err.value.get_error_msg()
    assert client.head_object(Bucket=bucket, Key="cold.json")["x-cos-storage-class"] == storage_class
    client.restore_object(Bucket=bucket, Key="cold.json",
                          RestoreRequest={"Days": 1, "CASJobParameters": {"Tier": "Standard"}})
    assert client.get_object(Bucket=bucket, Key="cold.json")["Body"].get_raw_stream().read() == b"{}"


def test_archived_objects_keep_their_tags_readable(client, bucket):
    """Tagging is metadata: COS answers it for ARCHIVE objects that cannot be read yet."""
    client.put_object(Bucket=bucket, Key="cold.pdf", Body=b"c", StorageClass="ARCHIVE",
                      Tagging="team=blue")
    client.put_object_tagging(Bucket=bucket, Key="cold.pdf", Tagging={"TagSet": {"Tag": [
        {"Key": "team", "Value": "blue"}, {"Key": "cosguard-status", "Value": "unscannable"}]}})
    tags = client.get_object_tagging(Bucket=bucket, Key="cold.pdf")["TagSet"]["Tag"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "blue", "cosguard-status": "unscannable"}
    with pytest.raises(CosServiceError) as err:
        client.get_object_tagging(Bucket=bucket, Key="no-such.pdf")
    assert err.value.get_error_code() == "NoSuchKey"
