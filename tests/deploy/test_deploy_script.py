"""deploy/deploy.py against a fake SCF that enforces tccli's schema and keeps SCF's state: the first
deploy creates everything and hands the function URL on; a re-run creates nothing; a changed
description is applied without a second URL or a duplicate trigger."""
from __future__ import annotations

import hashlib
import json

import pytest

from deploy_helpers import load_script
from fake_scf import FakeScf

pytest.importorskip("tccli", reason="the fake checks calls against tccli's schema")


@pytest.fixture(scope="module")
def deploy_script():
    return load_script("deploy/deploy.py", "cosguard_deploy_script")


@pytest.fixture
def env(example_env):
    return dict(example_env, COSGUARD_CALLBACK_URL="")   # unknown before the first deploy


LAYER_ZIP = b"PK\x05\x06" + b"\x00" * 18   # an empty zip: the fake never opens it
LAYER_SHA = hashlib.sha256(LAYER_ZIP).hexdigest()


def deploy(deploy_script, app, env, fake, sha=LAYER_SHA):
    plan = deploy_script.make_plan(app, env)
    deployer = deploy_script.Deployer(fake, sleep=lambda s: None, log=lambda line: None)
    return plan, deployer.deploy(plan, LAYER_ZIP, sha)


def triggers(fake, name):
    return [{k: t[k] for k in ("Type", "TriggerName", "TriggerDesc", "Qualifier", "Enable")}
            for t in fake.functions[name]["_triggers"]]


def env_of(fake, name):
    return {v["Key"]: v["Value"] for v in fake.functions[name]["Environment"]["Variables"]}


