"""The HTTP side of the SDK clients: one requests session per gateway, its connection pool and the
COS/CI clients built over it (cloud.py's CloudGateway uses them; retries are cosguard's own)."""
from __future__ import annotations

from typing import Any, Dict, Optional
from urllib.parse import urlsplit

import requests
from qcloud_cos import CosConfig, CosS3Client

from .config import Settings


def _xml_is_utf8(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """COS and CI answer XML, UTF-8 unless declared otherwise; without a declared charset the SDK's
    `response.text` (it reads every error body so) ran charset detection, about a tenth of a
    backfill's CPU."""
    if response.encoding is None:
        response.encoding = "utf-8"
    return response


class _Session(requests.Session):
    """requests re-reads the environment (proxy variables, NO_PROXY, the CA bundle) on every
    request, which cost about as much CPU as preparing the rest of the request; a process's
    environment does not change while it runs, so the answer is kept per host and per the
    request's own settings (the first request to a host still reads it, as before)."""

    _CACHE_LIMIT = 256

    def __init__(self) -> None:
        super().__init__()
        self._environment: Dict[tuple, Dict[str, Any]] = {}
        self.hooks["response"].append(_xml_is_utf8)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, tuple(sorted((proxies or {}).items())), stream, verify,
               cert if not isinstance(cert, list) else tuple(cert))
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) >= self._CACHE_LIMIT:
                self._environment.clear()
            self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


def mount_pool(session: requests.Session, connections: int) -> None:
    """One connection pool for both clients, keeping `connections` per host (at least 10).

    The SDK's built-in pool is shared by every client in the process and keeps 10 connections per
    host, whatever the first client asked for: with more threads than that, connections beyond the
    tenth were opened for one request and thrown away.
    """
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=max(10, connections))
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def session(connections: int) -> requests.Session:
    session = _Session()
    mount_pool(session, connections)
    return session


def client(settings: Settings, endpoint: Optional[str], session: requests.Session) -> CosS3Client:
    kwargs: Dict[str, Any] = dict(Region=settings.region, SecretId=settings.secret_id,
                                  SecretKey=settings.secret_key, Token=settings.session_token,
                                  Timeout=int(max(1, settings.request_timeout)))
    if endpoint:
        parts = urlsplit(endpoint)
        kwargs.update(Scheme=parts.scheme, IP=parts.hostname,
                      Port=parts.port or (443 if parts.scheme == "https" else 80))
    else:
        kwargs.update(Scheme="https")
    # retry=0: cosguard retries itself, with jitter and within the invocation's deadline.
    return CosS3Client(CosConfig(**kwargs), retry=0, session=session)
