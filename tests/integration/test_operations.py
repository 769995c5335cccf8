"""Operations on the local cloud: reconcile after lost callbacks, overdue jobs, restore, status,
notifications; through the CLI where a human would use it (a refused submission's: test_operations_refused.py)."""
from __future__ import annotations

import json

import pytest
from werkzeug.wrappers import Request, Response

from cosguard.cli import main as cli
from cosguard.errors import CloudTransientError, SubmissionError
from cosguard.local.httpserver import ThreadedServer
from cosguard.local.loader import load_handler
from cosguard.local.samples import clean_text, eicar, eicar_zip_in_tar_gz
from operations_support import env_file, reconcile, run_cli


def test_every_callback_dropped_one_sweep_applies_every_verdict(quiet, tmp_path, capsys):
    deployment = quiet
    deployment.put("a/eicar.com", eicar())
    deployment.put("a/bundle.tar.gz", eicar_zip_in_tar_gz())
    deployment.put("a/clean.txt", clean_text())
    deployment.scan()
    deployment.settle()
    assert deployment.exists("a/eicar.com")  # nothing happened: every callback was lost
    assert len(deployment.ledger_keys("jobs")) == 3
    code, report = reconcile(capsys, deployment, tmp_path)
    assert code == 0, report
    assert report["applied"] == {"quarantined": 2, "clean": 1} and report["pending"] == 0
    assert not deployment.exists("a/eicar.com") and not deployment.exists("a/bundle.tar.gz")
    assert deployment.tags("a/clean.txt")["cosguard-status"] == "clean"
    assert deployment.ledger_keys("jobs") == []
    # a second sweep has nothing left to do
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["applied"] == {}


def test_reconcile_function_on_its_timer(quiet):
    quiet.put("x/eicar.com", eicar())
    quiet.scan()
    quiet.settle()
    handler = load_handler("reconcile_pending", quiet.env)
    report = handler({"Type": "Timer", "TriggerName": "every-10-minutes", "Time": "2026-11-21T00:00:00Z"},
                     {"request_id": "timer-1", "time_limit_in_ms": 60000})
    assert report["applied"] == {"quarantined": 1}
    assert not quiet.exists("x/eicar.com")


def test_a_stuck_job_is_reported_overdue(deploy, tmp_path, capsys):
    deployment = deploy(COSGUARD_PENDING_OVERDUE_SECONDS="1")
    deployment.cloud.ci.faults.stuck_jobs = {"stuck.txt"}
    deployment.put("stuck.txt", b"never finishes")
    job_id = deployment.scan()["jobs"]["stuck.txt"]
    deployment.cloud.cos.clock_offset = 2   # two seconds pass on COS's clock, which judges ages
    code, report = reconcile(capsys, deployment, tmp_path)
    assert code == 1
    assert report["pending"] == 1 and report["overdue"][0]["job_id"] == job_id
    code, out = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--json")
    status = json.loads(out)
    assert code == 1 and status["oldest_pending"]["job_id"] == job_id and status["counts"]["pending"] == 1


def test_failed_submissions_are_resubmitted_by_the_sweep(deployment, tmp_path, capsys):
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    runtime.gateway.backoff.sleep = lambda seconds: None
    deployment.put("later.txt", b"x")
    deployment.cloud.ci.faults.error_rate = 1.0
    with pytest.raises(Exception):
        deployment.scan()
    deployment.cloud.ci.faults.error_rate = 0.0
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["resubmitted"] == {"submitted": 1}
    deployment.settle()
    assert deployment.tags("later.txt")["cosguard-status"] == "clean"
    assert deployment.ledger_keys("retry") == []


def test_a_record_that_failed_before_its_claim_is_on_record_until_the_sweep_finishes_it(deployment, tmp_path,
                                                                                         capsys):
    deployment.put("locked.txt", b"x")
    event = deployment.combined_event()
    deployment.cloud.cos.faults.deny(deployment.intake, ["HeadObject"])
    # a 403 does not heal by retrying, so the invocation succeeds: the failure must be on record
    assert deployment.scan(event)["counts"] == {"error": 1}
    assert deployment.jobs_submitted() == 0
    assert len(deployment.ledger_keys("retry")) == 1

    code, report = reconcile(capsys, deployment, tmp_path)
    assert code != 0 and [u["key"] for u in report["unresolved"]] == ["locked.txt"]
    assert "HeadObject: 403" in report["unresolved"][0]["reason"]
    assert len(deployment.ledger_keys("retry")) == 1  # still failing: kept

    deployment.cloud.cos.faults.allow(deployment.intake)  # the operator fixes the role's permissions
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["resubmitted"] == {"submitted": 1}
    deployment.settle()
    assert deployment.tags("locked.txt")["cosguard-status"] == "clean"
    assert deployment.ledger_keys("retry") == []
    assert deployment.jobs_created() == 1


