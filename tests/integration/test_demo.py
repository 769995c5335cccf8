"""`cosguard demo` is the README's first command: it must show every outcome as expected, in a table
people can read, and leave nothing behind."""
import json
import os
import subprocess
import sys


def _demo(tmp_path, *args):
    env = dict(os.environ, TMPDIR=str(tmp_path))  # where the demo's temporary log goes
    return subprocess.run([sys.executable, "-m", "cosguard.cli", "demo", *args], capture_output=True,
                          text=True, timeout=180, env=env)


def test_demo_json_reports_every_expected_outcome_and_removes_its_log(tmp_path):
    result = _demo(tmp_path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["function_logs"] is None
    rows = {row["key"]: row for row in document["uploads"]}
    assert len(rows) == 7
    assert all(row["ok"] for row in rows.values())
    assert rows["uploads/eicar.com"]["verdict"] == "infected"
    assert any("payload.zip/docs/eicar.com" in v for v in rows["uploads/bundle.tar.gz"]["viruses"])
    assert rows["uploads/disk-image.iso"]["verdict"] == "unscannable"
    assert rows["uploads/swap.docx"]["verdict"] == "stale → clean"
    assert rows["uploads/季度 报告 final.txt"]["verdict"] == "clean"
    # without a terminal, progress is whole lines: nothing runs together
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    assert "  verdicts: 7/7" in result.stderr.splitlines()
    assert list(tmp_path.glob("cosguard-demo-*.log")) == []
    # the operator report of the demo's uploads, where it says (docs/report.md)
    [page] = tmp_path.glob("cosguard-demo-report-*.html")
    assert document["report"] == str(page)
    html = page.read_text(encoding="utf-8")
    assert 'data-figure="verdict-infected" data-value="2"' in html and 'data-figure="verdict-unscannable" data-value="1"' in html


def test_demo_table_has_headers_a_legend_and_keeps_logs_on_request(tmp_path):
    result = _demo(tmp_path, "--keep-logs")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["key", "verdict", "virus", "names", "action", "now", "at", "latency", "check"]
    rule = lines[1]
    assert set(rule) == {"-", " "} and len(rule.split()) == 7     # every column has a header
    rows = lines[2:9]
    assert all(row.rstrip().endswith("ok") for row in rows), rows
    # columns line up by display width, Chinese key included: "verdict" starts at the same cell
    from cosguard.ui.table import display_width
    verdict_at = {display_width(row[: row.index(word)]) for row, word in
                  zip(rows, ["clean", "clean", "infected", "infected", "unscannable", "clean", "stale"])}
    assert len(verdict_at) == 1, rows
    legend = lines[lines.index("legend:"):]
    assert any(line.strip().startswith("stale → clean") for line in legend)   # the legend explains it
    kept = list(tmp_path.glob("cosguard-demo-*.log"))
    assert len(kept) == 1 and str(kept[0]) in result.stdout and kept[0].read_text().strip()
    [page] = tmp_path.glob("cosguard-demo-report-*.html")
    assert f"report (open it in a browser): {page}" in lines


def test_demo_json_says_where_the_kept_log_is(tmp_path):
    result = _demo(tmp_path, "--json", "--keep-logs")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    kept = list(tmp_path.glob("cosguard-demo-*.log"))
    assert len(kept) == 1 and document["function_logs"] == str(kept[0]) and kept[0].read_text().strip()
    assert list(document) == sorted(document)   # a stable key order
