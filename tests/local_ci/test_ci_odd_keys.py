"""Keys XML cannot carry, as the local CI takes them: through a real XML parser, as CI must.

cos-python-sdk-v5 escapes only `& < >`: a C0 control in `Object` makes the body ill-formed (400
MalformedXML), and a CR is read as LF (CI scans another key). A pre-signed `Url` on the bucket's
COS host is fetched from the local COS, which checks its signature and expiry as COS would.
"""
from __future__ import annotations

import pytest
from qcloud_cos import CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from ci_helpers import wait_done
from cosguard.infra.ci_input import key_in_url, object_form_carries
from cosguard.local.ci import EICAR_NAME, eicar_bytes
from cosguard.local.stack import LocalCloud

BUCKET = "odd-1250000000"


@pytest.fixture(scope="module")
def cloud():
    """A CI that keeps a `Url`'s query string: what these tests are about (the default drops it,
    tests/local_ci/test_ci_versions.py covers that position)."""
    with LocalCloud([BUCKET], scan_delay=0.01) as started:
        started.ci.faults.url_query_dropped = False
        yield started


@pytest.fixture(scope="module")
def cos(cloud) -> CosS3Client:
    return cloud.client("cos")


@pytest.fixture(scope="module")
def ci(cloud) -> CosS3Client:
    return cloud.client("ci")


def _signer(cloud) -> CosS3Client:
    """A client as for real COS (no IP): its pre-signed URLs name the bucket's COS host."""
    return CosS3Client(cloud.cos.client_config(proxy=True), retry=0)


@pytest.mark.parametrize("key", ["ctl\x01.exe", "esc\x1b.exe", "nul\x00.exe"])
def test_a_control_character_in_object_is_malformed_xml(cloud, cos, ci, key):
    if "\x00" not in key:
        cos.put_object(Bucket=BUCKET, Key=key, Body=eicar_bytes())
    with pytest.raises(CosServiceError) as caught:
        ci.ci_auditing_virus_submit(Bucket=BUCKET, Key=key)
    assert (caught.value.get_status_code(), caught.value.get_error_code()) == (400, "MalformedXML")


def test_a_cr_in_object_reaches_ci_as_lf(cos, ci):
    cos.put_object(Bucket=BUCKET, Key="x\ry.exe", Body=eicar_bytes())
    job_id = ci.ci_auditing_virus_submit(Bucket=BUCKET, Key="x\ry.exe")["JobsDetail"]["JobId"]
    detail = wait_done(ci, job_id, BUCKET)["JobsDetail"]
    assert detail["Object"] == "x\ny.exe"   # another key: CI found nothing there
    assert (detail["State"], detail["Code"]) == ("Failed", "ResourceNotFound")


@pytest.mark.parametrize("key", ["tab\t.exe", "lf\n.exe", " lead .exe"])
def test_tab_lf_and_spaces_in_object_survive_the_parser(cos, ci, key):
    """XML keeps them in element text (cosguard still sends such keys as a Url: CI may trim)."""
    cos.put_object(Bucket=BUCKET, Key=key, Body=eicar_bytes())
    job_id = ci.ci_auditing_virus_submit(Bucket=BUCKET, Key=key)["JobsDetail"]["JobId"]
    detail = wait_done(ci, job_id, BUCKET)["JobsDetail"]
    assert (detail["Object"], detail["Suggestion"]) == (key, "block")


@pytest.mark.parametrize("key", ["ctl\x01.exe", "cr\r.exe", "crlf\r\n.exe", "tab\t.exe", " lead.exe",
                                 "a/./b.exe", "\u202e.exe"])
def test_a_presigned_url_carries_any_key_exactly(cloud, cos, ci, key):
    cos.put_object(Bucket=BUCKET, Key=key, Body=eicar_bytes())
    url = cloud_url(cloud, key)
    assert key_in_url(url, BUCKET) == key
    job_id = ci.ci_auditing_virus_submit(Bucket=BUCKET, Url=url)["JobsDetail"]["JobId"]
    detail = wait_done(ci, job_id, BUCKET)["JobsDetail"]
    assert (detail["State"], detail["Suggestion"]) == ("Success", "block"), detail
    assert detail["Url"] == url and "Object" not in detail
    assert key_in_url(detail["Url"], BUCKET) == key
    assert EICAR_NAME in str(detail["DetectDetail"])


def cloud_url(cloud, key: str, **kwargs) -> str:
    return _signer(cloud).get_presigned_download_url(Bucket=BUCKET, Key=key, Expired=60, **kwargs)


