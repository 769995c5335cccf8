"""Pre-signed URLs and the three ways of addressing the local COS (virtual host, proxy, path style).

Pre-signed URLs come from cos-python-sdk-v5's `get_presigned_url` / `get_presigned_download_url`
and are fetched with plain `requests`, as a browser or curl would: through the local COS as an
HTTP proxy, so the URL is exactly the one COS would hand out.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from qcloud_cos import CosS3Client

from conftest import BUCKET, REGION
from cosguard.local.auth import Credentials, sign
from cosguard.local.cos import LocalCos
from helpers import signing_as_of

BODY = "pre-signed bytes\n".encode()


def _proxied(cos: LocalCos) -> dict:
    return {"http": cos.endpoint}


def _signer(cos: LocalCos) -> CosS3Client:
    """An SDK client configured as for real COS (no IP): its URLs name COS's own host."""
    return CosS3Client(cos.client_config(proxy=True), retry=0)


def test_presigned_put_then_get(cos, client):
    signer = _signer(cos)
    put_url = signer.get_presigned_url(Bucket=BUCKET, Key="shared/report 1.txt", Method="PUT",
                                       Expired=60)
    assert urlsplit(put_url).netloc == f"{BUCKET}.cos.{REGION}.myqcloud.com"
    put = requests.put(put_url, data=BODY, proxies=_proxied(cos), timeout=10)
    assert put.status_code == 200, put.text
    assert client.get_object(Bucket=BUCKET, Key="shared/report 1.txt")["Body"].get_raw_stream().read() == BODY

    get_url = signer.get_presigned_download_url(Bucket=BUCKET, Key="shared/report 1.txt", Expired=60)
    got = requests.get(get_url, proxies=_proxied(cos), timeout=10)
    assert (got.status_code, got.content) == (200, BODY)


def test_presigned_url_with_signed_params(cos, client):
    client.put_object(Bucket=BUCKET, Key="p.txt", Body=BODY)
    url = _signer(cos).get_presigned_url(Bucket=BUCKET, Key="p.txt", Method="GET", Expired=60,
                                         Params={"response-content-type": "text/plain"})
    got = requests.get(url, proxies=_proxied(cos), timeout=10)
    assert got.status_code == 200 and got.content == BODY
    # the signed parameter cannot be changed
    tampered = url.replace("response-content-type=text%2Fplain", "response-content-type=text%2Fhtml")
    assert tampered != url
    assert requests.get(tampered, proxies=_proxied(cos), timeout=10).status_code == 403


def test_expired_presigned_url_is_refused(cos, client):
    client.put_object(Bucket=BUCKET, Key="old.txt", Body=BODY)
    with signing_as_of(120):   # valid for one second, two minutes ago
        url = _signer(cos).get_presigned_download_url(Bucket=BUCKET, Key="old.txt", Expired=1)
    got = requests.get(url, proxies=_proxied(cos), timeout=10)
    assert got.status_code == 403
    assert "<Code>AccessDenied</Code>" in got.text and "expired" in got.text


@pytest.mark.parametrize("tamper", ["signature", "key", "method"])
def test_tampered_presigned_url_is_refused(cos, client, tamper):
    client.put_object(Bucket=BUCKET, Key="mine.txt", Body=BODY)
    client.put_object(Bucket=BUCKET, Key="theirs.txt", Body=b"secret")
    url = _signer(cos).get_presigned_download_url(Bucket=BUCKET, Key="mine.txt", Expired=60)
    method = "GET"
    if tamper == "signature":
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query["q-signature"] = ("0" if query["q-signature"][0] != "0" else "1") + query["q-signature"][1:]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    elif tamper == "key":
        url = url.replace("/mine.txt?", "/theirs.txt?")
    else:
        method = "DELETE"
    got = requests.request(method, url, proxies=_proxied(cos), timeout=10)
    assert got.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in got.text
    assert client.object_exists(Bucket=BUCKET, Key="mine.txt")


def test_presigned_url_of_temporary_keys_carries_the_token():
    creds = Credentials("AKIDtemporarykey0001", "temporary-secret", token="session-token-1")
    with LocalCos(region=REGION, credentials=creds) as cos:
        cos.create_bucket(BUCKET)
        signer = _signer(cos)
        # The SDK leaves the token out of a pre-signed URL; COS's documented way is to add it
        # as a (signed) parameter.
        url = signer.get_presigned_url(Bucket=BUCKET, Key="t.txt", Method="PUT", Expired=60,
                                       Params={"x-cos-security-token": creds.token})
        assert "x-cos-security-token=session-token-1" in url
        assert requests.put(url, data=BODY, proxies=_proxied(cos), timeout=10).status_code == 200
        tokenless = signer.get_presigned_url(Bucket=BUCKET, Key="t.txt", Method="PUT", Expired=60)
        refused = requests.put(tokenless, data=BODY, proxies=_proxied(cos), timeout=10)
        assert refused.status_code == 403 and "InvalidAccessKeyId" in refused.text


def _path_style(cos: LocalCos, method: str, path: str, signed_path: str, body: bytes = b"") -> requests.Response:
    """A path-style request `http://127.0.0.1:PORT<path>` whose signature covers `signed_path`."""
    now = int(time.time())
    key_time = f"{now - 10};{now + 60}"
    host = f"127.0.0.1:{cos.port}"
    signature = sign(cos.credentials.secret_key, method, signed_path, {}, {"host": host}, key_time)
    auth = (f"q-sign-algorithm=sha1&q-ak={cos.credentials.secret_id}&q-sign-time={key_time}"
            f"&q-key-time={key_time}&q-header-list=host&q-url-param-list=&q-signature={signature}")
    return requests.request(method, f"http://{host}{path}", data=body, timeout=10,
                            headers={"Authorization": auth})


@pytest.mark.parametrize("signed", ["full path", "key only"])
def test_path_style_signed_either_way(cos, client, signed):
    """`/<bucket>/<key>`, signed over the whole path or (cos-nodejs-sdk-v5 with a Domain) `/<key>`."""
    signed_path = f"/{BUCKET}/dir/a b.txt" if signed == "full path" else "/dir/a b.txt"
    put = _path_style(cos, "PUT", f"/{BUCKET}/dir/a%20b.txt", signed_path, BODY)
    assert put.status_code == 200, put.text
    got = _path_style(cos, "GET", f"/{BUCKET}/dir/a%20b.txt", signed_path)
    assert (got.status_code, got.content) == (200, BODY)
    assert client.get_object(Bucket=BUCKET, Key="dir/a b.txt")["Body"].get_raw_stream().read() == BODY


def test_path_style_signature_binds_the_key(cos, client):
    client.put_object(Bucket=BUCKET, Key="other.txt", Body=b"x")
    got = _path_style(cos, "GET", f"/{BUCKET}/other.txt", "/mine.txt")
    assert got.status_code == 403 and "SignatureDoesNotMatch" in got.text


def test_proxied_absolute_form_request_line(cos):
    """Through an HTTP proxy the request line is `PUT http://<bucket>.cos…/key HTTP/1.1`."""
    proxied = CosS3Client(cos.client_config(proxy=True), retry=0)
    proxied.put_object(Bucket=BUCKET, Key="via/proxy.txt", Body=BODY)
    assert proxied.get_object(Bucket=BUCKET, Key="via/proxy.txt")["Body"].get_raw_stream().read() == BODY
