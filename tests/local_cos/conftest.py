"""A LocalCos on a free loopback port per test, and the official SDK pointed at it."""
from __future__ import annotations

from typing import Optional

import pytest
from qcloud_cos import CosConfig, CosS3Client

from cosguard.local.auth import Credentials
from cosguard.local.cos import LocalCos

REGION = "ap-guangzhou"
BUCKET = "examplebucket-1250000000"
CREDENTIALS = Credentials("AKIDlocalcostest0123456789", "local-cos-test-secret-key")


def sdk_client(cos: LocalCos, secret_key: Optional[str] = None,
               token: Optional[str] = None, retry: int = 0) -> CosS3Client:
    """How cosguard points the SDK at a COS endpoint: IP/Port, http, the real region."""
    config = CosConfig(Region=REGION, SecretId=cos.credentials.secret_id,
                       SecretKey=secret_key or cos.credentials.secret_key,
                       Token=token, Scheme="http", IP="127.0.0.1", Port=cos.port)
    return CosS3Client(config, retry=retry)


@pytest.fixture
def cos():
    server = LocalCos(region=REGION, credentials=CREDENTIALS, host="127.0.0.1", port=0,
                      event_key_encoding="url").start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture
def client(cos) -> CosS3Client:
    return sdk_client(cos)


@pytest.fixture
def make_client():
    """`make_client(cos, secret_key=..., token=..., retry=...)`: an SDK client with other settings."""
    return sdk_client


@pytest.fixture
def bucket() -> str:
    return BUCKET
