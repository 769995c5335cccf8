"""Operations on a submission CI refused for good: `cosguard ledger forget` clears it by hand (and
keeps an open job unless forced), status counts it once, reconcile lists the failures it dropped."""
from __future__ import annotations

import json

from cosguard.cli import main as cli
from operations_support import env_file, reconcile, run_cli


def refused_submission(deployment, key="refused.txt"):
    """An upload CI refused for good (its bucket not bound): a failed claim and a refused retry entry."""
    deployment.cloud.ci.faults.unbound_buckets.add(deployment.intake)
    deployment.put(key, b"x")
    assert deployment.scan()["counts"] == {"error": 1}
    assert len(deployment.ledger_keys("jobs")) == 1 and len(deployment.ledger_keys("retry")) == 1


def test_ledger_forget_clears_a_refused_submission_by_hand(deployment, tmp_path, capsys):
    refused_submission(deployment)
    env = env_file(deployment, tmp_path)
    code, report = reconcile(capsys, deployment, tmp_path)
    assert code == 1 and [u["key"] for u in report["unresolved"]] == ["refused.txt"]
    code, out = run_cli(capsys, "ledger", "forget", "refused.txt", "--bucket", deployment.intake, "--env-file", env,
                        "--json")
    answer = json.loads(out)
    assert code == 0 and answer["forgotten"] is True and answer["kept"] == []
    assert sorted(d["state"] for d in answer["removed"]) == ["failed", "refused"]
    assert any("BucketNotBound" in d.get("reason", "") for d in answer["removed"])
    assert deployment.ledger_keys("jobs") == [] and deployment.ledger_keys("retry") == []
    code, report = reconcile(capsys, deployment, tmp_path)
    assert code == 0 and report["unresolved"] == []
    # a person reads what was removed
    refused_submission(deployment, "again.txt")
    capsys.readouterr()
    code = cli(["ledger", "forget", "again.txt", "--bucket", deployment.intake, "--env-file", env])
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[0].split() == ["removed", "state", "job", "or", "reason"]
    assert "refused" in out and "BucketNotBound" in out


def test_ledger_forget_errors_are_one_line(deployment, tmp_path, capsys):
    env = env_file(deployment, tmp_path)
    capsys.readouterr()
    assert cli(["ledger", "forget", "nothing.txt", "--bucket", deployment.intake, "--env-file", env]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cosguard ledger forget: nothing on record for {deployment.intake}/nothing.txt"]
    assert cli(["ledger", "forget", "x.txt", "--env-file", env]) == 2   # this deployment serves two buckets
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bucket is required" in err[0] and deployment.intake in err[0]
    assert cli(["ledger", "forget", "x.txt", "--bucket", "other-1250000000", "--env-file", env]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other-1250000000 is not a bucket this deployment serves" in err[0]
    assert cli(["ledger"]) == 2
    assert "forget" in capsys.readouterr().err


def test_ledger_forget_keeps_an_open_job_unless_forced(quiet, tmp_path, capsys):
    quiet.put("open.txt", b"x")
    job_id = quiet.scan()["jobs"]["open.txt"]
    env = env_file(quiet, tmp_path)
    code, out = run_cli(capsys, "ledger", "forget", "open.txt", "--bucket", quiet.intake, "--env-file", env, "--json")
    answer = json.loads(out)
    assert code == 1 and answer["removed"] == [] and answer["kept"][0]["job_id"] == job_id
    assert len(quiet.ledger_keys("jobs")) == 1
    code, out = run_cli(capsys, "ledger", "forget", "open.txt", "--bucket", quiet.intake, "--force", "--env-file", env,
                        "--json")
    assert code == 0 and json.loads(out)["removed"][0]["state"] == "submitted"
    assert quiet.ledger_keys("jobs") == []


def test_status_counts_a_refused_submission_as_one_error_and_nothing_overdue(deploy, tmp_path, capsys):
    deployment = deploy(COSGUARD_PENDING_OVERDUE_SECONDS="1")
    refused_submission(deployment)
    deployment.cloud.cos.clock_offset = 10
    code, out = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--json")
    status = json.loads(out)
    assert status["counts"] == {"error": 1} and status["oldest_pending"] is None and code == 0


def test_reconcile_lists_the_failures_it_dropped(deployment, tmp_path, capsys):
    refused_submission(deployment)
    deployment.cos.delete_object(Bucket=deployment.intake, Key="refused.txt")
    code, out = run_cli(capsys, "reconcile", "--env-file", env_file(deployment, tmp_path))
    assert code == 0, out
    assert "failures dropped" in out and any("refused.txt" in line and "no longer exists" in line
                                             for line in out.splitlines())
