"""`cosguard probe` (tests/probe, tests/adversarial/state) against cosguard deployed on the local
cloud (both functions on the local SCF, triggered by COS's events and called back by CI), the
emulator set to one position of a switch.

The probe runs as an operator runs it (`cosguard probe --env-file F --json`), with two of the
emulator's own knobs in place of waiting: COS's clock is moved forward where the probe pauses to
make a Last-Modified difference visible, and "nothing in flight" is the local SCF's wait_idle."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any, Callable, Dict, List, Optional, Tuple

from cosguard.cli import _parser
from cosguard.cli import probe as probe_cli
from cosguard.cli.common import logging_kept
from cosguard.local.deployment import LocalDeployment
from helpers import unique_bucket


class ProbedDeployment:
    def __init__(self, versioned: bool = False, setup: Optional[Callable[[Any], None]] = None,
                 env: Optional[Dict[str, str]] = None, watch_prefix: str = "", **switches: Any):
        """`switches`: the local cloud's (local/stack.py COS_SWITCHES, CI_SWITCHES), by name."""
        self.intake = unique_bucket("intake")
        self.jail = unique_bucket("jail")
        self.local = LocalDeployment([self.intake], quarantine_bucket=self.jail, scan_delay=0.05,
                                     retry_delays=(0.2, 0.4), env=env, watch_prefix=watch_prefix,
                                     **switches)
        self.cloud = self.local.cloud
        if versioned:
            self.cloud.versioned.add(self.intake)
        if setup is not None:
            setup(self.cloud)
        self.local.start()
        self.cos = self.cloud.client("cos")

    def env_file(self, tmp_path) -> str:
        path = tmp_path / "probe.env"
        path.write_text("\n".join(f"{k}={v}" for k, v in self.local.env.items()) + "\n")
        return str(path)

    def advance_clock(self, seconds: float) -> None:
        """The probe's pause: COS's clock moves, nobody waits."""
        self.cloud.cos.clock_offset += seconds

    def quiet(self) -> bool:
        return self.local.wait_idle(20.0)

    def probe_output(self, tmp_path, *argv: str) -> Tuple[int, str]:
        """`cosguard probe ARGV` as an operator runs it: (exit code, what it printed)."""
        args = _parser().parse_args(["probe", "--env-file", self.env_file(tmp_path),
                                     "--timeout", "60", "--retry-wait", "20", *argv])
        out = io.StringIO()
        with logging_kept(), redirect_stdout(out):
            code = probe_cli.run(args, pause=self.advance_clock, quiet=self.quiet)
        return code, out.getvalue()

    def probe(self, tmp_path, *argv: str) -> Dict[str, Any]:
        """`cosguard probe --json`: the report, with its exit code as `exit`."""
        code, out = self.probe_output(tmp_path, "--json", *argv)
        report = json.loads(out)
        report["exit"] = code
        return report

    def keys(self, bucket: str, prefix: str = "") -> List[str]:
        listing = self.cos.list_objects(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        return [item["Key"] for item in listing.get("Contents", [])]

    def versions(self, bucket: str, prefix: str = "") -> List[str]:
        listing = self.cos.list_objects_versions(Bucket=bucket, Prefix=prefix, MaxKeys=1000)
        return [item["Key"] for kind in ("Version", "DeleteMarker") for item in listing.get(kind, [])]

    def clean_verdicts(self) -> int:
        """Closed ledger entries of clean uploads (the history index names the verdict first)."""
        return sum("/clean." in key for key in self.keys(self.jail, ".cosguard/index/"))

    def answers(self) -> Dict[str, Any]:
        """The probe's answers as it keeps them in the state bucket, their seal checked."""
        from cosguard.domain.seal import sealer_for
        from cosguard.infra.config import Settings
        settings = Settings.from_env(self.local.env)
        key = settings.state_prefix + "probe/answers.json"
        raw = json.loads(self.cos.get_object(Bucket=self.jail, Key=key)["Body"].get_raw_stream().read())
        opened = sealer_for(settings).open(self.jail, key, raw)
        assert opened is not None
        return opened

    def extra_bucket(self, name: str) -> str:
        bucket = unique_bucket(name)
        self.cloud.create_bucket(bucket)
        return bucket

    def close(self) -> None:
        self.local.stop()


def row(report: Dict[str, Any], qid: str) -> Dict[str, str]:
    [found] = [q for q in report["questions"] if q["id"] == qid]
    return found
