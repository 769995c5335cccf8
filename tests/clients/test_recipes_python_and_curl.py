"""docs/local-cloud.md's cos-python-sdk-v5 and curl (pre-signed URL) recipes, run verbatim against
`cosguard local`; then curl downloads through a pre-signed GET URL, and EICAR put by curl ends
in quarantine, an expired URL and an altered one are refused."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from qcloud_cos import CosConfig, CosS3Client

from client_support import BUCKET, REGION, read, recipe, require, run, wait_for_verdict
from helpers import signing_as_of


def curl() -> str:
    return require(shutil.which("curl"), "curl")


def signer(env) -> CosS3Client:
    """Signs as the curl recipe does: the SDK configured for real COS, no endpoint override."""
    return CosS3Client(CosConfig(Region=REGION, SecretId=env["SECRET_ID"],
                                 SecretKey=env["SECRET_KEY"], Scheme="http"))


def test_python_sdk_recipe(deployment, env, workdir):
    run([sys.executable, "-"], env, workdir, stdin=recipe("python-sdk"))
    sdk = deployment.sdk()
    assert read(sdk, "python/hello.txt") == (workdir / "hello.txt").read_bytes()
    assert wait_for_verdict(sdk, "python/hello.txt") == "clean"


def test_curl_recipe_then_presigned_download(deployment, env, workdir):
    tool = curl()
    run(["bash", "-euc", recipe("curl")], env, workdir)
    sdk = deployment.sdk()
    assert read(sdk, "curl/hello.txt") == (workdir / "hello.txt").read_bytes()
    assert wait_for_verdict(sdk, "curl/hello.txt") == "clean"
    url = signer(env).get_presigned_download_url(Bucket=BUCKET, Key="curl/hello.txt", Expired=60)
    run([tool, "--fail", "--silent", "--proxy", env["COS_ENDPOINT"], "-o", "back.txt", url], env, workdir)
    assert (workdir / "back.txt").read_bytes() == (workdir / "hello.txt").read_bytes()


def test_curl_presigned_put_of_eicar_is_quarantined(deployment, env, workdir):
    url = signer(env).get_presigned_url(Bucket=BUCKET, Key="curl/eicar.com", Method="PUT", Expired=60)
    run([curl(), "--fail", "--silent", "--proxy", env["COS_ENDPOINT"], "--upload-file", "eicar.com", url],
        env, workdir)
    assert wait_for_verdict(deployment.sdk(), "curl/eicar.com") == "infected"


@pytest.mark.parametrize("how", ["expired", "altered"])
def test_curl_refused_url(deployment, env, workdir, how):
    sdk = deployment.sdk()
    sdk.put_object(Bucket=BUCKET, Key="curl/private.txt", Body=b"private")
    if how == "expired":
        with signing_as_of(120):   # valid for one second, two minutes ago
            url = signer(env).get_presigned_download_url(Bucket=BUCKET, Key="curl/private.txt", Expired=1)
    else:
        url = signer(env).get_presigned_download_url(Bucket=BUCKET, Key="curl/public.txt", Expired=60)
        url = url.replace("/curl/public.txt?", "/curl/private.txt?")
    result = subprocess.run([curl(), "--silent", "--proxy", env["COS_ENDPOINT"], "-w", "\n%{http_code}", url],
                            env=env, cwd=workdir, capture_output=True, text=True, timeout=30)
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "403" and body.startswith("<?xml")
    assert ("<Code>AccessDenied</Code>" if how == "expired" else "<Code>SignatureDoesNotMatch</Code>") in body
