"""The layers point one way: triggers/ -> domain/ -> infra/ -> errors.py, with bulk/, cli/, ui/,
local/ and runtime.py on top, never imported by the layers below; and the local cloud's emulator
(local/cos/, local/ci/ and what they use) knows nothing of cosguard, as moto's services know
nothing of their users.

Every module under src/cosguard is read (ast, not imported): every import statement, relative or
absolute, at module level, in a function or under TYPE_CHECKING, and `importlib.import_module` /
`__import__` of a constant name. A failure names file:line, the import and the rule it breaks.
"""
from __future__ import annotations

import ast
import pathlib
import shutil
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "cosguard"

# Lower ranks are imported by higher ones, never the other way round.
RANK = {"errors": 0, "infra": 1, "domain": 2, "triggers": 3}
TOP = 4   # bulk/, cli/, ui/, local/, runtime.py and the package itself
EMULATOR = ("cosguard.local.cos", "cosguard.local.ci")

UP = "points up a layer (triggers -> domain -> infra -> errors; bulk, cli, ui, local, runtime on top)"
CLI = "only cli/ imports cli/ (the command line is the outermost layer)"
LOCAL = "only cli/ imports the local cloud (cosguard's code never depends on its emulator)"
RUNTIME = "only cli/ and the package import runtime.py (the functions' wiring)"
LOCAL_OUT = "local/ imports nothing of cosguard outside local/ but ui/ (the demo's table and progress bar)"
EMULATED = ("the emulator (local/cos, local/ci and the local/ modules they use) imports nothing of cosguard "
            "outside local/ (as moto's services know nothing of their users)")


def module_name(path: pathlib.Path, package: pathlib.Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def exists(name: str, package: pathlib.Path) -> bool:
    base = package.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: pathlib.Path, package: pathlib.Path) -> Iterator[Tuple[int, str]]:
    """(line, module) for every cosguard module `path` imports; `from X import name` names X.name
    when that is a module of its own."""
    name = module_name(path, package)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if exists(full, package) else base
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def part(name: str) -> str:
    """`cosguard.domain.scan` -> `domain`; the package itself is ``."""
    pieces = name.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def inside(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def emulator_modules(graph: Dict[str, List[Tuple[pathlib.Path, int, str]]]) -> Set[str]:
    """local/cos, local/ci, and every local/ module they reach."""
    found = {m for m in graph if any(inside(m, e) for e in EMULATOR)}
    todo = list(found)
    while todo:
        for _, _, target in graph.get(todo.pop(), []):
            if inside(target, "cosguard.local") and target not in found and target in graph:
                found.add(target)
                todo.append(target)
    return found


def rule_broken(source: str, target: str, emulator: Set[str]) -> Optional[str]:
    src, dst = part(source), part(target)
    if src == dst and src != "local":
        return None
    if RANK.get(src, TOP) < RANK.get(dst, TOP):
        return UP
    if dst == "cli" and src != "cli":
        return CLI
    if dst == "local" and src not in ("cli", "local"):
        return LOCAL
    if dst == "runtime" and src not in ("cli", ""):
        return RUNTIME
    if src == "local" and not inside(target, "cosguard.local"):
        return EMULATED if source in emulator else (None if dst == "ui" else LOCAL_OUT)
    return None


def violations(package: pathlib.Path = PACKAGE) -> List[str]:
    graph: Dict[str, List[Tuple[pathlib.Path, int, str]]] = {}
    for path in sorted(package.rglob("*.py")):
        graph[module_name(path, package)] = [(path, line, target) for line, target in imports(path, package)
                                             if inside(target, "cosguard")]
    emulator = emulator_modules(graph)
    found = []
    for source, edges in sorted(graph.items()):
        for path, line, target in edges:
            rule = rule_broken(source, target, emulator)
            entry = f"{path.relative_to(package.parent.parent)}:{line}: {source} imports {target}: {rule}"
            if rule and entry not in found:   # `from x import a, b`: one line, one report
                found.append(entry)
    return found


def test_every_import_points_down_and_the_emulator_imports_nothing_of_cosguard():
    found = violations()
    assert not found, "imports that break the layers:\n" + "\n".join(found)


def test_the_walk_sees_the_imports_it_judges():
    """Relative, function-level and TYPE_CHECKING imports are all found (the walk is not vacuous)."""
    graph = {module_name(p, PACKAGE): {t for _, t in imports(p, PACKAGE)} for p in PACKAGE.rglob("*.py")}
    assert "cosguard.infra.ci_jobs" in graph["cosguard.infra.gateway"]          # under TYPE_CHECKING
    assert "cosguard.domain.scan" in graph["cosguard.runtime"]                  # inside a function
    assert "cosguard.local.samples" in graph["cosguard.local.demo"]             # `from . import samples`
    assert "cosguard.local.store" in graph["cosguard.local.ci.models"]          # `from ..store import`
    emulator = emulator_modules({m: [(PACKAGE, 0, t) for t in ts] for m, ts in graph.items()})
    assert {"cosguard.local.cos.dialect", "cosguard.local.ci.engine", "cosguard.local.auth",
            "cosguard.local.store"} <= emulator and "cosguard.local.demo" not in emulator


PLANTED = [
    # (file, text appended, the rule it must break)
    ("domain/scan.py", "\n\ndef _planted():\n    from ..triggers.events import CosUploadEvent  # noqa\n", UP),
    ("infra/config.py", "\nfrom ..domain.status import ScanStatus  # noqa\n", UP),
    ("errors.py", "\nif False:\n    import cosguard.infra.logs  # noqa\n", UP),
    ("local/demo.py", "\nfrom ..cli import common  # noqa\n", CLI),
    ("local/cos/wire.py", "\nfrom ...infra.text import terminal_safe  # noqa\n", EMULATED),
    ("local/store.py", "\nfrom .. import errors  # noqa\n", EMULATED),   # used by the emulator
    ("local/ci/engine.py", "\nimport importlib\nimportlib.import_module('cosguard.domain.status')\n", EMULATED),
    ("bulk/sweep.py", "\nfrom ..local import samples  # noqa\n", LOCAL),
    ("domain/ledger.py", "\nfrom .. import runtime  # noqa\n", UP),
]


@pytest.mark.parametrize("relative, text, rule", PLANTED, ids=[p[0] for p in PLANTED])
def test_a_planted_bad_import_is_named_with_its_file_line_and_rule(tmp_path, relative, text, rule):
    package = tmp_path / "src" / "cosguard"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    planted = package / relative
    planted.write_text(planted.read_text(encoding="utf-8") + text, encoding="utf-8")
    line = max(n for n, content in enumerate(planted.read_text(encoding="utf-8").splitlines(), 1) if "import" in content)
    found = violations(package)
    assert len(found) == 1, found
    assert found[0].startswith(f"src/cosguard/{relative}:{line}: ") and found[0].endswith(rule), found
