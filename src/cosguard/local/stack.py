"""The whole local cloud in one object: COS, CI (reading COS's objects) and their shared keys."""
from __future__ import annotations

import secrets
from typing import Dict, List, Optional, Sequence

from qcloud_cos import CosConfig, CosS3Client

from .auth import Credentials
from .ci import LocalCi
from .cos import LocalCos

DEFAULT_REGION = "ap-guangzhou"
DEFAULT_BUCKET = "intake-1250000000"


# The switches for what Tencent leaves undocumented (docs/tencent-facts.md), as LocalCloud and
# LocalDeployment take them; each is also an attribute of the running `cos` or `ci`.
COS_SWITCHES = ("event_key_encoding", "event_vid", "delete_honours_if_match", "multipart_last_modified",
                "append_events", "append_keeps_etag")
CI_SWITCHES = ("callback_format", "callback_signed", "callback_retries")


class LocalCloud:
    """Starts local COS and CI on loopback; `info()` is what `cosguard local` prints when ready."""

    def __init__(self, buckets: Sequence[str] = (DEFAULT_BUCKET,), *, region: str = DEFAULT_REGION,
                 host: str = "127.0.0.1", cos_port: int = 0, ci_port: int = 0, scan_delay: float = 0.2,
                 callback_format: Optional[str] = None, signature_files: Sequence[str] = (),
                 credentials: Optional[Credentials] = None, versioned: Sequence[str] = (),
                 event_key_encoding: Optional[str] = None, append_events: Optional[bool] = None,
                 append_keeps_etag: bool = True, delete_honours_if_match: Optional[bool] = None,
                 event_vid: Optional[str] = None, multipart_last_modified: Optional[str] = None,
                 callback_signed: Optional[bool] = None, callback_retries: Optional[int] = None):
        self.region = region
        self.buckets: List[str] = list(dict.fromkeys(buckets))
        self.versioned = set(versioned)
        self.credentials = credentials or Credentials(
            "AKIDlocal" + secrets.token_hex(8), secrets.token_hex(16))
        self.cos = LocalCos(region=region, credentials=self.credentials, host=host, port=cos_port,
                            event_key_encoding=event_key_encoding, append_events=append_events,
                            append_keeps_etag=append_keeps_etag,
                            delete_honours_if_match=delete_honours_if_match, event_vid=event_vid,
                            multipart_last_modified=multipart_last_modified)
        self.ci = LocalCi(region=region, credentials=self.credentials, store=self.cos.store, host=host,
                          port=ci_port, scan_delay=scan_delay, signature_files=list(signature_files),
                          callback_format=callback_format, cos_proxy=lambda: self.cos.endpoint,
                          callback_signed=callback_signed, callback_retries=callback_retries)
        self._started = False

    def start(self) -> "LocalCloud":
        self.cos.start()
        self.ci.start()
        self._started = True
        for bucket in self.buckets:
            self.create_bucket(bucket, versioning=bucket in self.versioned)
        return self

    def create_bucket(self, bucket: str, versioning: bool = False) -> None:
        if bucket not in self.buckets:
            self.buckets.append(bucket)
        self.cos.create_bucket(bucket, versioning=versioning)

    def stop(self) -> None:
        if self._started:
            self.ci.stop()
            self.cos.stop()
            self._started = False

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def info(self) -> Dict[str, object]:
        return {"cos_endpoint": self.cos.endpoint, "ci_endpoint": self.ci.endpoint, "region": self.region,
                "secret_id": self.credentials.secret_id, "secret_key": self.credentials.secret_key,
                "buckets": list(self.buckets), "switches": self.switches()}

    def switches(self) -> Dict[str, object]:
        """Every switch's current position, by name."""
        found: Dict[str, object] = {name: getattr(self.cos, name) for name in COS_SWITCHES}
        found.update((name, getattr(self.ci, name)) for name in CI_SWITCHES)
        return found

    def client(self, service: str = "cos") -> CosS3Client:
        """An SDK client for local COS (`cos`) or local CI (`ci`): one CosConfig per endpoint."""
        server = self.cos if service == "cos" else self.ci
        host, port = server.endpoint.split("//", 1)[1].rsplit(":", 1)
        return CosS3Client(CosConfig(Region=self.region, SecretId=self.credentials.secret_id,
                                     SecretKey=self.credentials.secret_key, Token=self.credentials.token,
                                     Scheme="http", IP=host, Port=int(port)), retry=0)

    def function_env(self, **overrides: Optional[str]) -> Dict[str, str]:
        """The environment the functions get in production, pointed at this cloud."""
        env = {
            "TENCENTCLOUD_SECRETID": self.credentials.secret_id,
            "TENCENTCLOUD_SECRETKEY": self.credentials.secret_key,
            "COSGUARD_REGION": self.region,
            "COSGUARD_COS_ENDPOINT": self.cos.endpoint,
            "COSGUARD_CI_ENDPOINT": self.ci.endpoint,
            "COSGUARD_BUCKETS": ",".join(self.buckets),
        }
        if self.credentials.token:
            env["TENCENTCLOUD_SESSIONTOKEN"] = self.credentials.token
        env.update({k: v for k, v in overrides.items() if v is not None})
        return env
