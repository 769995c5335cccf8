#!/usr/bin/env python3
"""Build cosguard's SCF layer: the runtime library plus its pinned dependencies, laid out for SCF.

SCF unpacks a layer under /opt and starts Python with PYTHONPATH=/var/user:/opt, so packages sit at
the zip ROOT (`cosguard/`, `qcloud_cos/`, ...). The emulator (`cosguard/local/`), the CLI
(`cosguard/cli/`) and its terminal tables (`cosguard/ui/`), any module importing the emulator, tests
and caches never ship.

    python layers/build.py [--python /path/to/python3.9] [--out layers/build/cosguard-layer.zip]

With --python, dependencies are installed by that interpreter, so compiled ones (pycryptodome,
charset-normalizer, crcmod) match it: use a Python 3.9 (or 3.10) on x86_64 Linux, like SCF's
runtime. Without it, pip downloads manylinux2014_x86_64 wheels for --python-version; crcmod ships
no wheel, so it is built by the running interpreter and only its pure-Python part is usable by
the target (slower CRC64, same results). Prints the zip's size and file count.

With --python, that interpreter also compiles every module to byte code (`__pycache__/*.cpython-39.pyc`,
unchecked-hash): SCF's directories are read-only, so without it each cold start compiles cosguard
and its dependencies again. `--no-bytecode` ships sources only.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))   # run as a script or loaded by path: its sibling modules
from target_python import BuildError, bytecode_problems, compile_bytecode, smoke_import  # noqa: E402

ROOT = HERE.parent
PACKAGE = ROOT / "src" / "cosguard"
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_OUT = HERE / "build" / "cosguard-layer.zip"
DEFAULT_TREE = HERE / "build" / "cosguard-layer"   # serverless.yml's layer instance uploads this folder
TREE_MARKER = ".cosguard-layer-tree"              # only a folder carrying it is ever wiped
PLATFORM = "manylinux2014_x86_64"
DEFAULT_PYTHON_VERSION = "3.9"
SOURCE_ONLY = ("crcmod",)                         # no wheels on PyPI: built from the sdist
# Inside dependencies: console scripts, byte code, and pycryptodome's self-tests (3+ MB, test-only).
PRUNE_DIRS = ("bin", "Crypto/SelfTest", "Cryptodome/SelfTest")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)                  # fixed times: same inputs, same zip (bar crcmod's
                                                  # C extension, compiled anew by each build)


# -- cosguard's own code -------------------------------------------------------------------------
def _is_emulator(module: str) -> bool:
    return module == "cosguard.local" or module.startswith("cosguard.local.")


def _absolute(path: Path, package: Path, level: int, module: str) -> str:
    """The absolute name a (possibly relative) `from ... import` refers to, from `path` in `package`."""
    if not level:
        return module
    here = ["cosguard", *path.relative_to(package).with_suffix("").parts]
    base = here[:-level] if here[-1] != "__init__" else here[:-1][:len(here) - level]
    return ".".join(base + ([module] if module else []))


def _imports_emulator(path: Path, package: Path = PACKAGE) -> bool:
    """True when the module imports `cosguard.local` (the emulator does not ship, so neither may it)."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            target = _absolute(path, package, node.level, module)
            names = [target + "." + a.name if target else a.name for a in node.names]
            if any(_is_emulator(n) for n in [target] + (names if node.level else [])):
                return True
        elif isinstance(node, ast.Import):
            if any(a.name == "cosguard.local" or a.name.startswith("cosguard.local.") for a in node.names):
                return True
    return False


def runtime_files(package: Path = PACKAGE) -> List[Path]:
    """The package files that ship, relative to `package`: no emulator, CLI, dev-only modules, caches."""
    shipped: List[Path] = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if rel.parts[0] == "local":
            continue
        if rel.parts[0] in ("cli", "ui") or (len(rel.parts) == 1 and re.fullmatch(r"cli(_\w*)?\.py", rel.name)):
            continue
        if path.suffix == ".py" and _imports_emulator(path, package):
            continue
        shipped.append(rel)
    return shipped


def copy_package(tree: Path) -> List[str]:
    target = tree / "cosguard"
    shipped = runtime_files()
    for rel in shipped:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE / rel, target / rel)
    left_out = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.glob("*.py")
                      if p.relative_to(PACKAGE) not in shipped)
    return left_out


