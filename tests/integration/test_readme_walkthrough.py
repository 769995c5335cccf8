"""The walkthrough and the Python snippet of docs/local-cloud.md (the README's "next" step), run as
written: `cosguard local` as a process, then the operations commands against it through `--env-file`,
in a shell."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-cloud.md"


def doc_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"expected one {language} block with {containing!r} in {DOC.name}"
    return found[0]


def ready_line_keys() -> set:
    """The keys the docs' ready-line table names (its first column)."""
    table = re.search(r"<!-- ready line -->\n+((?:\|[^\n]*\n)+)", DOC.read_text(encoding="utf-8")).group(1)
    return {key for row in table.splitlines()[2:] for key in re.findall(r"`(\w+)`", row.split("|")[1])}


@pytest.fixture
def shell_env(tmp_path):
    """`cosguard` and `python` as the quick start's venv has them: this interpreter, this source tree."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("cosguard", f'"{sys.executable}" -m cosguard.cli'), ("python", f'"{sys.executable}"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        script.chmod(0o755)
    source = str(Path(__file__).resolve().parents[2] / "src")
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                PYTHONPATH=os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
                TMPDIR=str(tmp_path), PYTHONIOENCODING="utf-8")


def run_detached(argv, env, cwd, timeout):
    """Run in a session of its own, output to files (a background child holding a pipe must not
    hang the test); whatever it leaves running is killed and reported."""
    with open(cwd / "stdout", "w+", encoding="utf-8") as out, open(cwd / "stderr", "w+", encoding="utf-8") as err:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, text=True,
                                   start_new_session=True)
        try:
            process.wait(timeout=timeout)
        finally:
            leftover = _alive(process.pid)
            if leftover:
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            process.wait()
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read(), leftover


def _alive(group: int) -> bool:
    deadline = time.monotonic() + 30  # SIGTERM'd children get a moment to stop (a loaded machine: longer)
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    return True


def test_walkthrough_start_upload_status_backfill_restore(shell_env, tmp_path):
    script = "set -euo pipefail\n" + doc_block("bash", "cosguard local --env-file")
    code, out, err, leftover = run_detached(["bash", "-c", script], shell_env, tmp_path, timeout=240)
    assert code == 0, out + err
    assert not leftover, "cosguard local still running after `kill $local_pid`"
    scratch = [p for p in tmp_path.iterdir() if (p / "ready.json").exists()]
    assert len(scratch) == 1                              # the walkthrough's mktemp directory
    ready = json.loads((scratch[0] / "ready.json").read_text())
    assert ready["env_file"] == str(scratch[0] / "local.env") and ready["watches"].startswith("every key")
    assert set(ready) == ready_line_keys()                # the ready line is the one the docs describe
    assert not (scratch[0] / "local.env").exists()        # removed when cosguard local stopped

    first_status, rest = out.split("\nrecent infections:\n", 1)
    rows = [line.split() for line in first_status.splitlines()]
    assert rows[0] == ["status", "handled", "objects"]
    assert ["clean", "tagged", "in", "place", "1"] in rows
    assert ["infected", "moved", "to", "quarantine", "1"] in rows
    assert "intake-1250000000/uploads/eicar.com" in rest
    # where it is now: the quarantine copy, <prefix><bucket>/<job id>/<key>, its middle shortened to fit
    # 100 columns (both ends kept)
    assert re.search(r"intake-1250000000\s+uploads/eicar\.com\s+quarantine-\S*…\S*eicar\.com", rest), rest
    assert re.search(r"already_scanned\s+1\b", rest)      # the backfill: nothing left to scan
    restored = [line.split() for line in rest.splitlines()]
    assert ["status", "released"] in restored and ["to", "intake-1250000000/uploads/eicar.com"] in restored, rest
    assert any(row[:2] == ["from"] + row[1:2] and row[1].startswith("quarantine-1250000000/quarantine/")
               and row[1].endswith("/uploads/eicar.com") for row in restored if row), rest
    final = json.loads(rest[rest.index("\n{") + 1:])      # the last status, as JSON
    assert final["counts"] == {"clean": 1, "released": 1}
    assert "scan complete: 1 listed" in err               # backfill's summary line


def test_python_snippet_stops_cosguard_local(shell_env, tmp_path):
    snippet = doc_block("python", 'subprocess.Popen(["cosguard", "local"]')
    code, out, err, leftover = run_detached([sys.executable, "-c", snippet], shell_env, tmp_path, timeout=120)
    assert code == 0, out + err
    assert out.strip() in ("Submitted", "Auditing", "Success")
    assert not leftover, "the snippet left cosguard local running"
    assert "cosguard local: stopped" in err
