"""Log events are constant names with fields, and docs/logs.md documents every one.

A CLS query or metric filter matches `event:verdict AND outcome:quarantined`; that only works while
the name is a constant (never built from the outcome), the fields keep their names, and the page
operators read lists what the code logs.
"""
from __future__ import annotations

import ast
import io
import json
import logging
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

from cosguard.infra import logs

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "cosguard"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
NOT_FIELDS = {"exc_info"}


def _product_modules() -> List[Path]:
    """cosguard's own modules: the local cloud (src/cosguard/local) is an emulator with loggers of its own."""
    return [p for p in sorted(SRC.rglob("*.py")) if p.relative_to(SRC).parts[0] != "local"]


def _is_event_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "event") or (
        isinstance(func, ast.Attribute) and func.attr == "event"
        and isinstance(func.value, ast.Name) and func.value.id == "logs")


def _calls() -> List[Tuple[str, ast.Call]]:
    found = []
    for path in _product_modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if _is_event_call(node):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def _documented() -> Dict[str, Set[str]]:
    """{event: the fields its row lists} from the events table of docs/logs.md."""
    rows = {}
    for line in (ROOT / "docs" / "logs.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            name = cells[0].strip("`")
            rows[name] = set(re.findall(r"`([a-z_]+)`", cells[2]))
    return rows


def test_the_scan_finds_the_event_calls():
    assert len(_calls()) >= 25   # a scan that found nothing would prove nothing


def test_every_event_name_is_a_constant_word():
    bad = []
    for where, call in _calls():
        name = call.args[1] if len(call.args) > 1 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and NAME_RE.match(name.value)):
            bad.append(f"{where}: {ast.unparse(name) if name is not None else 'no name'}")
    assert bad == [], "event names must be constant snake_case words: " + "; ".join(bad)


def test_every_event_is_documented_with_its_fields():
    documented = _documented()
    missing, fields = [], []
    for where, call in _calls():
        name = call.args[1].value
        if name not in documented:
            missing.append(f"{where}: {name}")
            continue
        named = {k.arg for k in call.keywords if k.arg and k.arg not in NOT_FIELDS}
        if named - documented[name]:
            fields.append(f"{where}: {name} has {sorted(named - documented[name])}")
    assert missing == [], "not in docs/logs.md: " + "; ".join(missing)
    assert fields == [], "fields missing from docs/logs.md: " + "; ".join(fields)


def test_docs_list_no_event_the_code_does_not_log():
    used = {call.args[1].value for _, call in _calls()}
    assert set(_documented()) - used == set()


def test_no_module_logs_except_through_event():
    """A bare `log.warning("...")` would give CLS a line with no event name and no fields."""
    direct = []
    for path in _product_modules():
        if path.name == "logs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in LOG_METHODS and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("log", "logger", "LOG", "_log")):
                direct.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert direct == []


def test_a_line_carries_the_event_and_its_fields_and_no_field_replaces_the_event():
    stream = io.StringIO()
    logger = logging.getLogger("cosguard.test-events")
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logs.event(logger, "verdict", logging.WARNING, outcome="quarantined", virus_count=1, event="forged")
    logger.info("a stray line")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (first["event"], first["message"], first["level"]) == ("verdict", "verdict", "WARNING")
    assert (first["outcome"], first["virus_count"]) == ("quarantined", 1)
    assert second["event"] == logs.OTHER_EVENT