# -- dependencies --------------------------------------------------------------------------------
def pinned_requirements(path: Path = REQUIREMENTS) -> Dict[str, str]:
    """{normalized name: version} from requirements.txt (`name==version` lines only)."""
    pins: Dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([A-Za-z0-9_.+!-]+)", line)
        if not match:
            raise BuildError(f"{path}: not an exact pin: {line!r}")
        pins[normalize(match.group(1))] = match.group(2)
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def interpreter_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def install_dependencies(tree: Path, python: Optional[str], python_version: str) -> List[str]:
    """pip-install the pins into `tree`; returns the command line used."""
    args = ["-m", "pip", "install", "--target", str(tree), "--no-compile", "--no-input",
            "--disable-pip-version-check", "--no-warn-script-location", "-r", str(REQUIREMENTS)]
    if python:
        command = [python] + args
    else:
        command = [sys.executable] + args + [
            "--no-deps", "--platform", PLATFORM, "--implementation", "cp",
            "--python-version", python_version, "--only-binary=:all:",
        ] + [f"--no-binary={name}" for name in SOURCE_ONLY]
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BuildError(f"pip failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return command


def installed_distributions(tree: Path) -> Dict[str, str]:
    found: Dict[str, str] = {}
    for meta in list(tree.glob("*.dist-info/METADATA")) + list(tree.glob("*.egg-info/PKG-INFO")):
        fields = dict(line.split(": ", 1) for line in meta.read_text("utf-8", "replace").splitlines()
                      if ": " in line and line.split(": ", 1)[0] in ("Name", "Version"))
        if "Name" in fields:
            found[normalize(fields["Name"])] = fields.get("Version", "")
    return found


def prune(tree: Path, python_version: str) -> List[str]:
    """Remove what must not ship; returns removed extension modules built for another Python."""
    for rel in PRUNE_DIRS:
        shutil.rmtree(tree / rel, ignore_errors=True)
    for cache in [p for p in tree.rglob("__pycache__") if p.is_dir()]:
        shutil.rmtree(cache, ignore_errors=True)
    for compiled in list(tree.rglob("*.pyc")) + list(tree.rglob("*.pyo")):
        compiled.unlink()
    major, minor = python_version.split(".")[:2]
    wanted = f"cpython-{major}{minor}"
    foreign = []
    for ext in tree.rglob("*.so"):
        match = re.search(r"\.(cpython-\d+)-", ext.name)
        if match and match.group(1) != wanted:
            foreign.append(str(ext.relative_to(tree)))
            ext.unlink()
    return sorted(foreign)


# -- checks, zip ---------------------------------------------------------------------------------
def forbidden_entries(names: Sequence[str], bytecode_tag: Optional[str] = None) -> List[str]:
    """Zip entries that must never ship (the emulator, the CLI, tests, caches). Byte code ships only
    when the build compiled it: `<dir>/__pycache__/<module>.<bytecode_tag>.pyc` beside `<dir>/<module>.py`."""
    present = set(names)
    bad = []
    for name in names:
        parts = name.rstrip("/").split("/")
        cache = "__pycache__" in parts or name.endswith((".pyc", ".pyo"))
        if name.startswith(("cosguard/local/", "cosguard/cli/", "cosguard/ui/")) or re.fullmatch(r"cosguard/cli(_\w*)?\.py", name) or \
                (cache and not _compiled_module(name, present, bytecode_tag)) or \
                parts[0] in ("tests", "test") or parts[-1] == TREE_MARKER:
            bad.append(name)
    return bad


def _compiled_module(name: str, present: set, tag: Optional[str]) -> bool:
    """Whether `name` is the build's own byte code of a module that ships (or its __pycache__ folder)."""
    if not tag:
        return False
    folder, _, file = name.rstrip("/").rpartition("/")
    if name.endswith("/"):
        return file == "__pycache__"
    parent, _, cache = folder.rpartition("/")
    suffix = f".{tag}.pyc"
    source = posixpath.join(parent, file[:-len(suffix)] + ".py")
    return cache == "__pycache__" and file.endswith(suffix) and source in present


def write_zip(tree: Path, out: Path) -> int:
    """A deterministic zip of `tree` (sorted, fixed times, 0644/0755); returns the file count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree).as_posix()
            if rel == TREE_MARKER:
                continue
            if path.is_dir():
                info = zipfile.ZipInfo(rel + "/", ZIP_TIME)
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info = zipfile.ZipInfo(rel, ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
            count += 1
    tmp.replace(out)
    return count


def write_manifest(out: Path) -> str:
    """Record the zip's sha256 next to it (<zip>.json): deploy/deploy.py writes it into the layer
    version's description, and `cosguard verify --deployment` compares the two."""
    import hashlib
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_suffix(".json").write_text(json.dumps({"zip": out.name, "sha256": digest}) + "\n", "utf-8")
    return digest


def fresh_tree(tree: Path) -> None:
    if tree.exists():
        if any(tree.iterdir()) and not (tree / TREE_MARKER).exists():
            raise BuildError(f"{tree} exists and was not made by this script; refusing to wipe it")
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    (tree / TREE_MARKER).write_text("made by layers/build.py; wiped on every build\n")


def build(out: Path, tree: Path, python: Optional[str], python_version: str,
          bytecode: bool = True) -> Dict[str, object]:
    if python:
        python_version = interpreter_version(python)
        if not re.match(r"3\.(9|10)\.", python_version):
            print(f"warning: {python} is Python {python_version}; the functions run Python3.9",
                  file=sys.stderr)
    fresh_tree(tree)
    left_out = copy_package(tree)
    command = install_dependencies(tree, python, python_version)
    foreign = prune(tree, python_version)
    pins = pinned_requirements()
    installed = installed_distributions(tree)
    unpinned = sorted(set(installed) - set(pins))
    missing = sorted(set(pins) - set(installed))
    if missing:
        raise BuildError(f"pinned but not installed: {missing}")
    tag = None
    if python and bytecode:
        compile_bytecode(tree, python)
        tag, problems = bytecode_problems(tree, python)
        if problems:
            raise BuildError(f"byte code that does not match its source: {problems[:10]}")
    if python:
        smoke_import(tree, python)
    files = write_zip(tree, out)
    with zipfile.ZipFile(out) as archive:
        bad = forbidden_entries(archive.namelist(), bytecode_tag=tag)
    if bad:
        raise BuildError(f"the zip holds files that must not ship: {bad[:10]}")
    size = out.stat().st_size
    sha256 = write_manifest(out)
    return {
        "zip": str(out), "tree": str(tree), "bytes": size, "megabytes": round(size / 1024 / 1024, 2),
        "files": files, "sha256": sha256, "manifest": str(out.with_suffix(".json")), "python": python_version,
        "route": "interpreter" if python else f"pip --platform {PLATFORM}", "bytecode": tag,
        "interpreter": python, "pip": command, "left_out": left_out,
        "foreign_extensions_removed": foreign, "unpinned": unpinned,
        "distributions": installed,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="target interpreter (Python 3.9/3.10 on x86_64 Linux) that "
                                         "installs the dependencies; default: pip --platform download")
    parser.add_argument("--python-version", default=DEFAULT_PYTHON_VERSION,
                        help="target version without --python (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip path (default %(default)s)")
    parser.add_argument("--tree", type=Path, default=None,
                        help="unzipped layer folder (default: the zip's path without .zip)")
    parser.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                        help="with --python: ship sources only (default: .pyc compiled by that interpreter)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    tree = (args.tree or out.with_suffix("")).resolve()
    try:
        summary = build(out, tree, args.python, args.python_version, bytecode=args.bytecode)
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        print(f"layer build failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"layer: {summary['zip']}")
    print(f"  size: {summary['bytes']} bytes ({summary['megabytes']} MB), {summary['files']} files")
    print(f"  sha256: {summary['sha256']} (recorded in {summary['manifest']})")
    print(f"  python: {summary['python']} via {summary['route']}; byte code: "
          f"{summary['bytecode'] + ' (unchecked-hash)' if summary['bytecode'] else 'none, sources only'}")
    print(f"  tree: {summary['tree']} (what the layer instance in layers/serverless.yml uploads)")
    print(f"  cosguard modules left out: {', '.join(summary['left_out']) or 'none'}")
    if summary["foreign_extensions_removed"]:
        print(f"  removed extensions built for another Python (pure-Python fallback used): "
              f"{', '.join(summary['foreign_extensions_removed'])}")
    if summary["unpinned"]:
        print(f"  warning: installed but not pinned in layers/requirements.txt: "
              f"{', '.join(summary['unpinned'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
