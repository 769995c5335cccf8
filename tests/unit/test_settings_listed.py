"""Every place that lists settings agrees with their one declaration (infra/settings_spec.SETTINGS).

The three sls-*/serverless.yml environment blocks, `.env.example` and the table in
docs/configuration.md each list every declared setting (with its default where they show one) and
nothing undeclared. Settings itself has one field per declared setting.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cosguard.infra.config import Settings
from cosguard.infra.settings_spec import BY_ENV, FUNCTIONS, SETTINGS
from cosguard.triggers.events import UPLOAD_EVENT

ROOT = Path(__file__).resolve().parents[2]
NAME_RE = re.compile(r"`((?:COSGUARD|TENCENTCLOUD)_[A-Z_]+)`")


def _environment(function: str) -> dict:
    template = yaml.safe_load((ROOT / f"sls-{function}" / "serverless.yml").read_text())
    return template["inputs"]["environment"]["variables"]


def _env_example() -> dict:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs if not name.startswith("DEPLOY_")}


def _docs_table() -> dict:
    """{variable: its default cell} from docs/configuration.md's table."""
    defaults = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        names = NAME_RE.findall(cells[0])
        parts = [part.strip() for part in cells[1].split(", ")]
        for number, name in enumerate(names):
            defaults[name] = parts[number] if len(parts) == len(names) else cells[1]
    return defaults


def test_settings_has_one_field_per_declared_setting():
    declared = {s.field for s in SETTINGS if s.field}
    assert declared == set(Settings._fields) - {"max_size"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_template_sets_exactly_the_declared_settings(function):
    environment = _environment(function)
    wanted = {s.env: "${env:%s}" % (s.source or s.env) for s in SETTINGS if function in s.functions}
    assert environment == wanted


def test_env_example_lists_every_deployed_setting_with_its_default():
    listed = _env_example()
    wanted = {s.env: s.example_text for s in SETTINGS if s.in_env_example}
    assert listed == wanted


def test_docs_table_lists_every_setting_with_its_default():
    table = _docs_table()
    assert set(table) == set(BY_ENV), "undeclared or undocumented: " + ", ".join(set(table) ^ set(BY_ENV))
    for setting in SETTINGS:
        cell = table[setting.env]
        if setting.default_text:
            assert f"`{setting.default_text}`" in cell, (setting.env, cell)
        else:
            assert cell, setting.env   # e.g. "required", "unset", "set by SCF"


def test_the_upload_trigger_fires_on_the_one_upload_event_type():
    template = yaml.safe_load((ROOT / "sls-scan_on_upload" / "serverless.yml").read_text())
    assert [e["cos"]["parameters"]["events"] for e in template["inputs"]["events"]] == [UPLOAD_EVENT]
    sources = [p for p in (ROOT / "src").rglob("*.py") if "local" not in p.parts] + list((ROOT / "deploy").glob("*.py"))
    literal = [str(p.relative_to(ROOT)) for p in sources if UPLOAD_EVENT in p.read_text()]
    assert literal == ["src/cosguard/triggers/events.py"]
