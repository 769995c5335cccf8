"""`cosguard backfill` as an operator runs it: help, usage errors (exit 2), failures (exit 1), the
progress bar, Ctrl-C (exit 130, checkpoint kept) and --resume."""
from __future__ import annotations

import collections
import json
import os
import signal
import threading

import pytest

from backfill_support import mixed
from cosguard.cli import main


def _main(stack, tmp_path, *args):
    return main(["backfill", "--env-file", stack.env_file(tmp_path), "--bucket", stack.intake, *args])


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--bucket", "--prefix", "--workers", "--rps", "--dry-run", "--price-per-1000", "--checkpoint",
                 "--resume", "--progress", "--fan-out", "--batch-size", "--function", "--json"):
        assert flag in out, flag
    assert "assumption" in out


def test_usage_errors_exit_2(stack, tmp_path, capsys):
    with pytest.raises(SystemExit) as no_bucket:
        main(["backfill"])
    assert no_bucket.value.code == 2
    env = stack.env_file(tmp_path)
    assert main(["backfill", "--env-file", env, "--bucket", "stranger-1250000000"]) == 2
    assert "not in COSGUARD_BUCKETS" in capsys.readouterr().err
    assert _main(stack, tmp_path, "--resume") == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert _main(stack, tmp_path, "--fan-out") == 2
    assert "--function" in capsys.readouterr().err
    assert main(["backfill", "--bucket", stack.intake]) == 2   # no configuration at all
    assert "COSGUARD_BUCKETS" in capsys.readouterr().err
    assert stack.submits() == 0


def test_success_exits_0_and_any_error_exits_1(stacks, tmp_path, capsys):
    stack = stacks(COSGUARD_MAX_ATTEMPTS="1")
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(6, prefix="ok/") + mixed(3, prefix="bad/"))
    assert _main(stack, tmp_path, "--prefix", "ok/") == 0
    captured = capsys.readouterr()
    assert "6 submitted" in captured.err and "submitted" in captured.out   # summary line + table
    stack.cloud.ci.faults.error_rate = 1.0
    assert _main(stack, tmp_path, "--prefix", "bad/", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"error": 3} and {e["key"] for e in report["errors"]} == {
        "bad/00000.txt", "bad/00001.txt", "bad/00002.txt"}


def test_progress_bar_on_a_terminal_shows_objects_bytes_rate_and_eta(stack, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cosguard.ui.progress.is_terminal", lambda stream: True)
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(16))
    assert _main(stack, tmp_path, "--rps", "8") == 0   # ~2 s: the bar redraws every 0.5 s
    err = capsys.readouterr().err
    frames = [f for f in err.split("\r\x1b[K") if "backfill " in f and "ETA" in f]
    assert frames, err
    assert any("/16 objects" in f and "KiB" in f and "obj/s" in f and "ETA 0:00:0" in f for f in frames), frames
    assert any(f.startswith("[#") and "%" in f for f in frames), frames  # a bar once the count is known
    assert all(f.count("\n") == 0 for f in frames)          # frames overwrite one line
    summary = err.split("\r\x1b[K")[-1]                    # the bar is erased before the summary
    assert summary.startswith(f"backfill {stack.intake}/ scan complete: 16 listed, 16 submitted")


def test_forced_progress_without_a_terminal_is_whole_lines(stack, tmp_path, capsys):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(16))
    assert _main(stack, tmp_path, "--progress", "--rps", "8") == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err, err     # nothing runs together in a log
    lines = err.splitlines()
    assert any(line.startswith("backfill ") and "/16 objects" in line and "ETA" in line for line in lines), lines
    assert lines[-1].startswith(f"backfill {stack.intake}/ scan complete: 16 listed, 16 submitted")


def test_no_progress_bar_when_stderr_is_not_a_terminal(stack, tmp_path, capsys):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(3))
    assert _main(stack, tmp_path) == 0
    err = capsys.readouterr().err
    assert "ETA" not in err and err.count("\n") == 1   # just the summary line


def test_ctrl_c_stops_after_in_flight_work_and_resume_finishes(stack, tmp_path, capsys):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(40))
    checkpoint = str(tmp_path / "progress.json")
    # A shell that starts pytest in the background ignores SIGINT for it: this test sets its own.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = _main(stack, tmp_path, "--rps", "10", "--page-size", "5", "--checkpoint", checkpoint, "--json")
    finally:
        timer.cancel()
        restored = signal.signal(signal.SIGINT, inherited)
    assert code == 130
    captured = capsys.readouterr()
    assert "stopping after in-flight work" in captured.err
    first = json.loads(captured.out)
    assert first["interrupted"] and 5 <= first["counts"]["submitted"] < 40
    saved = json.loads(open(checkpoint).read())
    assert saved["complete"] is False and saved["marker"]["key"].startswith("data/")
    assert restored is signal.default_int_handler   # the CLI put back the handler it found

    assert _main(stack, tmp_path, "--checkpoint", checkpoint, "--resume", "--json") == 0
    second = json.loads(capsys.readouterr().out)
    assert second["complete"] and second["counts"]["submitted"] == 40 - first["counts"]["submitted"]
    jobs = collections.Counter(j.object_key for j in stack.cloud.ci.backend.jobs.values())
    assert len(jobs) == 40 and set(jobs.values()) == {1}


def test_a_listing_that_keeps_failing_stops_the_run_with_exit_1(stack, tmp_path, capsys):
    stack.seed(mixed(3))
    stack.cloud.cos.faults.deny(stack.intake, ["GetBucket"])
    assert _main(stack, tmp_path, "--json") == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "AccessDenied" in report["failure"] and not report["complete"] and report["listed"] == 0
    assert "stopped early" in captured.err and "failed" in captured.err
    assert stack.submits() == 0


def test_without_a_callback_url_the_operator_is_told_verdicts_wait_for_the_sweep(stack, tmp_path, capsys):
    stack.seed(mixed(1))
    env = tmp_path / "no-callback.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in stack.env.items() if k != "COSGUARD_CALLBACK_URL"))
    assert main(["backfill", "--env-file", str(env), "--bucket", stack.intake]) == 0
    assert "COSGUARD_CALLBACK_URL is not set" in capsys.readouterr().err
    assert stack.jobs() == 1
