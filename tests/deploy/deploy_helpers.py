"""Shared by tests/deploy (import as `deploy_helpers`; conftest modules share one name)."""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
# The two values .env.example leaves blank on purpose (secrets / known only after a deploy).
OPERATOR_FILLS = {"COSGUARD_CALLBACK_TOKEN": "deploy-test-token-0123456789abcdef",
                  "COSGUARD_CALLBACK_URL": "https://1250000000-abcd1234.ap-guangzhou.tencentscf.com/"}


def load_script(relative: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def _python_version(python: str) -> Optional[str]:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_python39() -> Optional[str]:
    """A Python 3.9 interpreter: $COSGUARD_PYTHON39, pyenv's, or python3.9 on PATH."""
    candidates = [os.environ.get("COSGUARD_PYTHON39")]
    for home in ("/root", str(Path.home())):
        candidates += sorted(glob.glob(f"{home}/.pyenv/versions/3.9*/bin/python"), reverse=True)
    candidates.append(shutil.which("python3.9"))
    for candidate in candidates:
        if candidate and _python_version(candidate) == "3.9":
            return candidate
    return None
