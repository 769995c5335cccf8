"""Run mutmut's mutants faster where most tests exercise the mutated function (docs/mutation-testing.md).

mutmut runs a mutant against every test that called its function in the stats run, ordered by
duration: for a function every upload passes through (a seal, a callback URL, an entry's identity)
that is hundreds of HTTP tests, minutes per mutant when the first ones do not fail. This runs the
in-process unit tests that call the function first (seconds; not the slow layer build), then a
test that killed another mutant of the same function, then the other covering tests mutmut
recorded, fastest first, stopping at the first failure. Same mutants (mutmut's `mutants/` tree and `mutmut-stats.json`), same kill rule (any test
that passes on the code fails on the mutant), same exclusions as `[tool.mutmut]`.

    .venv-mut/bin/mutmut run "cosguard.domain.layout.x_layout_warnings__mutmut_1"   # builds mutants/ and its stats
    .venv-mut/bin/mutmut results --all true | grep "cosguard.triggers." | cut -d: -f1 > todo.txt
    .venv-mut/bin/python tests/mutation/run.py todo.txt --workers 2 > results.jsonl

One JSON line per mutant: its name, `killed` / `survived` / `timeout` / `error` (pytest could not run
the tests: no verdict), and the first failing test.
Names already in the files given with `--done` are skipped (a run can be stopped and resumed).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
# as [tool.mutmut]'s pytest_add_cli_args (pyproject.toml), and the layer build (no domain code, 2 minutes)
EXCLUDED = ["--ignore=tests/unit/test_cold_start.py", "--ignore=tests/unit/test_log_events.py",
            "--ignore=tests/integration/test_readme_walkthrough.py",
            "--deselect=tests/adversarial/state/test_state_layout.py::"
            "test_preflight_warns_about_state_in_the_intake_bucket",
            "--deselect=tests/adversarial/state/test_state_layout.py::"
            "test_preflight_warns_when_uploaders_can_write_the_clean_destination"]


def run_tests(mutants: pathlib.Path, name: str, tests: List[str], timeout: float) -> Tuple[str, str]:
    env = dict(os.environ, MUTANT_UNDER_TEST=name, PYTHONPATH="src")
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *EXCLUDED, *tests],
                              cwd=mutants, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    if done.returncode == 0:
        return "survived", ""
    if done.returncode != 1:   # pytest's own trouble (usage, no tests collected): no verdict on the mutant
        return "error", done.stdout.strip().splitlines()[-1:][0] if done.stdout.strip() else done.stderr[-200:]
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return "killed", failed[0] if failed else done.stdout.strip().splitlines()[-1:][0] if done.stdout.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", help="a file of mutant names, one a line")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--done", nargs="*", default=[], help="result files whose mutants are skipped")
    parser.add_argument("--mutants", default=str(ROOT / "mutants"))
    parser.add_argument("--try-first", nargs="*", default=[], metavar="TEST",
                        help="tests tried after the unit tests, for every mutant (one known to kill many of them, "
                             "or from a folder the stats run did not cover, such as tests/backfill's)")
    args = parser.parse_args()
    mutants = pathlib.Path(args.mutants)
    stats = json.loads((mutants / "mutmut-stats.json").read_text())
    covering: Dict[str, List[str]] = stats["tests_by_mangled_function_name"]
    durations: Dict[str, float] = stats["duration_by_test"]
    done = {json.loads(line)["name"] for path in args.done for line in open(path) if line.strip()}
    names = [n.strip() for n in open(args.names) if n.strip() and n.strip() not in done]

    killers: Dict[str, List[str]] = {}   # per function: the tests that killed its other mutants

    def one(name: str) -> None:
        function = name.rsplit("__mutmut_", 1)[0]
        tests = sorted(covering.get(function, []), key=lambda t: durations.get(t, float("inf")))
        unit = [t for t in tests if t.startswith("tests/unit/") and not t.startswith("tests/unit/test_layers.py")]
        tests = [t for t in tests if t not in unit]
        status, by = run_tests(mutants, name, unit, 600) if unit else ("survived", "")
        tried = list(dict.fromkeys(killers.get(function, []) + args.try_first))
        if status == "survived" and tried:   # a sibling's killer first: a few tests, not hundreds
            status, by = run_tests(mutants, name, tried, 600)
            status = "survived" if status == "error" else status
        if status == "survived" and tests:
            status, by = run_tests(mutants, name, [t for t in tests if t not in tried], 2400)
        test = by.split(" - ")[0].split(" ", 1)[1] if by.startswith(("FAILED ", "ERROR ")) else ""
        if status == "killed" and test in tests + args.try_first and test not in killers.setdefault(function, []):
            killers[function].append(test)
        print(json.dumps({"name": name, "status": status, "by": by}), flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
