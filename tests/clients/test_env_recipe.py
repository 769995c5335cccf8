"""docs/local-cloud.md's `env` recipe pasted as ONE block into a fresh shell, as a reader does:
it starts `cosguard local` itself, so it must wait for the ready line before reading it (an
`eval` that runs first exports nothing and still returns 0)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from client_support import recipe


def test_env_recipe_as_one_pasted_block_exports_the_endpoint_and_keys(tmp_path):
    bin_dir = tmp_path / "bin"   # `cosguard` and `python3` as the reader's venv provides them
    bin_dir.mkdir()
    (bin_dir / "cosguard").write_text(f"#!/bin/sh\nexec {sys.executable} -m cosguard.cli \"$@\"\n")
    (bin_dir / "cosguard").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSGUARD_", "TENCENTCLOUD_"))}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    block = recipe("env") + ('printf "%s\\n%s\\n%s\\n" "$COS_ENDPOINT" "$SECRET_ID" "$SECRET_KEY"\n'
                             'kill $!; wait\n')
    assert shutil.which("bash")
    done = subprocess.run(["bash", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    ready = json.loads((tmp_path / "ready.json").read_text())
    endpoint, secret_id, secret_key = done.stdout.splitlines()[:3]
    assert endpoint == ready["cos_endpoint"] and endpoint.startswith("http://127.0.0.1:"), done.stderr
    assert (secret_id, secret_key) == (ready["secret_id"], ready["secret_key"])
