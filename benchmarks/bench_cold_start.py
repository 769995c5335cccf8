"""Cold-start import cost: each handler module (`functions/*/index.py`, imported the way SCF does,
which also builds the Runtime from the environment) against `import qcloud_cos` alone, each in a
fresh interpreter, several runs, median.

Why: SCF pays this on every cold start, before the first event is handled; the SDK is the floor,
anything above it is cosguard's own doing.

How: a fresh `python` process per run times the import from inside (time.perf_counter around it,
interpreter start-up excluded) and the parent also times the whole process (start-up included).
The environment is the production one (role keys, region, buckets, callback URL and token,
quarantine bucket), pointed at a local cloud whose request counters must stay at zero: importing
must not call the network. A first run per target is discarded (it may write .pyc files).

If `layers/build/cosguard-layer` exists and a `python3.9` is on PATH, the same is measured as SCF
runs the shipped artifact: Python 3.9, PYTHONPATH=<function dir>:<layer>, and `-B` (SCF's code
directories are read-only: nothing is written). The layer's own byte code is used when it carries
it (`layers/build.py --python` compiles it); a layer without it (`--no-bytecode`) compiles every
module of cosguard and its dependencies at each cold start.

With `--instructions` (needs valgrind), each target also runs once under callgrind: the CPU
instructions of its import (start-up subtracted) do not depend on what else the machine is doing,
so that ratio holds on a busy machine where the timed medians wander.
"""
from __future__ import annotations

import argparse
import filecmp
import glob
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from _common import CALLBACK_TOKEN, ROOT, header, median, table
from cosguard.local.stack import LocalCloud

FUNCTIONS = ("scan_on_upload", "quarantine_callback", "reconcile_pending")
LAYER = ROOT / "layers" / "build" / "cosguard-layer"

PROBE = r"""
import importlib, sys, time
target = sys.argv[1]
started = time.perf_counter()
if target == "-":
    pass
elif target == "qcloud_cos":
    import qcloud_cos
else:
    sys.path.insert(0, target)   # SCF puts the function's code directory first
    importlib.import_module("index")
elapsed = time.perf_counter() - started
print(elapsed, len(sys.modules))
"""


def run_once(python: str, flags: Sequence[str], target: str, env: Dict[str, str]) -> Tuple[float, float, int]:
    """(import seconds measured inside, whole process seconds, modules loaded)."""
    started = time.perf_counter()
    done = subprocess.run([python, *flags, "-c", PROBE, target], env=env, capture_output=True, text=True,
                          timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{target}: {done.stderr.strip()[-800:]}")
    inside, modules = done.stdout.split()
    return float(inside), wall, int(modules)


def measure(python: str, flags: Sequence[str], targets: Dict[str, str], env: Dict[str, str],
            runs: int, warmup: bool = True) -> Dict[str, Tuple[float, float, int]]:
    """Interleaved runs (target order rotates every round), medians per target."""
    names = list(targets)
    if warmup:
        for name in names:
            run_once(python, flags, targets[name], env)
    samples: Dict[str, List[Tuple[float, float, int]]] = {name: [] for name in names}
    for round_ in range(runs):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            samples[name].append(run_once(python, flags, targets[name], env))
    return {name: (median([s[0] for s in got]), median([s[1] for s in got]), got[-1][2])
            for name, got in samples.items()}


def instructions(python: str, flags: Sequence[str], target: str, env: Dict[str, str]) -> int:
    """Instructions executed by one fresh process importing `target` (callgrind's Ir total)."""
    env = dict(env, PYTHONHASHSEED="0")  # the same dict layouts, hence the same count, every run
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *flags, "-c",
                           PROBE, target], env=env, capture_output=True, text=True, timeout=600)
    found = [line for line in done.stderr.splitlines() if "Collected :" in line]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"{target} under valgrind: {done.stderr.strip()[-800:]}")
    return int(found[-1].rsplit(":", 1)[1])


def import_self_time_by_package(python: str, flags: Sequence[str], target: str, env: Dict[str, str],
                                count: int = 10) -> List[Tuple[int, str, int]]:
    """Where the import time goes: `-X importtime` self time summed per top-level package
    (µs, package, modules), largest first."""
    done = subprocess.run([python, *flags, "-X", "importtime", "-c", PROBE, target], env=env,
                          capture_output=True, text=True, timeout=120)
    totals: Dict[str, List[int]] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in parts[1]:
            continue
        package = parts[2].strip().split(".")[0]
        entry = totals.setdefault(package, [0, 0])
        entry[0] += int(parts[0].split(":", 1)[1])
        entry[1] += 1
    ranked = sorted(((us, name, n) for name, (us, n) in totals.items()), reverse=True)
    return ranked[:count]


