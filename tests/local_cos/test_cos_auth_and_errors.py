"""Signature checks and COS's error answers, through the SDK and through raw HTTP."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
import requests
from qcloud_cos import CosS3Client, CosServiceError

from cosguard.local.auth import Credentials, sign
from cosguard.local.cos import LocalCos

HOST = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"


def signed_headers(secret_id: str, secret_key: str, method: str, path: str,
                   start: int, end: int) -> dict:
    """An Authorization over `host` only, valid from `start` to `end` (epoch seconds)."""
    key_time = f"{start};{end}"
    signature = sign(secret_key, method, path, {}, {"host": HOST}, key_time)
    auth = (f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={key_time}&q-key-time={key_time}"
            f"&q-header-list=host&q-url-param-list=&q-signature={signature}")
    return {"Host": HOST, "Authorization": auth}


def cos_error(response: requests.Response) -> dict:
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    return {child.tag: child.text for child in root}


def test_wrong_secret_key_is_403_through_the_sdk(cos, make_client, bucket):
    with pytest.raises(CosServiceError) as err:
        make_client(cos, secret_key="not-the-secret").put_object(Bucket=bucket, Key="k", Body=b"x")
    assert err.value.get_status_code() == 403
    assert err.value.get_error_code() == "SignatureDoesNotMatch"
    assert err.value.get_request_id()
    assert cos.store.find(bucket, "k") is None


def test_unknown_secret_id_is_403(cos, bucket):
    config = cos.client_config(SecretId="AKIDsomebodyelse")
    with pytest.raises(CosServiceError) as err:
        CosS3Client(config, retry=0).head_bucket(Bucket=bucket)
    assert err.value.get_status_code() == 403


def test_missing_authorization_gets_cos_xml_error(cos):
    response = requests.get(f"{cos.endpoint}/anything.txt", headers={"Host": HOST})
    assert response.status_code == 403
    error = cos_error(response)
    assert set(error) == {"Code", "Message", "Resource", "RequestId", "TraceId"}
    assert error["Code"] == "AccessDenied"
    assert error["RequestId"] == response.headers["x-cos-request-id"]
    assert error["Resource"] == f"{HOST}/anything.txt"
    assert response.headers["Content-Type"] == "application/xml"


def test_expired_signature_is_403(cos, client, bucket):
    client.put_object(Bucket=bucket, Key="old.txt", Body=b"x")
    now = int(time.time())
    creds = cos.credentials
    stale = signed_headers(creds.secret_id, creds.secret_key, "get", "/old.txt", now - 7200, now - 3600)
    response = requests.get(f"{cos.endpoint}/old.txt", headers=stale)
    assert response.status_code == 403
    assert cos_error(response)["Code"] == "AccessDenied"
    assert "expired" in cos_error(response)["Message"].lower()
    fresh = signed_headers(creds.secret_id, creds.secret_key, "get", "/old.txt", now - 60, now + 600)
    assert requests.get(f"{cos.endpoint}/old.txt", headers=fresh).content == b"x"


def test_security_token_required_when_configured(make_client):
    creds = Credentials("AKIDtemporary000", "temporary-secret", token="session-token-1")
    with LocalCos(credentials=creds) as cos:
        cos.create_bucket("tokened-1250000000")
        good = CosS3Client(cos.client_config(), retry=0)
        good.put_object(Bucket="tokened-1250000000", Key="k", Body=b"x")
        no_token = CosS3Client(cos.client_config(Token=None), retry=0)
        with pytest.raises(CosServiceError) as err:
            no_token.put_object(Bucket="tokened-1250000000", Key="k2", Body=b"x")
        wrong = CosS3Client(cos.client_config(Token="session-token-2"), retry=0)
        with pytest.raises(CosServiceError) as err2:
            wrong.put_object(Bucket="tokened-1250000000", Key="k3", Body=b"x")
        assert cos.store.find("tokened-1250000000", "k2") is None
        assert cos.store.find("tokened-1250000000", "k3") is None
    assert err.value.get_status_code() == 403
    assert err2.value.get_status_code() == 403


def test_every_answer_carries_a_request_id(cos, client, bucket):
    put = client.put_object(Bucket=bucket, Key="r", Body=b"x")
    head = client.head_object(Bucket=bucket, Key="r")
    with pytest.raises(CosServiceError) as missing:
        client.head_object(Bucket=bucket, Key="nope")
    ids = {put["x-cos-request-id"], head["x-cos-request-id"], missing.value.get_request_id()}
    assert len(ids) == 3 and all(ids)
    assert missing.value.get_status_code() == 404


def test_a_bucket_in_another_region_is_not_here(cos, bucket):
    elsewhere = CosS3Client(cos.client_config(Region="ap-beijing"), retry=0)
    with pytest.raises(CosServiceError) as err:
        elsewhere.head_object(Bucket=bucket, Key="k")
    assert err.value.get_status_code() == 404


def test_path_style_requests_on_the_ip_work(cos, client, bucket):
    """Hosts that are not COS domains fall back to `/<bucket>/<key>`, still signed."""
    client.put_object(Bucket=bucket, Key="p.txt", Body=b"path style")
    host = f"127.0.0.1:{cos.port}"
    now = int(time.time())
    key_time = f"{now - 60};{now + 600}"
    path = f"/{bucket}/p.txt"
    signature = sign(cos.credentials.secret_key, "get", path, {}, {"host": host}, key_time)
    auth = (f"q-sign-algorithm=sha1&q-ak={cos.credentials.secret_id}&q-sign-time={key_time}"
            f"&q-key-time={key_time}&q-header-list=host&q-url-param-list=&q-signature={signature}")
    response = requests.get(f"{cos.endpoint}{path}", headers={"Authorization": auth})
    assert response.status_code == 200
    assert response.content == b"path style"
