"""What the operations tests (test_operations*.py) share: the deployment's env file and the CLI run
as an operator runs it."""
from __future__ import annotations

import json

from cosguard.cli import main as cli


def env_file(deployment, tmp_path, **extra):
    path = tmp_path / "cosguard.env"
    values = dict(deployment.env, **extra)
    path.write_text("\n".join(f"{k}={v}" for k, v in values.items()) + "\n")
    return str(path)


def run_cli(capsys, *argv):
    capsys.readouterr()  # drop what the functions logged before the command ran
    code = cli(list(argv))
    out = capsys.readouterr().out
    return code, out


def reconcile(capsys, deployment, tmp_path):
    """`cosguard reconcile --json`, as an operator runs it: (exit code, report)."""
    code, out = run_cli(capsys, "reconcile", "--env-file", env_file(deployment, tmp_path), "--json")
    return code, json.loads(out)