def test_first_deploy_creates_the_url_and_hands_it_to_the_scanning_functions(deploy_script, app, env):
    fake = FakeScf()
    plan, record = deploy(deploy_script, app, env, fake)
    names = record["functions"]
    assert names == {"scan-on-upload": "scan-on-upload-prod-cosguard",
                     "quarantine-callback": "quarantine-callback-prod-cosguard",
                     "reconcile-pending": "reconcile-pending-prod-cosguard"}
    [url_trigger] = triggers(fake, names["quarantine-callback"])
    assert url_trigger["Type"] == "http" and url_trigger["Qualifier"] == "$DEFAULT"
    assert json.loads(url_trigger["TriggerDesc"]) == {
        "AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}}
    url = record["callback_url"]
    assert url == "https://1250000000-url0001.ap-guangzhou.tencentscf.com"
    for instance in ("scan-on-upload", "reconcile-pending"):
        assert env_of(fake, names[instance])["COSGUARD_CALLBACK_URL"] == url
    assert "COSGUARD_CALLBACK_URL" not in env_of(fake, names["quarantine-callback"])
    [cos] = triggers(fake, names["scan-on-upload"])
    assert cos["TriggerName"] == "intake-1250000000.cos.ap-guangzhou.myqcloud.com"
    assert json.loads(cos["TriggerDesc"]) == {"event": "cos:ObjectCreated:*",
                                              "filter": {"Prefix": "incoming/", "Suffix": ""}}
    assert cos["Enable"] == "OPEN"
    [timer] = triggers(fake, names["reconcile-pending"])
    assert (timer["TriggerName"], timer["TriggerDesc"]) == ("cosguard-reconcile", "0 */10 * * * * *")
    # one layer version, carrying the build's hash; every function uses it
    [layer] = fake.layers["cosguard-prod"]
    assert f"sha256:{LAYER_SHA}" in layer["Description"] and layer["CompatibleRuntimes"] == ["Python3.9", "Python3.10"]
    for name in names.values():
        function = fake.functions[name]
        assert function["Layers"] == [{"LayerName": "cosguard-prod", "LayerVersion": 1}]
        assert (function["Runtime"], function["Handler"], function["Role"]) == \
            ("Python3.9", "index.main_handler", "cosguard-scf-role")
    # the callback exists (with its URL) before anything that calls it back is configured
    order = [(a, p.get("FunctionName")) for a, p in fake.calls if a in ("CreateFunction", "CreateTrigger")]
    assert order.index(("CreateTrigger", names["quarantine-callback"])) < \
        order.index(("CreateFunction", names["scan-on-upload"]))


def test_a_rerun_creates_nothing_and_keeps_the_url(deploy_script, app, env):
    fake = FakeScf()
    _, first = deploy(deploy_script, app, env, fake)
    fake.calls.clear()
    _, second = deploy(deploy_script, app, dict(env, COSGUARD_CALLBACK_URL=first["callback_url"]), fake)
    assert second["callback_url"] == first["callback_url"]
    assert second["layer"]["version"] == 1
    created = [a for a in fake.mutations() if a.startswith(("Create", "Publish", "Delete"))]
    assert created == [], created
    for name in first["functions"].values():
        assert len(fake.functions[name]["_triggers"]) == 1


def test_a_new_build_publishes_one_new_layer_version(deploy_script, app, env):
    fake = FakeScf()
    deploy(deploy_script, app, env, fake)
    _, record = deploy(deploy_script, app, env, fake, sha="0" * 64)
    assert record["layer"]["version"] == 2 and len(fake.layers["cosguard-prod"]) == 2
    for name in record["functions"].values():
        assert fake.functions[name]["Layers"] == [{"LayerName": "cosguard-prod", "LayerVersion": 2}]


def test_a_changed_description_is_applied_without_duplicates(deploy_script, app, env):
    fake = FakeScf()
    _, first = deploy(deploy_script, app, env, fake)
    changed = dict(env, DEPLOY_INTAKE_PREFIX="uploads/", DEPLOY_RECONCILE_CRON="0 */5 * * * * *")
    fake.calls.clear()
    _, second = deploy(deploy_script, app, changed, fake)
    names = second["functions"]
    [cos] = triggers(fake, names["scan-on-upload"])
    assert json.loads(cos["TriggerDesc"])["filter"]["Prefix"] == "uploads/"
    [timer] = triggers(fake, names["reconcile-pending"])
    assert timer["TriggerDesc"] == "0 */5 * * * * *"
    assert env_of(fake, names["scan-on-upload"])["COSGUARD_INCLUDE_PREFIXES"] == "uploads/"
    # COS triggers cannot be updated: deleted (with their description) and created again
    trigger_calls = [(a, p["Type"]) for a, p in fake.calls if a.endswith("Trigger")]
    assert sorted(trigger_calls) == [("CreateTrigger", "cos"), ("DeleteTrigger", "cos"), ("UpdateTrigger", "timer")]
    assert trigger_calls.index(("DeleteTrigger", "cos")) < trigger_calls.index(("CreateTrigger", "cos"))
    assert second["callback_url"] == first["callback_url"]
    assert len(triggers(fake, names["quarantine-callback"])) == 1


def test_a_trigger_the_description_no_longer_names_is_removed(deploy_script, app, env):
    fake = FakeScf()
    _, record = deploy(deploy_script, app, env, fake)
    scan = record["functions"]["scan-on-upload"]
    fake.call("CreateTrigger", {"FunctionName": scan, "TriggerName": "old-1250000000.cos.ap-guangzhou.myqcloud.com",
                                "Type": "cos", "Qualifier": "$DEFAULT", "Enable": "OPEN",
                                "TriggerDesc": json.dumps({"event": "cos:ObjectCreated:*",
                                                           "filter": {"Prefix": "", "Suffix": ""}})})
    deploy(deploy_script, app, env, fake)
    assert [t["TriggerName"] for t in triggers(fake, scan)] == ["intake-1250000000.cos.ap-guangzhou.myqcloud.com"]


def test_an_existing_url_is_found_where_scf_puts_it_or_the_deploy_says_what_to_do(deploy_script, app, env):
    fake = FakeScf(url_member="SomeOtherName")
    _, record = deploy(deploy_script, app, env, fake)
    assert record["callback_url"].endswith(".tencentscf.com")   # the only https URL in the description
    empty = FakeScf()
    empty._read_back = lambda t, orig=empty._read_back: dict(orig(t), TriggerDesc="{}") if t["Type"] == "http" \
        else orig(t)
    with pytest.raises(deploy_script.DeployError, match="--callback-url"):
        deploy(deploy_script, app, env, empty)


def test_the_command_writes_the_url_into_env_and_a_record(deploy_script, env, tmp_path, monkeypatch, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in env.items()))
    monkeypatch.setattr(deploy_script, "layer_build", lambda layer: (LAYER_ZIP, LAYER_SHA))
    monkeypatch.setattr(deploy_script.preflight, "check", lambda *a, **k: [])   # no layer built here
    fake = FakeScf()
    record_file = tmp_path / "deployed.json"
    assert deploy_script.main(["--env", str(env_file), "--record", str(record_file), "--skip-state"], api=fake) == 0
    record = json.loads(record_file.read_text())
    assert f"COSGUARD_CALLBACK_URL={record['callback_url']}\n" in env_file.read_text()
    assert record["intake_prefix"] == "incoming/" and record["layer"]["sha256"] == LAYER_SHA
    # the functions' settings for the operator's commands: what scan-on-upload got, owner-only
    operator_env = record_file.with_suffix(".env")
    assert operator_env.stat().st_mode & 0o077 == 0
    lines = dict(line.split("=", 1) for line in operator_env.read_text().splitlines())
    assert lines == env_of(fake, record["functions"]["scan-on-upload"])
    # and again: the same URL, nothing new
    before = len(fake.mutations())
    assert deploy_script.main(["--env", str(env_file), "--record", str(record_file), "--skip-state"], api=fake) == 0
    assert not [a for a in fake.mutations()[before:] if a.startswith(("Create", "Publish"))]


def test_the_layer_build_must_match_its_manifest(deploy_script, tmp_path):
    tree = tmp_path / "cosguard-layer"
    (tmp_path / "cosguard-layer.zip").write_bytes(LAYER_ZIP)
    (tmp_path / "cosguard-layer.json").write_text(json.dumps({"sha256": LAYER_SHA}))
    layer = deploy_script.LayerPlan("cosguard-prod", ["Python3.9"], tree, "x")
    assert deploy_script.layer_build(layer) == (LAYER_ZIP, LAYER_SHA)
    (tmp_path / "cosguard-layer.zip").write_bytes(LAYER_ZIP + b"x")
    with pytest.raises(deploy_script.DeployError, match="rebuild"):
        deploy_script.layer_build(layer)


@pytest.mark.parametrize("overrides, expected", [
    ({"DEPLOY_RECONCILE_CRON": "*/10 * * * *"}, "5 fields"),
    ({"DEPLOY_INTAKE_PREFIX": ""}, "non-empty prefix"),
])
def test_a_trigger_scf_or_cosguard_would_refuse_stops_the_plan(deploy_script, app, env, overrides, expected):
    with pytest.raises(deploy_script.DeployError, match=expected):
        deploy_script.make_plan(app, dict(env, **overrides))
