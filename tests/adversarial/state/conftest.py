"""Stacks for the state attacks: cosguard deployed on the local cloud, driven over HTTP through the
SDK, with the layouts a hostile uploader finds (quarantine and ledger in the intake bucket, or in a
shared private bucket), and the operator's CLI (reconcile, restore, status) run as a human would."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from cosguard.cli import main as cli
from deployed import DeployedStack, forget_developer_keys, stack_factory
from helpers import Context, quarantined_keys

forget_developer_keys()


class Stack(DeployedStack):
    """`sources` intake buckets; quarantine and ledger in a private `jail` bucket, or (jail=False)
    in the intake bucket under `quarantine/` and `.cosguard/`, where uploaders can write."""

    @property
    def callback_handler(self):
        return self._callback

    @property
    def runtime(self):
        """The scan function instance's Runtime (its sealer's rejections, its ledger)."""
        return self.runtime_of(self.scan_handler)

    # -- what uploaders and COS do ------------------------------------------------------------
    def put_json(self, key: str, doc: Any, bucket: Optional[str] = None) -> None:
        self.put(key, json.dumps(doc).encode(), bucket=bucket or self.jail)

    def scan(self) -> Dict[str, Any]:
        """Run the upload trigger on every event COS emitted since the last call (cosguard's own
        writes included, in the same-bucket layout)."""
        return self.scan_handler(self.take_events(), Context())

    # -- what a user looks at -----------------------------------------------------------------
    def body(self, key: str, bucket: Optional[str] = None, version_id: Optional[str] = None) -> bytes:
        extra = {"VersionId": version_id} if version_id else {}
        return self.cos.get_object(Bucket=bucket or self.intake, Key=key, **extra)["Body"].get_raw_stream().read()

    def exists(self, key: str, bucket: Optional[str] = None) -> bool:
        return self.cos.object_exists(Bucket=bucket or self.intake, Key=key)

    def meta(self, key: str, bucket: Optional[str] = None) -> Dict[str, str]:
        headers = self.cos.head_object(Bucket=bucket or self.jail, Key=key)
        return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-cos-meta-")}

    def quarantined(self, key: str, source: Optional[str] = None) -> List[str]:
        return quarantined_keys(self.cos, self.jail, source or self.intake, key)

    def ledger_doc(self, key: str) -> Dict[str, Any]:
        return json.loads(self.body(key, bucket=self.jail))

    # -- what an operator runs ------------------------------------------------------------------
    def cli(self, capsys, tmp_path, *argv: str):
        """`cosguard <argv> --env-file <this deployment> --json`: (exit code, parsed output)."""
        path = tmp_path / "cosguard.env"
        path.write_text("\n".join(f"{k}={v}" for k, v in self.env.items()) + "\n")
        capsys.readouterr()
        code = cli(list(argv) + ["--env-file", str(path), "--json"])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err


@pytest.fixture
def stack():
    """`stack(**options)` starts a Stack; all are stopped after the test."""
    yield from stack_factory(Stack)
