"""cosguard deployed on the local cloud: COS + CI + both functions on the local SCF runtime,
configured as production would be. What `cosguard local` and `cosguard demo` run."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Any, Dict, Mapping, Optional, Sequence

from .scf import LocalScf
from .stack import DEFAULT_BUCKET, LocalCloud

DEFAULT_QUARANTINE = "quarantine-1250000000"


class LocalDeployment:
    def __init__(self, buckets: Sequence[str] = (DEFAULT_BUCKET,), *,
                 quarantine_bucket: Optional[str] = DEFAULT_QUARANTINE, region: str = "ap-guangzhou",
                 host: str = "127.0.0.1", cos_port: int = 0, ci_port: int = 0,
                 callback_port: int = 0, scan_delay: float = 0.2, callback_format: Optional[str] = None,
                 signature_files: Sequence[str] = (), env: Optional[Mapping[str, str]] = None,
                 log_stream: Optional[IO[str]] = None, retry_delays: Sequence[float] = (1.0, 2.0),
                 watch_prefix: str = "", extra_buckets: Sequence[str] = (),
                 delete_honours_if_match: Optional[bool] = None, **switches: Any):
        """`switches`: any other of LocalCloud's switches (stack.COS_SWITCHES, CI_SWITCHES)."""
        self.buckets = list(dict.fromkeys(buckets))
        self.quarantine_bucket = quarantine_bucket
        own = [b for b in [quarantine_bucket, *extra_buckets] if b]
        self.cloud = LocalCloud(self.buckets + own, region=region, host=host, cos_port=cos_port,
                                ci_port=ci_port, scan_delay=scan_delay, callback_format=callback_format,
                                signature_files=signature_files, delete_honours_if_match=delete_honours_if_match,
                                **switches)
        self.callback_token = secrets.token_hex(16)
        self._extra_env = dict(env or {})
        self._host, self._callback_port = host, callback_port
        self._log_stream, self._retry_delays = log_stream, retry_delays
        self.watch_prefix = watch_prefix  # the trigger's filter; "" watches every key
        self.scf: Optional[LocalScf] = None

    def start(self) -> "LocalDeployment":
        self.cloud.start()
        env = self.cloud.function_env(COSGUARD_BUCKETS=",".join(self.buckets),
                                      COSGUARD_QUARANTINE_BUCKET=self.quarantine_bucket,
                                      COSGUARD_CALLBACK_TOKEN=self.callback_token)
        if self.watch_prefix:  # as in production: the include rule repeats the trigger's filter
            env["COSGUARD_INCLUDE_PREFIXES"] = self.watch_prefix
        env.update(self._extra_env)
        self.scf = LocalScf(self.cloud, env, buckets=self.buckets, host=self._host,
                            trigger_prefix=self.watch_prefix,
                            callback_port=self._callback_port, log_stream=self._log_stream,
                            retry_delays=self._retry_delays).start()
        return self

    @classmethod
    def from_description(cls, root: Path, env: Optional[Mapping[str, str]] = None, **kwargs) -> "LocalDeployment":
        """Wired from the deployment description at `root` (serverless.yml + .env), as the cloud is:
        the scan trigger's bucket and prefix, the quarantine and ledger buckets, the environment."""
        from .description import read_description
        wiring = read_description(Path(root), env)
        return cls(wiring.buckets, quarantine_bucket=wiring.quarantine_bucket, region=wiring.region,
                   env=wiring.env, watch_prefix=wiring.trigger_prefix, extra_buckets=wiring.extra_buckets,
                   **kwargs)

    @property
    def env(self) -> Dict[str, str]:
        """The functions' environment: also what the CLI's operations commands need."""
        assert self.scf is not None
        return dict(self.scf.env)

    def write_env_file(self, path: str) -> None:
        """The functions' environment as KEY=VALUE lines, readable by `cosguard <command> --env-file`.
        It holds the keys and the callback secret: written owner-only."""
        lines = ["# cosguard local: the functions' environment (for --env-file); valid while it runs"]
        lines += [f"{name}={value}" for name, value in sorted(self.env.items())]
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # also when the file existed with a wider mode
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def info(self) -> Dict[str, object]:
        info = self.cloud.info()
        info["buckets"] = list(self.buckets)
        info.update(quarantine_bucket=self.quarantine_bucket,
                    callback_url=self.scf.callback_url if self.scf else None,
                    watch_prefix=self.watch_prefix,
                    watches=(f"keys under {self.watch_prefix!r}" if self.watch_prefix else "every key")
                    + " in " + ", ".join(self.buckets))
        return info

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return self.scf.wait_idle(timeout) if self.scf else True

    def stop(self) -> None:
        if self.scf is not None:
            self.scf.stop()
        self.cloud.stop()

    def __enter__(self) -> "LocalDeployment":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
