"""Deployment tests: serverless.yml and friends as the CLI reads them, and the layer as it ships.

deploy/preflight.py and layers/build.py are scripts, not package modules: they are loaded by path.
The layer is built once per test session (pip dominates the time) into a temporary folder.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Dict

import pytest

from deploy_helpers import OPERATOR_FILLS, ROOT, find_python39, load_script


@pytest.fixture(scope="session")
def preflight():
    return load_script("deploy/preflight.py", "cosguard_deploy_preflight")


@pytest.fixture(scope="session")
def layer_build_script():
    return load_script("layers/build.py", "cosguard_layer_build")


@pytest.fixture(scope="session")
def app(preflight):
    return preflight.load_app(ROOT)


@pytest.fixture(scope="session")
def example_env(preflight) -> Dict[str, str]:
    """.env.example as dotenv reads it, with the blanks an operator must fill, filled."""
    env = preflight.parse_dotenv((ROOT / ".env.example").read_text("utf-8"))
    for name, value in OPERATOR_FILLS.items():
        assert env.get(name) == "", f".env.example should leave {name} blank"
        env[name] = value
    return env


@pytest.fixture(scope="session")
def python39() -> str:
    python = find_python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter (set COSGUARD_PYTHON39, or install it with pyenv): "
                    "the layer must be built and run by the runtime SCF uses")
    return python


@pytest.fixture(scope="session")
def built_layer(python39, tmp_path_factory):
    """`python layers/build.py --python <3.9> --json`, once per session: (summary, zip path)."""
    out = tmp_path_factory.mktemp("layer") / "cosguard-layer.zip"
    done = subprocess.run([sys.executable, str(ROOT / "layers" / "build.py"), "--python", python39,
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"layer build failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout), out
