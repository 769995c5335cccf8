"""cos-nodejs-sdk-v5 (npm) against `cosguard local`: docs/local-cloud.md's recipe verbatim, then upload,
multipart upload, download, tags and EICAR through tests/clients/node/driver.js, which configures
the SDK as the recipe does; and path style through the SDK's `Domain`."""
from __future__ import annotations

import json

import pytest

from client_support import BUCKET, NODE_DIR, node, read, recipe, run, tags, wait_for_verdict

DRIVER = str(NODE_DIR / "driver.js")
FIVE_MB = str(5 * 1024 * 1024)   # until 1 MB parts are accepted (issue 10's fidelity part)


@pytest.fixture
def js(env, workdir):
    tool = node()

    def call(*args: str, addressing: str = "proxy") -> dict:
        out = run([tool, DRIVER, *args], dict(env, ADDRESSING=addressing), workdir).stdout
        return json.loads(out.strip().splitlines()[-1])

    return call


def test_readme_recipe(deployment, env, workdir):
    run([node(), "-"], env, workdir, stdin=recipe("nodejs-sdk"))
    sdk = deployment.sdk()
    assert read(sdk, "node/hello.txt") == (workdir / "hello.txt").read_bytes()
    assert wait_for_verdict(sdk, "node/hello.txt") == "clean"


def test_multipart_upload_and_download(deployment, js, workdir, big_file):
    answer = js("upload", "big.bin", "node/big.bin", FIVE_MB)
    assert answer["statusCode"] == 200
    sdk = deployment.sdk()
    assert "-" in sdk.head_object(Bucket=BUCKET, Key="node/big.bin")["ETag"], "expected a multipart upload"
    js("download", "node/big.bin", "big-back.bin")
    assert (workdir / "big-back.bin").read_bytes() == big_file.read_bytes()
    assert wait_for_verdict(sdk, "node/big.bin") == "clean"


def test_tags(deployment, js):
    js("upload", "hello.txt", "node/tagged.txt")
    sdk = deployment.sdk()
    assert wait_for_verdict(sdk, "node/tagged.txt") == "clean"
    js("tag", "node/tagged.txt", "team=blue&stage=raw")
    assert tags(sdk, "node/tagged.txt") == {"team": "blue", "stage": "raw"}
    listed = js("tags", "node/tagged.txt")["Tags"]
    assert {(t["Key"], t["Value"]) for t in listed} == {("team", "blue"), ("stage", "raw")}


def test_eicar_ends_in_quarantine(deployment, js):
    js("upload", "eicar.com", "node/eicar.com")
    assert wait_for_verdict(deployment.sdk(), "node/eicar.com") == "infected"


@pytest.mark.parametrize("addressing", ["path", "ip"])
def test_other_addressing(deployment, js, workdir, addressing):
    """`Domain: '127.0.0.1:PORT/{Bucket}'` (path style; the SDK signs `/<key>` for
    `/<bucket>/<key>`) and `Ip: '127.0.0.1:PORT'` (virtual host in the Host header)."""
    key = f"node/{addressing}-style.txt"
    js("upload", "hello.txt", key, addressing=addressing)
    js("download", key, "back.txt", addressing=addressing)
    assert (workdir / "back.txt").read_bytes() == (workdir / "hello.txt").read_bytes()
    assert read(deployment.sdk(), key) == (workdir / "hello.txt").read_bytes()
