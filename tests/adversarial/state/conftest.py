"""Stacks for the state attacks: cosguard deployed on the local cloud, driven over HTTP through the
SDK, with the layouts a hostile uploader finds (quarantine and ledger in the intake bucket, or in a
shared private bucket), and the operator's CLI (reconcile, restore, status) run as a human would."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Optional

import pytest

from helpers import CALLBACK_SECRET, Context, quarantined_keys, unique_bucket
from cosguard.cli import main as cli
from cosguard.local.function_url import FunctionUrlServer
from cosguard.local.loader import load_handler
from cosguard.local.stack import LocalCloud

for _name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
    del os.environ[_name]  # a developer's real keys must never reach the local cloud


class Stack:
    """`sources` intake buckets; quarantine and ledger in a private `jail` bucket, or (jail=False)
    in the intake bucket under `quarantine/` and `.cosguard/`, where uploaders can write."""

    def __init__(self, sources: int = 1, jail: bool = True, versioned: bool = False, scan_delay: float = 0.05,
                 **env: str):
        self.intakes = [unique_bucket("intake") for _ in range(sources)]
        self.intake = self.intakes[0]
        self.jail = unique_bucket("jail") if jail else self.intake
        buckets = self.intakes + ([self.jail] if jail else [])
        self.cloud = LocalCloud(buckets, scan_delay=scan_delay, versioned=self.intakes if versioned else []).start()
        self.cos = self.cloud.client("cos")
        self.events: List[Dict[str, Any]] = []
        for bucket in self.intakes:
            self.cloud.cos.subscribe(self.events.append, bucket=bucket)
        self._callback = None
        self.callback_server = FunctionUrlServer(lambda e, c: self._callback(e, c), context_factory=Context).start()
        overrides = {"COSGUARD_BUCKETS": ",".join(self.intakes),
                     "COSGUARD_QUARANTINE_BUCKET": self.jail if jail else ""}
        overrides.update(env)
        self.env = {k: v for k, v in self.cloud.function_env(
            COSGUARD_CALLBACK_URL=self.callback_server.url, COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET,
            **overrides).items() if v != ""}
        self.scan_handler = load_handler("scan_on_upload", self.env)
        self._callback = load_handler("quarantine_callback", self.env)

    @property
    def callback_handler(self):
        return self._callback

    @property
    def runtime(self):
        """The scan function instance's Runtime (its sealer's rejections, its ledger)."""
        return self.scan_handler.__globals__["RUNTIME"]

    def close(self) -> None:
        self.callback_server.stop()
        self.cloud.stop()

    # -- what uploaders and COS do ------------------------------------------------------------
    def put(self, key: str, body: bytes, bucket: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        return self.cos.put_object(Bucket=bucket or self.intake, Key=key, Body=body, **kwargs)

    def put_json(self, key: str, doc: Any, bucket: Optional[str] = None) -> None:
        self.put(key, json.dumps(doc).encode(), bucket=bucket or self.jail)

    def scan(self) -> Dict[str, Any]:
        """Run the upload trigger on every event COS emitted since the last call (cosguard's own
        writes included, in the same-bucket layout)."""
        self.cloud.cos.drain()
        taken, self.events[:] = list(self.events), []
        return self.scan_handler({"Records": [r for e in taken for r in e["Records"]]}, Context())

    def settle(self, timeout: float = 10.0) -> None:
        self.cloud.ci.wait_idle(timeout)

    # -- what a user looks at -----------------------------------------------------------------
    def body(self, key: str, bucket: Optional[str] = None, version_id: Optional[str] = None) -> bytes:
        extra = {"VersionId": version_id} if version_id else {}
        return self.cos.get_object(Bucket=bucket or self.intake, Key=key, **extra)["Body"].get_raw_stream().read()

    def exists(self, key: str, bucket: Optional[str] = None) -> bool:
        return self.cos.object_exists(Bucket=bucket or self.intake, Key=key)

    def tags(self, key: str, bucket: Optional[str] = None) -> Dict[str, str]:
        response = self.cos.get_object_tagging(Bucket=bucket or self.intake, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", {}).get("Tag", [])}

    def meta(self, key: str, bucket: Optional[str] = None) -> Dict[str, str]:
        headers = self.cos.head_object(Bucket=bucket or self.jail, Key=key)
        return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-cos-meta-")}

    def quarantined(self, key: str, source: Optional[str] = None) -> List[str]:
        return quarantined_keys(self.cos, self.jail, source or self.intake, key)

    def ledger_doc(self, key: str) -> Dict[str, Any]:
        return json.loads(self.body(key, bucket=self.jail))

    def jobs_created(self) -> int:
        return len(self.cloud.ci.backend.jobs)

    # -- what an operator runs ------------------------------------------------------------------
    def cli(self, capsys, tmp_path, *argv: str):
        """`cosguard <argv> --env-file <this deployment> --json`: (exit code, parsed output)."""
        path = tmp_path / "cosguard.env"
        path.write_text("\n".join(f"{k}={v}" for k, v in self.env.items()) + "\n")
        capsys.readouterr()
        code = cli(list(argv) + ["--env-file", str(path), "--json"])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err


def md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


@pytest.fixture
def stack():
    """`stack(**options)` starts a Stack; all are stopped after the test."""
    made: List[Stack] = []

    def make(**kwargs: Any) -> Stack:
        made.append(Stack(**kwargs))
        return made[-1]

    yield make
    for item in made:
        item.close()
