"""Fixtures for local CI (helpers live in ci_helpers: conftest modules share one name): a LocalCi on port 0 over a MemoryObjectStore, SDK clients pointed at it,
signed raw requests, and a tiny HTTP receiver for callbacks and Url inputs."""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_auth import CosS3Auth
from werkzeug.wrappers import Request, Response

from ci_helpers import FAST_RETRY, SIGNATURES
from ci_samples import BUCKET, OTHER_BUCKET, REGION
from cosguard.local.auth import Credentials
from cosguard.local.ci import LocalCi
from cosguard.local.httpserver import ThreadedServer
from cosguard.local.store import MemoryObjectStore


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(secret_id="AKIDcosguardLocalCiTest", secret_key="local-ci-test-secret")


@pytest.fixture
def store() -> MemoryObjectStore:
    """The buckets the samples name exist (CI refuses jobs for a bucket that does not)."""
    memory = MemoryObjectStore()
    memory.create_bucket(BUCKET)
    memory.create_bucket(OTHER_BUCKET)
    return memory


@pytest.fixture
def make_ci(store, credentials):
    """LocalCi factory (started; stopped at teardown); keyword arguments override the defaults."""
    started: List[LocalCi] = []

    def make(**overrides) -> LocalCi:
        options = dict(region=REGION, credentials=credentials, store=store, scan_delay=0.05,
                       signature_files=SIGNATURES, callback_retry=FAST_RETRY)
        options.update(overrides)
        ci = LocalCi(**options).start()
        started.append(ci)
        return ci

    yield make
    for ci in started:
        ci.stop()


@pytest.fixture
def ci(make_ci) -> LocalCi:
    return make_ci()


@pytest.fixture
def make_client(credentials):
    """An SDK client for a LocalCi, configured as the issue says (IP/Port, http)."""

    def make(ci: LocalCi, retry: int = 0, secret_key: Optional[str] = None,
             secret_id: Optional[str] = None, token: Optional[str] = None) -> CosS3Client:
        config = CosConfig(Region=REGION, SecretId=secret_id or credentials.secret_id,
                           SecretKey=secret_key or credentials.secret_key, Token=token,
                           Scheme="http", IP="127.0.0.1", Port=ci.port)
        return CosS3Client(config, retry=retry)

    return make


@pytest.fixture
def client(ci, make_client) -> CosS3Client:
    return make_client(ci)


@pytest.fixture
def raw(credentials):
    """Signed requests without the SDK, for bodies and headers the SDK never sends."""

    def send(ci: LocalCi, method: str, path: str, body: Optional[bytes] = None,
             host: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
             secret_key: Optional[str] = None, secret_id: Optional[str] = None,
             sign: bool = True) -> requests.Response:
        config = CosConfig(Region=REGION, SecretId=secret_id or credentials.secret_id,
                           SecretKey=secret_key or credentials.secret_key)
        all_headers = {"Host": host or f"{BUCKET}.ci.{REGION}.myqcloud.com",
                       "Content-Type": "application/xml"}
        all_headers.update(headers or {})
        return requests.request(method, ci.endpoint + path, data=body, headers=all_headers,
                                auth=CosS3Auth(config, path) if sign else None, timeout=10)

    return send


class Receiver:
    """An HTTP endpoint on loopback that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: List[dict] = []
        self.statuses: List[int] = []  # answered in order; 200 once exhausted
        self.bodies: Dict[str, bytes] = {}  # GET path -> body, for Url inputs
        self._cond = threading.Condition()
        self._server = ThreadedServer(self._app).start()
        self.url = self._server.endpoint + "/callback"

    def _app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self._cond:
            self.requests.append({"method": request.method, "path": request.path, "body": body,
                                  "headers": dict(request.headers), "time": time.monotonic()})
            status = self.statuses.pop(0) if self.statuses else 200
            self._cond.notify_all()
        if request.method == "GET":
            if request.path not in self.bodies:
                return Response(b"not here", status=404)(environ, start_response)
            return Response(self.bodies[request.path], status=200)(environ, start_response)
        return Response(b"ok", status=status)(environ, start_response)

    def posts(self) -> List[dict]:
        with self._cond:
            return [r for r in self.requests if r["method"] == "POST"]

    def wait_posts(self, count: int, timeout: float = 5.0) -> List[dict]:
        with self._cond:
            self._cond.wait_for(lambda: sum(r["method"] == "POST" for r in self.requests) >= count,
                                timeout)
        return self.posts()

    def address(self, path: str) -> str:
        return self._server.endpoint + path

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> Callable[[], str]:
    """A loopback URL nobody listens on (a server started and stopped)."""

    def make() -> str:
        server = ThreadedServer(lambda environ, start_response: []).start()
        url = server.endpoint + "/gone"
        server.stop()
        return url

    return make
