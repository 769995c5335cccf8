"""The first errors a real deployment meets, through the `cosguard` command as a person runs it
(a child process, against the local cloud): each is ONE line on stderr that says what failed and
what to do, with its documented exit code (docs/operations.md), and `--debug` adds the traceback.
Then what the CLI refuses up front (ports, durations, buckets it does not serve), tables that fit
100 columns, JSON in a stable order, and output without log lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cosguard.cli import main as cli
from cosguard.local.samples import eicar
from cosguard.ui.table import display_width
from test_operations import env_file, run_cli

EXIT_USAGE, EXIT_CLOUD = 2, 3
COMMANDS = {  # the commands the issue found printing tracebacks (and the other two that read the
    "status": ["status"],            # ledger), with arguments that reach COS
    "reconcile": ["reconcile"],
    "restore": ["restore", "nothing/there.com"],
    "verify": ["verify", "--timeout", "5"],
    "reseal": ["reseal"],
    "ledger forget": ["ledger", "forget", "nothing/there.com"],
}


def cosguard(*argv: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`cosguard ARGV` in a child process with no deployment variables of the caller's."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COSGUARD_", "TENCENTCLOUD_"))}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "cosguard.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=clean)


def command(name, deployment, bucket=None):
    argv = list(COMMANDS[name])
    if name == "verify":
        argv += ["--bucket", bucket or deployment.intake]
    if name == "ledger forget":
        argv += ["--bucket", deployment.intake]
    return argv


def one_line(result: subprocess.CompletedProcess, prefix: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_endpoint_down_is_one_line_naming_the_endpoint(deploy, tmp_path, name):
    deployment = deploy()
    path = env_file(deployment, tmp_path)
    endpoint = deployment.env["COSGUARD_COS_ENDPOINT"]
    deployment.close()  # the local cloud is gone: connection refused
    result = cosguard(*command(name, deployment), "--env-file", path)
    assert result.returncode == EXIT_CLOUD
    line = one_line(result, f"cosguard {name}: cannot reach COS at {endpoint} (connection refused): check ")
    assert "COSGUARD_COS_ENDPOINT" in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_wrong_secret_key_is_one_line_naming_the_keys(deployment, tmp_path, name):
    path = env_file(deployment, tmp_path, TENCENTCLOUD_SECRETKEY="not-the-secret-key")
    result = cosguard(*command(name, deployment), "--env-file", path)
    assert result.returncode == EXIT_CLOUD
    line = one_line(result, f"cosguard {name}: COS refused the keys (403 SignatureDoesNotMatch on ")
    assert "TENCENTCLOUD_SECRETKEY" in line and "not-the-secret-key" not in line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_bucket_that_does_not_exist_is_one_line_naming_it(deployment, tmp_path, name):
    missing = "missing-1250000000"
    # the ledger and the quarantine live in the quarantine bucket; verify uploads to a served bucket
    path = env_file(deployment, tmp_path, COSGUARD_QUARANTINE_BUCKET=missing,
                    COSGUARD_BUCKETS=f"{deployment.intake},{missing}")
    result = cosguard(*command(name, deployment, bucket=missing), "--env-file", path)
    assert result.returncode == EXIT_CLOUD
    line = one_line(result, f"cosguard {name}: the bucket {missing} does not exist in ")
    assert "404 NoSuchBucket" in line and "COSGUARD_REGION" in line


def test_verify_refuses_a_bucket_the_deployment_does_not_serve(deployment, tmp_path):
    path = env_file(deployment, tmp_path, COSGUARD_BUCKETS=deployment.intake)   # the jail exists, unserved
    result = cosguard("verify", "--bucket", deployment.jail, "--env-file", path, "--timeout", "5")
    assert result.returncode == EXIT_USAGE
    line = one_line(result, f"cosguard verify: --bucket {deployment.jail}: not a bucket this deployment serves")
    assert deployment.intake in line
    assert deployment.keys(bucket=deployment.jail, prefix="cosguard-verify/") == []   # nothing uploaded


def test_reconcile_and_restore_refuse_buckets_they_cannot_mean(deployment, tmp_path):
    path = env_file(deployment, tmp_path, COSGUARD_BUCKETS=deployment.intake)
    result = cosguard("reconcile", "--bucket", "other-1250000000", "--env-file", path)
    assert result.returncode == EXIT_USAGE
    one_line(result, "cosguard reconcile: --bucket other-1250000000: not a bucket this deployment serves")
    result = cosguard("restore", "x.com", "--bucket", deployment.intake, "--env-file", path)
    assert result.returncode == EXIT_USAGE
    one_line(result, f"cosguard restore: --bucket {deployment.intake}: not a quarantine bucket of this deployment")


def test_status_without_an_environment_says_to_pass_an_env_file():
    result = cosguard("status")
    assert result.returncode == EXIT_USAGE
    line = one_line(result, "cosguard status: invalid configuration: ")
    assert "COSGUARD_BUCKETS" in line and "TENCENTCLOUD_SECRETKEY" in line
    assert "--env-file FILE" in line and "cosguard local --env-file" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_and_still_the_one_line(deployment, tmp_path, where):
    path = env_file(deployment, tmp_path, TENCENTCLOUD_SECRETKEY="not-the-secret-key")
    argv = ["--debug", "status", "--env-file", path] if where == "before" else ["status", "--debug", "--env-file", path]
    result = cosguard(*argv)
    assert result.returncode == EXIT_CLOUD
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "CloudPermanentError" in result.stderr and "CosServiceError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("cosguard status: COS refused the keys")


@pytest.mark.parametrize("argv, message", [
    (["local", "--cos-port", "99999"], "argument --cos-port: expected a port from 1 to 65535"),
    (["local", "--ci-port", "-1"], "argument --ci-port: expected a port"),
    (["local", "--callback-port", "http"], "argument --callback-port: expected a port"),
    (["local", "--scan-delay", "-0.5"], "argument --scan-delay: expected a number of seconds, 0 or more"),
    (["verify", "--bucket", "intake-1250000000", "--timeout", "-5"], "argument --timeout: expected a positive"),
    (["demo", "--timeout", "0"], "argument --timeout: expected a positive number of seconds"),
    (["reconcile", "--time-limit", "-1"], "argument --time-limit: expected a positive number of seconds"),
    (["status", "--recent", "-1"], "argument --recent: expected a whole number, 0 or more"),
    (["status", "--since", "nan"], "argument --since: expected a positive number of days"),
    (["backfill", "--bucket", "intake-1250000000", "--price-per-1000", "-1"], "argument --price-per-1000"),
])
def test_arguments_that_cannot_be_meant_are_usage_errors(argv, message):
    result = cosguard(*argv, timeout=30)   # a `local` that accepted its port would run until killed
    assert result.returncode == EXIT_USAGE
    assert f"cosguard {argv[0]}: error: {message}" in result.stderr


LONG_KEY = "uploads/" + "a-rather-long-folder-name/" * 6 + "季度报告-quarterly-report-final-v2.com"


def test_tables_fit_100_columns_and_wide_shows_everything(deployment, tmp_path, capsys):
    deployment.put(LONG_KEY, eicar())
    deployment.scan()
    deployment.settle()
    path = env_file(deployment, tmp_path)
    code, out = run_cli(capsys, "status", "--env-file", path)
    assert code == 0, out
    assert max(display_width(line) for line in out.splitlines()) <= 100, out
    assert LONG_KEY not in out
    assert any("…" in line and LONG_KEY[-6:] in line for line in out.splitlines()), out  # both ends kept
    code, out = run_cli(capsys, "status", "--env-file", path, "--wide")
    assert code == 0 and LONG_KEY in out and max(display_width(line) for line in out.splitlines()) > 100
    # restore's table too, and nothing but its table: no log line before it (on stdout or stderr)
    capsys.readouterr()
    code = cli(["restore", LONG_KEY, "--env-file", path])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.splitlines()[0].split() == ["restored", "where"] and err == ""
    assert max(display_width(line) for line in out.splitlines()) <= 100, out


def test_json_keys_come_in_a_stable_order(deployment, tmp_path, capsys):
    deployment.put("j/eicar.com", eicar())
    deployment.put("j/clean.txt", b"clean")
    deployment.scan()
    deployment.settle()
    path = env_file(deployment, tmp_path)
    outputs = [run_cli(capsys, "status", "--env-file", path, "--json")[1] for _ in range(2)]
    assert outputs[0] == outputs[1]

    def sorted_everywhere(pairs):
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys), keys
        return dict(pairs)

    status = json.loads(outputs[0], object_pairs_hook=sorted_everywhere)
    assert status["counts"] == {"clean": 1, "infected": 1}
    code, out = run_cli(capsys, "reconcile", "--env-file", path, "--json")
    json.loads(out, object_pairs_hook=sorted_everywhere)
