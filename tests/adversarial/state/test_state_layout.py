"""Layouts that put cosguard's state where uploaders can write are called out before deployment
(deploy/preflight.py) and against the live buckets (`cosguard verify`, with versioning)."""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

from cosguard.domain.layout import layout_warnings
from cosguard.infra.config import Settings

ROOT = pathlib.Path(__file__).resolve().parents[3]
FILLS = {"COSGUARD_CALLBACK_TOKEN": "layout-test-token-0123456789abcdef",
         "COSGUARD_CALLBACK_URL": "https://1250000000-abcd1234.ap-guangzhou.tencentscf.com/"}


@pytest.fixture(scope="module")
def preflight():
    spec = importlib.util.spec_from_file_location("cosguard_state_preflight", ROOT / "deploy" / "preflight.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example_env(preflight):
    return dict(preflight.parse_dotenv((ROOT / ".env.example").read_text("utf-8")), **FILLS)


def test_preflight_warns_about_state_in_the_intake_bucket(preflight, example_env):
    app = preflight.load_app(ROOT)
    separate = preflight.warnings(app, example_env)
    assert not any("in the intake bucket" in w for w in separate)
    assert any("versioning" in w for w in separate)  # preflight cannot see it, and says so
    same = preflight.warnings(app, dict(example_env, COSGUARD_QUARANTINE_BUCKET="", COSGUARD_STATE_BUCKET=""))
    assert any("the ledger (.cosguard/) is in the intake bucket" in w for w in same), same
    assert any("quarantine (quarantine/) is in the intake bucket" in w for w in same), same
    # warnings, not problems: the layout works, its documents are sealed
    assert preflight.check(app, dict(example_env, COSGUARD_QUARANTINE_BUCKET=""), require_layer_build=False) == []


def test_layout_warnings_name_each_risk_once_per_bucket():
    settings = Settings.from_env({"TENCENTCLOUD_SECRETID": "x", "TENCENTCLOUD_SECRETKEY": "y",
                                  "COSGUARD_REGION": "ap-guangzhou", "COSGUARD_BUCKETS": "a-1250000000,b-1250000000",
                                  "COSGUARD_STATE_BUCKET": "state-1250000000", **FILLS})
    warnings = layout_warnings(settings, {"a-1250000000": "enabled", "b-1250000000": "suspended"})
    assert [w.split(":")[0] for w in warnings] == ["a-1250000000", "b-1250000000", "b-1250000000"]
    assert "quarantine" in warnings[0] and "versioning is suspended" in warnings[2]
    assert layout_warnings(settings, None) == warnings[:2]


def test_verify_warns_about_an_unversioned_intake_and_same_bucket_state(tmp_path, capsys):
    import json

    from cosguard.cli import main as cli
    from cosguard.local.deployment import LocalDeployment

    with LocalDeployment(["layout-1250000000"], scan_delay=0.05, log_stream=open(tmp_path / "f.log", "w")) as local:
        path = tmp_path / "deploy.env"
        env = dict(local.env, COSGUARD_QUARANTINE_BUCKET="", COSGUARD_STATE_BUCKET="")
        path.write_text("\n".join(f"{k}={v}" for k, v in env.items()))
        capsys.readouterr()
        cli(["verify", "--bucket", "layout-1250000000", "--env-file", str(path), "--json", "--timeout", "1"])
        report = json.loads(capsys.readouterr().out)
    warnings = report["warnings"]
    assert any("versioning is off" in w for w in warnings), warnings
    assert any("ledger" in w and "intake bucket" in w for w in warnings), warnings


def test_preflight_warns_when_uploaders_can_write_the_clean_destination(preflight, example_env):
    app = preflight.load_app(ROOT)
    found = preflight.warnings(app, dict(example_env, COSGUARD_CLEAN_DESTINATION="/released/"))
    assert any("clean destination" in w and "uploaders can write" in w for w in found), found
    assert not any("clean destination" in w for w in preflight.warnings(app, example_env))