@pytest.mark.parametrize("tamper", ["signature", "key"])
def test_a_url_the_local_cos_refuses_fails_the_job(cloud, cos, ci, tamper):
    cos.put_object(Bucket=BUCKET, Key="mine.exe", Body=eicar_bytes())
    cos.put_object(Bucket=BUCKET, Key="other.exe", Body=eicar_bytes())
    url = cloud_url(cloud, "mine.exe")
    url = url.replace("q-signature=", "q-signature=0") if tamper == "signature" else \
        url.replace("/mine.exe?", "/other.exe?")
    job_id = ci.ci_auditing_virus_submit(Bucket=BUCKET, Url=url)["JobsDetail"]["JobId"]
    detail = wait_done(ci, job_id, BUCKET)["JobsDetail"]
    assert (detail["State"], detail["Code"]) == ("Failed", "ResourceDownloadFailed")
    assert "403" in detail["Message"]


def test_cosguards_own_url_is_version_pinned(cloud, cos, ci):
    """The gateway's URL names one version: CI scans it even after a clean overwrite."""
    from types import SimpleNamespace

    from cosguard.infra.ci_input import presigned_get_url
    cloud.create_bucket("ver-1250000000", versioning=True)
    first = cos.put_object(Bucket="ver-1250000000", Key="v\x01.exe", Body=eicar_bytes())
    cos.put_object(Bucket="ver-1250000000", Key="v\x01.exe", Body=b"clean now")
    settings = SimpleNamespace(region=cloud.region, session_token=cloud.credentials.token,
                               cos_endpoint=cloud.cos.endpoint)
    url = presigned_get_url(_signer(cloud), settings, "ver-1250000000", "v\x01.exe", first["x-cos-version-id"])
    assert url.startswith("http://ver-1250000000.cos.")
    job_id = ci.ci_auditing_virus_submit(Bucket="ver-1250000000", Url=url)["JobsDetail"]["JobId"]
    assert wait_done(ci, job_id, "ver-1250000000")["JobsDetail"]["Suggestion"] == "block"


@pytest.mark.parametrize("key, carried", [
    ("plain/report 2024 (final).pdf", True), ("文档/报告.doc", True), ("a&b<c>.txt", True),
    ("x\x01", False), ("x\r", False), ("x\n", False), ("x\t", False), ("x\x7f", False),
    ("x\x85", False), ("x\u2028", False), ("x\ufffe", False), ("x\ud800", False),
    (" lead", False), ("trail ", False), ("", False)])
def test_which_keys_go_as_object(key, carried):
    assert object_form_carries(key) is carried


def test_key_in_url_names_only_the_buckets_own_host():
    assert key_in_url(f"https://{BUCKET}.cos.ap-guangzhou.myqcloud.com/a%0Db?q=1", BUCKET) == "a\rb"
    assert key_in_url("https://other-1250000000.cos.ap-guangzhou.myqcloud.com/a", BUCKET) == ""
    assert key_in_url("", BUCKET) == ""


def test_a_url_signed_with_temporary_keys_carries_their_token():
    """SCF runs on a role's temporary keys: the URL must carry the token, or COS refuses it."""
    from types import SimpleNamespace

    from cosguard.infra.ci_input import presigned_get_url
    from cosguard.local.auth import Credentials
    credentials = Credentials("AKIDtemporary", "temporary-secret", token="session-token")
    with LocalCloud(["tmp-1250000000"], scan_delay=0.01, credentials=credentials) as cloud:
        cloud.ci.faults.url_query_dropped = False
        cloud.client("cos").put_object(Bucket="tmp-1250000000", Key="t\r.exe", Body=eicar_bytes())
        settings = SimpleNamespace(region=cloud.region, session_token="session-token",
                                   cos_endpoint=cloud.cos.endpoint)
        url = presigned_get_url(_signer(cloud), settings, "tmp-1250000000", "t\r.exe")
        assert "x-cos-security-token=session-token" in url
        ci = cloud.client("ci")
        job_id = ci.ci_auditing_virus_submit(Bucket="tmp-1250000000", Url=url)["JobsDetail"]["JobId"]
        assert wait_done(ci, job_id, "tmp-1250000000")["JobsDetail"]["Suggestion"] == "block"
        without = url.replace("&x-cos-security-token=session-token", "")
        job_id = ci.ci_auditing_virus_submit(Bucket="tmp-1250000000", Url=without)["JobsDetail"]["JobId"]
        assert wait_done(ci, job_id, "tmp-1250000000")["JobsDetail"]["State"] == "Failed"


def test_a_key_no_url_can_name_is_a_permanent_refusal():
    from types import SimpleNamespace

    from cosguard.errors import CloudPermanentError
    from cosguard.infra.ci_input import presigned_get_url
    settings = SimpleNamespace(region="ap-guangzhou", session_token=None, cos_endpoint=None)
    client = CosS3Client(__import__("qcloud_cos").CosConfig(Region="ap-guangzhou", SecretId="AKIDx", SecretKey="k"))
    with pytest.raises(CloudPermanentError) as caught:
        presigned_get_url(client, settings, BUCKET, "lone\ud800surrogate")
    assert caught.value.code == "UnsupportedKey" and not caught.value.retryable
    assert presigned_get_url(client, settings, BUCKET, "ok\r").startswith(f"https://{BUCKET}.cos.ap-guangzhou.")
