"""`cosguard status` reads a bounded source: each close writes a MAC'd time-index entry, status
counts by LIST over `--since` days and reads closed/ records only for the rows it prints. An index
entry an uploader plants is reported, never counted."""
from __future__ import annotations

import json
import time

from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime
from test_operations import env_file, run_cli


def status(capsys, deployment, tmp_path, *argv):
    code, out = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--json", *argv)
    return code, json.loads(out)


def closed_uploads(deployment, clean: int, infected: int = 0) -> None:
    for i in range(clean):
        deployment.put(f"h/clean-{i}.txt", clean_text())
    for i in range(infected):
        deployment.put(f"h/bad-{i}.com", eicar())
    deployment.scan()
    deployment.settle()
    assert len(deployment.ledger_keys("closed")) == clean + infected


def test_status_counts_without_reading_closed_records(deployment, tmp_path, capsys):
    closed_uploads(deployment, clean=12, infected=2)
    counters = deployment.cloud.cos.counters
    before = counters.snapshot()
    code, report = status(capsys, deployment, tmp_path, "--recent", "1")
    made = {k: v - before.get(k, 0) for k, v in counters.snapshot().items() if v != before.get(k, 0)}
    assert code == 0 and report["counts"] == {"clean": 12, "infected": 2}
    # one closed record read, for the one infection printed; counting itself lists only
    assert made.get("GetObject", 0) == 1, made
    assert [i["key"] for i in report["recent_infections"]] == ["h/bad-1.com"] or \
        [i["key"] for i in report["recent_infections"]] == ["h/bad-0.com"]


def test_status_counts_what_closed_in_the_window(deployment, tmp_path, capsys):
    closed_uploads(deployment, clean=1)
    ledger = Runtime.from_env(deployment.env).sweeper.ledgers()[0]
    ledger.history.record("ss" + "0" * 32, "clean", time.time() - 10 * 86400)   # closed ten days ago
    assert status(capsys, deployment, tmp_path)[1]["counts"] == {"clean": 1}              # default: 7 days
    assert status(capsys, deployment, tmp_path, "--since", "30")[1]["counts"] == {"clean": 2}


def test_a_planted_index_entry_is_reported_not_counted(deployment, tmp_path, capsys):
    closed_uploads(deployment, clean=1)
    [real] = deployment.keys(bucket=deployment.jail, prefix=".cosguard/index/")
    day = real.split("/")[2]
    planted = f".cosguard/index/{day}/infected.-.120000.ss{'1' * 32}.{'0' * 32}"
    deployment.put(planted, b"", bucket=deployment.jail)
    code, report = status(capsys, deployment, tmp_path)
    assert report["counts"] == {"clean": 1, "unauthenticated documents": 1}
    assert code == 1 and any(planted in u for u in report["unauthenticated"])


def test_bad_since_is_a_clear_error(deployment, tmp_path, capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_:
        run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--since", "-3")
    assert exit_.value.code == 2
    assert "expected a positive number of days" in capsys.readouterr().err


def test_a_restored_quarantine_is_counted_once_as_released(deployment, tmp_path, capsys):
    closed_uploads(deployment, clean=0, infected=1)
    assert status(capsys, deployment, tmp_path)[1]["counts"] == {"infected": 1}
    quarantined = deployment.quarantined("h/bad-0.com")
    code, _ = run_cli(capsys, "restore", quarantined, "--env-file", env_file(deployment, tmp_path), "--json")
    assert code == 0
    assert status(capsys, deployment, tmp_path)[1]["counts"] == {"released": 1}
    assert len(deployment.keys(bucket=deployment.jail, prefix=".cosguard/index/")) == 1