def test_a_failure_before_the_claim_that_a_retry_healed_is_cleared_by_the_sweep(deployment, tmp_path, capsys):
    deployment.put("busy.txt", b"x")
    event = deployment.combined_event()
    deployment.cloud.cos.faults.deny(deployment.intake, ["HeadObject"])
    deployment.scan(event)
    deployment.cloud.cos.faults.allow(deployment.intake)
    assert deployment.scan(event)["counts"] == {"submitted": 1}  # COS delivered the event again
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["resubmitted"] == {"duplicate": 1} and report["unresolved"] == []
    assert deployment.ledger_keys("retry") == []
    assert deployment.jobs_created() == 1


def test_a_sweep_forgets_the_failed_claim_of_an_upload_overwritten_since(deployment, tmp_path, capsys):
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    runtime.gateway.backoff.sleep = lambda seconds: None
    deployment.put("later.txt", b"first")
    deployment.cloud.ci.faults.error_rate = 1.0
    with pytest.raises(SubmissionError):
        deployment.scan()
    deployment.cloud.ci.faults.error_rate = 0.0
    assert len(deployment.ledger_keys("jobs")) == 1  # the failed claim
    deployment.put("later.txt", b"second")  # its own event would scan it; not delivered here
    deployment.take_events()
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["resubmitted"] == {"stale": 1}
    assert deployment.ledger_keys("jobs") == []
    assert deployment.ledger_keys("retry") == []


def test_a_sweep_keeps_the_open_job_of_an_upload_whose_first_claim_failed(deploy, tmp_path, capsys):
    # The claim failed (a retry entry), SCF's retry submitted it, and the object was overwritten
    # before CI finished. The retry entry is stale; the job is not: it must stay on record.
    deployment = deploy(versioned=True)
    runtime = deployment.scan_handler.__globals__["RUNTIME"]
    runtime.gateway.backoff.sleep = lambda seconds: None
    deployment.cloud.ci.faults.stuck_jobs = {"a.com"}
    deployment.put("a.com", eicar())
    event = deployment.combined_event()
    ledger_class = type(runtime.scanner.ledger(deployment.intake))
    original = ledger_class.claim

    def failing_claim(self, info, lease=0.0):
        raise CloudTransientError("PutObject: 503 SlowDown")
    ledger_class.claim = failing_claim
    try:
        with pytest.raises(SubmissionError):
            deployment.scan(event)
    finally:
        ledger_class.claim = original
    assert len(deployment.ledger_keys("retry")) == 1
    assert deployment.scan(event)["counts"] == {"submitted": 1}  # SCF's retry
    deployment.put("a.com", b"a new version")
    deployment.take_events()  # the new version's own event is not the point here

    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["pending"] == 1 and report["resubmitted"] == {"stale": 1}
    assert deployment.ledger_keys("retry") == []
    assert len(deployment.ledger_keys("jobs")) == 1  # the job, still open
    code, report = reconcile(capsys, deployment, tmp_path)
    assert report["pending"] == 1


def test_restore_round_trip_and_refusal(deployment, tmp_path, capsys):
    deployment.put("docs/flagged.com", eicar(), ContentType="application/x-msdownload",
                   Metadata={"x-cos-meta-owner": "ana"})
    job_id = deployment.scan()["jobs"]["docs/flagged.com"]
    deployment.settle()
    assert not deployment.exists("docs/flagged.com")
    env = env_file(deployment, tmp_path)
    deployment.put("docs/flagged.com", b"someone else's new file")
    quarantined = deployment.quarantined("docs/flagged.com")
    assert quarantined == f"quarantine/{deployment.intake}/{job_id}/docs/flagged.com"
    code, out = run_cli(capsys, "restore", quarantined, "--env-file", env, "--json")
    assert code == 1 and json.loads(out)["restored"] is False and "occupied" in json.loads(out)["reason"]
    assert deployment.exists(quarantined, bucket=deployment.jail)
    deployment.take_events()
    deployment.cos.delete_object(Bucket=deployment.intake, Key="docs/flagged.com")
    code, out = run_cli(capsys, "restore", job_id, "--env-file", env, "--json")
    assert code == 0, out
    assert json.loads(out)["to"] == f"{deployment.intake}/docs/flagged.com"
    head = deployment.cos.head_object(Bucket=deployment.intake, Key="docs/flagged.com")
    assert head["Content-Type"] == "application/x-msdownload" and head.get("x-cos-meta-owner") == "ana"
    assert deployment.tags("docs/flagged.com")["cosguard-status"] == "released"
    assert not deployment.exists(quarantined, bucket=deployment.jail)
    # the restore's own COS event does not send it back to quarantine
    assert deployment.scan()["counts"] == {"skipped": 1}
    deployment.settle()
    assert deployment.exists("docs/flagged.com")


def test_a_forged_released_marker_is_still_scanned(deployment):
    deployment.put("sneaky.com", eicar(), Metadata={"x-cos-meta-cosguard-released": "0" * 64})
    assert deployment.scan()["counts"] == {"submitted": 1}
    deployment.settle()
    assert not deployment.exists("sneaky.com")


