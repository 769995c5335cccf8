"""coscmd (pip package `coscmd`) against `cosguard local`, configured by docs/local-cloud.md's recipe:
upload, multipart upload, download, tags, and EICAR ending in quarantine."""
from __future__ import annotations

import json

import pytest

from client_support import BUCKET, coscmd, read, recipe, run, tags, wait_for_verdict


@pytest.fixture
def cli(env, workdir):
    """Runs the docs' coscmd recipe (config + upload), then `cli(*args)` runs coscmd the same way."""
    tool = coscmd()
    env = dict(env, PATH=f"{tool.rsplit('/', 1)[0]}:{env['PATH']}")
    run(["bash", "-euc", recipe("coscmd")], env, workdir)
    # the recipe keeps its configuration in ./cos.conf (-c): the user's own ~/.cos.conf is untouched
    assert not (workdir / "home" / ".cos.conf").exists()
    # Multipart from coscmd's lowest threshold (20 MB; the default is 100 MB), and, until 1 MB
    # parts are accepted (COS's minimum; issue 10's fidelity part), 5 MB parts.
    conf = workdir / "cos.conf"
    conf.write_text(conf.read_text().replace("part_size = 1\n", "part_size = 5\n")
                    + "multiupload_threshold = 20\n")

    def call(*args: str):
        return run([tool, "-c", str(conf), *args], dict(env, http_proxy=env["COS_ENDPOINT"]), workdir)

    return call


def test_recipe_upload_and_download(deployment, cli, workdir):
    sdk = deployment.sdk()
    assert read(sdk, "coscmd/hello.txt") == (workdir / "hello.txt").read_bytes()
    cli("download", "-f", "coscmd/hello.txt", "back.txt")
    assert (workdir / "back.txt").read_bytes() == (workdir / "hello.txt").read_bytes()
    assert wait_for_verdict(sdk, "coscmd/hello.txt") == "clean"


def test_multipart_upload_and_download(deployment, cli, workdir, big_file):
    cli("upload", "big.bin", "coscmd/big.bin")
    sdk = deployment.sdk()
    head = sdk.head_object(Bucket=BUCKET, Key="coscmd/big.bin")
    assert "-" in head["ETag"], "coscmd should have used a multipart upload"
    cli("download", "-f", "coscmd/big.bin", "big-back.bin")
    assert (workdir / "big-back.bin").read_bytes() == (workdir / "big.bin").read_bytes()
    assert wait_for_verdict(sdk, "coscmd/big.bin") == "clean"


def test_tags_set_on_upload(deployment, cli):
    cli("upload", "-H", json.dumps({"x-cos-tagging": "team=blue&stage=raw"}), "hello.txt",
        "coscmd/tagged.txt")
    sdk = deployment.sdk()
    assert wait_for_verdict(sdk, "coscmd/tagged.txt") == "clean"
    assert {"team": "blue", "stage": "raw", "cosguard-status": "clean"}.items() <= tags(
        sdk, "coscmd/tagged.txt").items()


def test_eicar_ends_in_quarantine(deployment, cli):
    cli("upload", "eicar.com", "coscmd/eicar.com")
    assert wait_for_verdict(deployment.sdk(), "coscmd/eicar.com") == "infected"
