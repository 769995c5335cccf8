"""`cosguard report` over HTTP against the local cloud: its figures are what the local cloud did
(uploads scanned clean and infected, a job CI never finishes, a restore), read from the ledger's
bounded sources: the time index by LIST, closed/ records only for the rows shown."""
from __future__ import annotations

import json
import time

from cosguard.cli import main as cli
from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime
from test_operations import env_file, run_cli


def report(capsys, deployment, tmp_path, *argv):
    code, out = run_cli(capsys, "report", "--env-file", env_file(deployment, tmp_path), "--json", *argv)
    return code, json.loads(out)


def test_the_figures_are_what_the_local_cloud_did(deployment, tmp_path, capsys):
    deployment.cloud.ci.faults.stuck_jobs = {"r/stuck.txt"}
    for i in range(5):
        deployment.put(f"r/clean-{i}.txt", clean_text())
    for i in range(2):
        deployment.put(f"r/bad-{i}.com", eicar())
    deployment.put("r/stuck.txt", b"never finishes")
    deployment.put("r/big.iso", b"small body, large claim")
    deployment.cloud.cos.simulate_size(deployment.intake, "r/big.iso", 2 * 1024 ** 3)   # over CI's limit: no job
    deployment.scan()
    deployment.settle()
    code, doc = report(capsys, deployment, tmp_path)
    assert code == 0, doc
    assert doc["totals"] == {"clean": 5, "infected": 2, "unscannable": 1, "error": 0, "other": 0}
    assert {(v["bucket"], v["verdict"]): v["count"] for v in doc["verdicts"]} == {
        (deployment.intake, "clean"): 5, (deployment.intake, "infected"): 2, (deployment.intake, "unscannable"): 1}
    # the unscannable object had no job: a latency from its upload, none from a submission
    assert doc["grain"] == "day" and doc["upload_latency"]["count"] == 8 and doc["submit_latency"]["count"] == 7
    assert doc["upload_latency"]["unknown"] == 0 and 0 <= doc["upload_latency"]["p50"] <= doc["upload_latency"]["p99"] < 60
    [virus] = doc["viruses"]
    assert virus["count"] == 2 and virus["name"]
    assert sorted(o["key"] for o in virus["objects"]) == ["r/bad-0.com", "r/bad-1.com"]
    assert {o["now_at"] for o in virus["objects"]} == {f"{deployment.jail}/{deployment.quarantined(k)}"
                                                      for k in ("r/bad-0.com", "r/bad-1.com")}
    assert doc["pending_total"] == 1 and [p["key"] for p in doc["pending"]] == ["r/stuck.txt"]
    assert doc["pending"][0]["status"] == "pending" and doc["pending"][0]["job_id"]
    assert sorted(q["key"] for q in doc["quarantine"]) == sorted(deployment.quarantined(k)
                                                                 for k in ("r/bad-0.com", "r/bad-1.com"))
    assert doc["quarantine_bytes"] == 2 * len(eicar())
    assert doc["cost"]["ci_scans"] == 7 and doc["cost"]["amount"] == round(7 * 0.5 / 1000, 4)
    code, status = run_cli(capsys, "status", "--env-file", env_file(deployment, tmp_path), "--json")
    assert json.loads(status)["counts"]["unscannable"] == 1   # `status` counts it too now
    assert doc["needs_human"] == [] and doc["restores_total"] == 0


def test_restores_and_hourly_grain(deployment, tmp_path, capsys):
    deployment.put("q/bad.com", eicar())
    deployment.scan()
    deployment.settle()
    code, _ = run_cli(capsys, "restore", deployment.quarantined("q/bad.com"), "--env-file",
                      env_file(deployment, tmp_path), "--json")
    assert code == 0
    code, doc = report(capsys, deployment, tmp_path, "--since", "1")
    assert doc["grain"] == "hour" and doc["totals"]["infected"] == 1
    assert doc["restores_total"] == 1 and doc["restores"][0]["key"] == "q/bad.com"
    assert doc["quarantine"] == [] and doc["viruses"] == []   # restored: no longer an infection on record
    assert len(doc["verdicts"][0]["period"]) == len("2026-01-01T00")


def test_reads_are_bounded(deployment, tmp_path, capsys):
    """Counting lists the index; closed/ records are read for the --detail rows only."""
    for i in range(12):
        deployment.put(f"b/clean-{i}.txt", clean_text())
    for i in range(3):
        deployment.put(f"b/bad-{i}.com", eicar())
    deployment.scan()
    deployment.settle()
    counters = deployment.cloud.cos.counters
    before = counters.snapshot()
    code, doc = report(capsys, deployment, tmp_path, "--detail", "1")
    made = {k: v - before.get(k, 0) for k, v in counters.snapshot().items() if v != before.get(k, 0)}
    assert code == 0 and doc["totals"]["clean"] == 12 and doc["infections_total"] == 3
    assert made.get("GetObject", 0) == 1, made        # the newest infection's closed record
    assert made.get("HeadObject", 0) == 1, made       # where its quarantined copy is
    assert len(doc["viruses"][0]["objects"]) == 1


def test_an_index_entry_from_before_facts_counts_with_its_latency_unknown(deployment, tmp_path, capsys):
    deployment.put("o/clean.txt", clean_text())
    deployment.scan()
    deployment.settle()
    ledger = Runtime.from_env(deployment.env).sweeper.ledgers()[0]
    ledger.history.record("ss" + "0" * 32, "clean", time.time() - 60)   # as a release before facts wrote it
    code, doc = report(capsys, deployment, tmp_path)
    assert doc["totals"]["clean"] == 2 and doc["upload_latency"]["count"] == 1
    assert doc["upload_latency"]["unknown"] == 1
    # the ledger serves two buckets (COSGUARD_BUCKETS names intake and jail): whose it was is unknown
    assert {v["bucket"]: v["count"] for v in doc["verdicts"]} == {deployment.intake: 1, "": 1}
    code, doc = report(capsys, deployment, tmp_path, "--bucket", deployment.intake)
    assert doc["totals"]["clean"] == 1 and doc["bucket"] == deployment.intake


def test_a_bucket_not_served_is_a_usage_error(deployment, tmp_path, capsys):
    capsys.readouterr()
    code = cli(["report", "--env-file", env_file(deployment, tmp_path), "--bucket", "nope-1250000000"])
    assert code == 2 and "not a bucket this deployment serves" in capsys.readouterr().err


def test_html_is_written(deployment, tmp_path, capsys):
    deployment.put("h/bad.com", eicar())
    deployment.scan()
    deployment.settle()
    page = tmp_path / "report.html"
    code, out = run_cli(capsys, "report", "--env-file", env_file(deployment, tmp_path), "--html", str(page))
    assert code == 0 and str(page) in out
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text and 'data-section="cost"' in text
    assert 'data-series="infected" data-count="1"' in text
