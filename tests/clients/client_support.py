"""Third-party COS clients driven against a running `cosguard local`: where they are installed,
docs/local-cloud.md's recipes (run verbatim), and the checks every client's test shares."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, Optional

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

ROOT = pathlib.Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "clients" / "node"
BUCKET = "intake-1250000000"
QUARANTINE = "quarantine-1250000000"
REGION = "ap-guangzhou"


def require(tool: Optional[str], name: str) -> str:
    """The tool's path; absent, a skip naming the setup script, or a failure when CI=true."""
    if tool and (os.path.exists(tool) or shutil.which(tool)):
        return tool if os.path.exists(tool) else shutil.which(tool)
    reason = f"{name} is not installed: run .ci/setup-clients"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " (CI=true: the client tests must run)")
    pytest.skip(reason)


def coscmd() -> str:
    local = ROOT / ".clients" / "venv" / "bin" / "coscmd"
    return require(str(local) if local.exists() else shutil.which("coscmd"), "coscmd")


def node() -> str:
    path = require(shutil.which("node"), "node")
    require(str(NODE_DIR / "node_modules" / "cos-nodejs-sdk-v5") if
            (NODE_DIR / "node_modules" / "cos-nodejs-sdk-v5").exists() else None,
            "cos-nodejs-sdk-v5 (tests/clients/node/node_modules)")
    return path


def recipe(name: str) -> str:
    """The fenced block after `<!-- recipe: NAME -->` in docs/local-cloud.md: what the docs tell users."""
    text = (ROOT / "docs" / "local-cloud.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- recipe: %s -->\n```\w*\n(.*?)\n```" % re.escape(name), text, re.S)
    assert match, f"docs/local-cloud.md has no recipe {name!r}"
    return match.group(1) + "\n"


class Deployment:
    """`cosguard local` in a child process, as a user starts it; `ready` is its JSON ready line."""

    def __init__(self, workdir: pathlib.Path):
        self.workdir = workdir
        self.log = workdir / "functions.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cosguard.cli", "local", "--bucket", BUCKET, "--scan-delay", "0.05",
             "--function-logs", str(self.log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("cosguard local exited: " + self.process.stderr.read())
        self.ready = json.loads(line)
        (workdir / "ready.json").write_text(line)

    def env(self, home: pathlib.Path) -> Dict[str, str]:
        """The environment the docs' `env` recipe exports, obtained by running that recipe
        (minus its first line, which starts `cosguard local`: already running here)."""
        exports = recipe("env").split("\n", 1)[1] + 'printf "%s\\n%s\\n%s" "$COS_ENDPOINT" "$SECRET_ID" "$SECRET_KEY"'
        out = subprocess.run(["bash", "-c", exports], cwd=self.workdir, capture_output=True,
                             text=True, check=True, timeout=30).stdout.split("\n")
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        env.update(COS_ENDPOINT=out[0], SECRET_ID=out[1], SECRET_KEY=out[2], HOME=str(home),
                   NODE_PATH=str(NODE_DIR / "node_modules"))
        assert env["COS_ENDPOINT"] == self.ready["cos_endpoint"]
        return env

    def sdk(self) -> CosS3Client:
        """A cos-python-sdk-v5 client to check what the client under test did."""
        host, port = self.ready["cos_endpoint"].split("//")[1].split(":")
        return CosS3Client(CosConfig(Region=REGION, SecretId=self.ready["secret_id"],
                                     SecretKey=self.ready["secret_key"], Scheme="http", IP=host,
                                     Port=int(port)), retry=0)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def run(args, env: Dict[str, str], cwd: pathlib.Path, timeout: float = 120,
        stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a client command; a non-zero exit fails the test with the client's own output."""
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, input=stdin)
    assert result.returncode == 0, (f"{args[0]} exited {result.returncode}\n"
                                    f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}")
    return result


def read(sdk: CosS3Client, key: str, bucket: str = BUCKET) -> bytes:
    return sdk.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


def tags(sdk: CosS3Client, key: str, bucket: str = BUCKET) -> Dict[str, str]:
    found = (sdk.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or {}).get("Tag") or []
    found = found if isinstance(found, list) else [found]
    return {t["Key"]: t["Value"] for t in found}


def wait_for_verdict(sdk: CosS3Client, key: str, timeout: float = 30.0) -> str:
    """`infected` once the object left the bucket for quarantine, `clean` once tagged clean."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sdk.object_exists(Bucket=BUCKET, Key=key):
            # quarantine keys are <prefix><source bucket>/<job id>/<original key>
            listed = sdk.list_objects(Bucket=QUARANTINE, Prefix=f"quarantine/{BUCKET}/").get("Contents") or []
            if any(o["Key"].endswith("/" + key) for o in listed):
                return "infected"
        else:
            try:
                if tags(sdk, key).get("cosguard-status") == "clean":
                    return "clean"
            except CosServiceError:  # moved to quarantine between the two requests: look again
                pass
        time.sleep(0.2)
    return "pending"
