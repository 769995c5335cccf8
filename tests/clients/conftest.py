"""One `cosguard local` for the client tests, a working directory with the files they upload."""
from __future__ import annotations

import os

import pytest

from client_support import Deployment
from cosguard.local.samples import eicar

MULTIPART_SIZE = 21 * 1024 * 1024 + 12345   # above coscmd's 20 MB floor and every SDK's threshold


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    local = Deployment(tmp_path_factory.mktemp("cosguard-local"))
    yield local
    local.stop()


@pytest.fixture
def workdir(tmp_path):
    """hello.txt and eicar.com in a fresh directory."""
    (tmp_path / "hello.txt").write_bytes(b"hello from a COS client\n")
    (tmp_path / "eicar.com").write_bytes(eicar())
    (tmp_path / "home").mkdir()
    return tmp_path


@pytest.fixture
def big_file(workdir):
    """big.bin: random bytes, large enough that every client uploads it in parts."""
    path = workdir / "big.bin"
    path.write_bytes(os.urandom(MULTIPART_SIZE))
    return path


@pytest.fixture
def env(deployment, workdir):
    return deployment.env(workdir / "home")