def python39() -> Optional[str]:
    """A working Python 3.9 (SCF's runtime): $COSGUARD_PYTHON39, a pyenv install, or PATH's."""
    candidates = [os.environ.get("COSGUARD_PYTHON39")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")), reverse=True)
    candidates.append(shutil.which("python3.9"))
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.stdout.strip() == "True":
            return candidate
    return None


def layer_matches_source() -> Optional[bool]:
    """Whether the layer's cosguard/**/*.py equal src/cosguard's (the layer may be an old build)."""
    shipped = LAYER / "cosguard"
    if not shipped.is_dir():
        return None
    names = [p.relative_to(shipped).as_posix() for p in shipped.rglob("*.py")]
    _, mismatch, errors = filecmp.cmpfiles(shipped, ROOT / "src" / "cosguard", names, shallow=False)
    return not mismatch and not errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per target (median; default 7)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each import's CPU instructions under valgrind (load-independent)")
    args = parser.parse_args(argv)
    header("Cold start: handler module import vs `import qcloud_cos` (fresh process per run, median)")
    with LocalCloud(["intake-1250000000", "quarantine-1250000000"]) as cloud:
        env = dict(os.environ)
        env.update(cloud.function_env(COSGUARD_BUCKETS="intake-1250000000",
                                      COSGUARD_QUARANTINE_BUCKET="quarantine-1250000000",
                                      COSGUARD_CALLBACK_URL="http://127.0.0.1:9/",  # discard port, never called
                                      COSGUARD_CALLBACK_TOKEN=CALLBACK_TOKEN))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        before = (sum(cloud.cos.counters.snapshot().values()), sum(cloud.ci.counters.snapshot().values()))
        targets = {"python start-up only": "-", "import qcloud_cos": "qcloud_cos"}
        targets.update({f"{name}/index.py": str(ROOT / "functions" / name) for name in FUNCTIONS})
        local = measure(sys.executable, [], targets, env, args.runs)
        biggest = import_self_time_by_package(sys.executable, [], str(ROOT / "functions" / "scan_on_upload"), env)
        counted: Optional[Dict[str, int]] = None
        if args.instructions:
            if not shutil.which("valgrind"):
                parser.error("--instructions needs valgrind on PATH")
            counted = {name: instructions(sys.executable, [], target, env) for name, target in targets.items()}
        shipped_counted: Optional[Dict[str, int]] = None

        shipped: Optional[Dict[str, Tuple[float, float, int]]] = None
        interpreter = python39()
        layer_note = ""
        if LAYER.is_dir() and interpreter:
            layer_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            layer_env["PYTHONPATH"] = str(LAYER)
            # -B: none is written (read-only on SCF), the layer's own .pyc (if any) are read; the
            # interpreter's own stdlib keeps its .pyc, as SCF's runtime image has them.
            shipped = measure(interpreter, ["-s", "-B"], targets, layer_env, args.runs, warmup=False)
            if args.instructions:
                shipped_counted = {name: instructions(interpreter, ["-s", "-B"], target, layer_env)
                                   for name, target in targets.items()}
            matches = layer_matches_source()
            compiled = len(list(LAYER.rglob("*.pyc")))
            layer_note = (f"layer: {LAYER.relative_to(ROOT)} "
                          f"({'cosguard/*.py identical to src/' if matches else 'OLDER/DIFFERENT build than src/'}; "
                          f"{f'{compiled} .pyc files' if compiled else 'no .pyc: every module compiles'})")
        after = (sum(cloud.cos.counters.snapshot().values()), sum(cloud.ci.counters.snapshot().values()))

    base = local["import qcloud_cos"][0]
    rows = []
    for name in targets:
        inside, wall, modules = local[name]
        row = [name, round(inside * 1000, 1), "-" if name.startswith("python") else f"{(inside - base) * 1000:+.1f}",
               "-" if name.startswith("python") else f"{inside / base:.2f}×", round(wall * 1000, 1), modules]
        if shipped is not None:
            s_inside, s_wall, _ = shipped[name]
            ratio = "-" if name.startswith("python") else f"{s_inside / shipped['import qcloud_cos'][0]:.2f}×"
            row += [round(s_inside * 1000, 1), ratio, round(s_wall * 1000, 1)]
        rows.append(row)
    headers = ["target", "import ms (median)", "vs qcloud_cos ms", "× qcloud_cos (target ≤ 1.10)", "process wall ms",
               "modules loaded"]
    if shipped is not None:
        headers += ["as shipped (3.9 + layer): import ms", "as shipped × qcloud_cos", "as shipped: process wall ms"]
    print()
    print(f"{args.runs} runs per target, interleaved; {sys.executable} with this checkout's packages "
          "(.pyc cache warm).")
    if layer_note:
        print(layer_note + f"; {interpreter} -s -B")
    print()
    print(table(headers, rows))
    print()
    if counted is not None:
        print("CPU instructions of each import (valgrind --tool=callgrind, one run each, interpreter start-up "
              "subtracted; independent of the machine's load):")
        columns = [("", counted)] + ([(" as shipped (3.9, -B)", shipped_counted)] if shipped_counted else [])
        headers = ["target"]
        for label, _ in columns:
            headers += [f"instructions{label} (millions)", f"× qcloud_cos{label}"]
        rows = []
        for name in targets:
            if name.startswith("python"):
                continue
            row = [name]
            for _, got in columns:
                start_up, sdk = got["python start-up only"], got["import qcloud_cos"]
                row += [round((got[name] - start_up) / 1e6, 1), f"{(got[name] - start_up) / (sdk - start_up):.3f}×"]
            rows.append(row)
        print(table(headers, rows))
        print()
    print(f"requests to the local COS / CI during all imports: {after[0] - before[0]} / {after[1] - before[1]} "
          "(must be 0: the handlers' cold start does not call the network)")
    print()
    print("where scan_on_upload/index.py's import time goes (-X importtime self time by top-level package, "
          "one run, includes -X importtime's own overhead):")
    print(table(["package", "ms", "modules"], [[name, round(us / 1000, 1), n] for us, name, n in biggest]))
    if after != before:
        print("FAILED: importing a handler called the local cloud", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
