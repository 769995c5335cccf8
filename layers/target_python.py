"""What the target interpreter (the Python the layer is built for, layers/build.py's --python) does
to the layer's tree: compile it to byte code, check that byte code against its sources, and import
the handlers' library from the tree alone."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import List, Tuple


class BuildError(Exception):
    """The layer cannot be built as asked (build.py prints it and exits 1)."""


# -- byte code -----------------------------------------------------------------------------------
def compile_bytecode(tree: Path, python: str) -> None:
    """Compile every module of the tree with the target interpreter, as unchecked-hash .pyc files.

    Why: SCF's code and layer directories are read-only, so with sources alone every cold start
    compiles cosguard and its dependencies again (`benchmarks/bench_cold_start.py`, "as shipped").
    Unchecked hash: the runtime uses the .pyc without comparing it with the source's mtime, which
    unpacking does not keep; the tree is built afresh each time, so no .pyc is stale (and
    `bytecode_problems` checks each against its source). A runtime of another version looks for its
    own tag, finds none, and compiles as before. `-s/-p` record /opt paths, not this machine's, so
    the same inputs give the same bytes.
    """
    env = dict(os.environ, PYTHONHASHSEED="0")  # with one process, in order: the same bytes every build
    done = subprocess.run([python, "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash",
                           "-s", str(tree), "-p", "/opt", str(tree)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BuildError(f"{python} could not compile the layer:\n{(done.stdout + done.stderr)[-3000:]}")


BYTECODE_CHECK = r"""
import importlib.util, json, pathlib, sys
tree, tag = pathlib.Path(sys.argv[1]), sys.implementation.cache_tag
problems = []
for pyc in sorted(tree.rglob("*.py[co]")):
    suffix = "." + tag + ".pyc"
    source = pyc.parent.parent / (pyc.name[:-len(suffix)] + ".py")
    if pyc.parent.name != "__pycache__" or not pyc.name.endswith(suffix) or not source.is_file():
        problems.append(f"{pyc.relative_to(tree)}: not the byte code of a module beside it, for {tag}")
        continue
    head = pyc.read_bytes()[:16]
    if (head[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(head[4:8], "little") != 1
            or head[8:16] != importlib.util.source_hash(source.read_bytes())):
        problems.append(f"{pyc.relative_to(tree)}: not {tag} unchecked-hash byte code of its source")
for source in sorted(tree.rglob("*.py")):
    if not (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").is_file():
        problems.append(f"{source.relative_to(tree)}: no byte code")
print(json.dumps({"tag": tag, "problems": problems}))
"""


def bytecode_problems(tree: Path, python: str) -> Tuple[str, List[str]]:
    """(`python`'s cache tag, every .pyc that is not its unchecked-hash byte code of the source beside
    it, and every module without one). Run by the target interpreter: the hash is its own."""
    done = subprocess.run([python, "-S", "-c", BYTECODE_CHECK, str(tree)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"the byte code check failed under {python}:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout)
    return found["tag"], found["problems"]


def smoke_import(tree: Path, python: str) -> None:
    """Import the handlers' library and the SDK from the tree alone (no site-packages)."""
    code = ("import cosguard.runtime, qcloud_cos, defusedxml, requests, sys\n"
            "bad = [m.__file__ for m in (cosguard.runtime, qcloud_cos, requests)\n"
            "       if not m.__file__.startswith(sys.argv[1])]\n"
            "assert not bad, bad\n")
    env = {"PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "x", "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([python, "-S", "-c", code, str(tree)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"the layer does not import under {python}:\n{done.stderr[-3000:]}")