def test_status_lists_counts_and_recent_infections(deployment, tmp_path, capsys):
    deployment.put("s/eicar.com", eicar())
    deployment.put("s/clean.txt", clean_text())
    deployment.scan()
    deployment.settle()
    code, out = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--json")
    status = json.loads(out)
    assert code == 0
    assert status["counts"] == {"infected": 1, "clean": 1}   # the names the tags use
    infection = status["recent_infections"][0]
    assert infection["key"] == "s/eicar.com" and infection["status"] == "infected"
    assert infection["now_at"] == f"{deployment.jail}/{deployment.quarantined('s/eicar.com')}"
    assert infection["viruses"] == ["Eicar-Test-Signature"]
    code, out = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--wide")
    lines = out.splitlines()
    assert lines[0].split() == ["status", "handled", "objects"]
    assert any(line.split()[:1] == ["infected"] and "moved to quarantine" in line for line in lines), out
    assert "quarantined" not in out
    assert any("s/eicar.com" in line and f"{deployment.jail}/{deployment.quarantined('s/eicar.com')}" in line
               for line in lines)


def test_reconcile_prints_a_table_by_default(quiet, tmp_path, capsys):
    quiet.put("r/eicar.com", eicar())
    quiet.put("r/clean.txt", clean_text())
    quiet.scan()
    quiet.settle()
    code, out = run_cli(capsys, "reconcile", "--env-file", env_file(quiet, tmp_path))
    assert code == 0, out
    assert "{" not in out, out                              # no Python dict, no JSON
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["sweep", "outcome", "jobs"]
    assert ["verdict", "applied", "quarantined", "1"] in rows and ["verdict", "applied", "clean", "1"] in rows
    assert ["still", "pending", "-", "0"] in rows


class Webhook:
    """A local receiver for notifications; `status` is what it answers."""

    def __init__(self, status=200):
        self.status = status
        self.received = []
        self.server = ThreadedServer(self._app).start()

    def _app(self, environ, start_response):
        request = Request(environ)
        self.received.append(json.loads(request.get_data()))
        return Response("ok", status=self.status)(environ, start_response)

    @property
    def url(self):
        return self.server.endpoint + "/hook"


@pytest.mark.parametrize("fmt", ["json", "wecom", "dingtalk"])
def test_notifications_on_infection_and_unscannable(deploy, fmt):
    hook = Webhook()
    try:
        deployment = deploy(COSGUARD_NOTIFY_URL=hook.url, COSGUARD_NOTIFY_FORMAT=fmt)
        deployment.put("n/eicar.com", eicar())
        deployment.put("n/big.iso", b"x")
        deployment.cloud.cos.simulate_size(deployment.intake, "n/big.iso", 3 * 1024 ** 3)
        deployment.scan()
        deployment.settle()
        assert len(hook.received) == 2
        text = json.dumps(hook.received, ensure_ascii=False)
        assert "n/eicar.com" in text and "Eicar-Test-Signature" in text and "n/big.iso" in text
        if fmt == "json":
            kinds = sorted(m["kind"] for m in hook.received)
            assert kinds == ["infected", "unscannable"]
        else:
            assert all(m["msgtype"] == "markdown" for m in hook.received)
            field = "content" if fmt == "wecom" else "text"
            assert all(field in m["markdown"] for m in hook.received)
    finally:
        hook.server.stop()


def test_a_failing_webhook_never_blocks_quarantine(deploy):
    hook = Webhook(status=500)
    try:
        deployment = deploy(COSGUARD_NOTIFY_URL=hook.url)
        deployment.put("f/eicar.com", eicar())
        deployment.scan()
        deployment.settle()
        assert len(hook.received) == 1
        assert not deployment.exists("f/eicar.com")
        assert deployment.quarantined("f/eicar.com")
    finally:
        hook.server.stop()


def test_cli_conventions(capsys):
    assert cli([]) == 2
    for command in ("demo", "local", "reconcile", "status", "restore", "ledger"):
        with pytest.raises(SystemExit) as caught:
            cli([command, "--help"])
        assert caught.value.code == 0
    capsys.readouterr()
    code = cli(["status"])  # no configuration at all: usage error naming what is missing
    assert code == 2
    assert "COSGUARD_BUCKETS" in capsys.readouterr().err


def test_verify_against_a_running_deployment(tmp_path, capsys):
    from cosguard.local.deployment import LocalDeployment

    with LocalDeployment(["verify-1250000000"], scan_delay=0.05, log_stream=open(tmp_path / "f.log", "w")) as local:
        path = tmp_path / "deploy.env"
        path.write_text("\n".join(f"{k}={v}" for k, v in local.env.items()))
        code, out = run_cli(capsys, "verify", "--bucket", "verify-1250000000", "--env-file", str(path),
                            "--json", "--timeout", "30")
        report = json.loads(out)
        assert code == 0, report
        assert report["eicar"] == "quarantined" and report["clean"] == "tagged clean"
        cos = local.cloud.client("cos")
        assert cos.list_objects(Bucket="verify-1250000000", Prefix="cosguard-verify/").get("Contents") is None
        # a deployment that does nothing fails the check
        local.scf.stop()
        code, out = run_cli(capsys, "verify", "--bucket", "verify-1250000000", "--env-file", str(path),
                            "--json", "--timeout", "2")
        assert code == 1 and json.loads(out)["eicar"] is None
