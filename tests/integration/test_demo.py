"""`cosguard demo` is the README's first command: it must show every outcome as expected."""
import json
import subprocess
import sys


def test_demo_json_reports_every_expected_outcome():
    result = subprocess.run([sys.executable, "-m", "cosguard.cli", "demo", "--json"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert len(rows) == 7
    assert all(row["ok"] for row in rows.values())
    assert rows["uploads/eicar.com"]["verdict"] == "infected"
    assert any("payload.zip/docs/eicar.com" in v for v in rows["uploads/bundle.tar.gz"]["viruses"])
    assert rows["uploads/disk-image.iso"]["verdict"] == "unscannable"
    assert rows["uploads/swap.docx"]["verdict"] == "stale → clean"
    assert rows["uploads/季度 报告 final.txt"]["verdict"] == "clean"
    assert "verdicts: 7/7" in result.stderr  # progress is visible while it waits
