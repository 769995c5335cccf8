"""One description for the cloud and the local runtime: the COS trigger, prefix and environment
deploy/deploy.py gives SCF are those `cosguard local --description` wires locally; and
`cosguard verify --deployment` checks a deployment (the local cloud for COS and the function URL,
a fake SCF for SCF's state) without uploading anything."""
from __future__ import annotations

import json

import pytest

from cosguard.cli import verify_deploy
from cosguard.local.deployment import LocalDeployment
from cosguard.local.description import DescriptionError, read_description
from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime
from deploy_helpers import ROOT, load_script
from fake_scf import FakeScf
from test_deploy_script import LAYER_SHA, LAYER_ZIP


@pytest.fixture(scope="module")
def deploy_script():
    return load_script("deploy/deploy.py", "cosguard_deploy_script_2")


@pytest.fixture
def local(example_env, tmp_path):
    with LocalDeployment.from_description(ROOT, example_env, scan_delay=0.05,
                                          log_stream=open(tmp_path / "functions.log", "w")) as deployment:
        yield deployment


def test_local_wiring_is_the_deployed_wiring(deploy_script, app, example_env):
    wiring = read_description(ROOT, example_env)
    plan = deploy_script.make_plan(app, example_env)
    scan = plan.functions["scan-on-upload"]
    [cos] = scan.triggers
    assert cos.name == f"{wiring.buckets[0]}.cos.{wiring.region}.myqcloud.com"
    assert json.loads(cos.desc)["filter"]["Prefix"] == wiring.trigger_prefix == example_env["DEPLOY_INTAKE_PREFIX"]
    deployed_env = {k: v for k, v in scan.environment.items() if k != "COSGUARD_CALLBACK_URL"}
    assert deployed_env == {k: v for k, v in wiring.env.items() if v}
    assert wiring.quarantine_bucket == example_env["COSGUARD_QUARANTINE_BUCKET"]


def test_a_description_without_one_scan_trigger_is_refused(tmp_path, example_env):
    with pytest.raises(DescriptionError, match="preflight"):
        read_description(tmp_path, example_env)


def test_the_local_runtime_scans_only_what_the_described_trigger_fires_on(local, example_env):
    cos = local.cloud.client("cos")
    intake, prefix = "intake-1250000000", example_env["DEPLOY_INTAKE_PREFIX"]
    cos.put_object(Bucket=intake, Key=prefix + "bad.com", Body=eicar())
    cos.put_object(Bucket=intake, Key=prefix + "good.txt", Body=clean_text())
    cos.put_object(Bucket=intake, Key="elsewhere/bad.com", Body=eicar())
    assert local.wait_idle(30)
    quarantined = cos.list_objects(Bucket=example_env["COSGUARD_QUARANTINE_BUCKET"],
                                   Prefix="quarantine/").get("Contents") or []
    keys = [o["Key"] for o in quarantined]  # <prefix><source bucket>/<job id>/<original key>
    assert len(keys) == 1 and keys[0].startswith(f"quarantine/{intake}/") and keys[0].endswith("/" + prefix + "bad.com")
    tags = cos.get_object_tagging(Bucket=intake, Key=prefix + "good.txt")["TagSet"]["Tag"]
    assert {"Key": "cosguard-status", "Value": "clean"} in tags
    # outside the trigger's prefix nothing fires: two invocations, the object stays untagged
    assert len(local.scf.scan.invocations) == 2
    assert not (cos.get_object_tagging(Bucket=intake, Key="elsewhere/bad.com").get("TagSet") or {}).get("Tag")
    assert local.env["COSGUARD_INCLUDE_PREFIXES"] == prefix


# -- cosguard verify --deployment --------------------------------------------------------------
def deploy_to(deploy_script, app, env, local, tmp_path):
    """SCF (fake) deployed from the description with `env`; the function URL is the local runtime's."""
    fake = FakeScf()
    plan = deploy_script.make_plan(app, env)
    rt = Runtime.from_env(local.env, require_callback_url=False)
    deploy_script.prepare_state(plan.functions["scan-on-upload"].environment, lambda settings: rt.gateway,
                                log=lambda line: None)
    record = deploy_script.Deployer(fake, sleep=lambda s: None, log=lambda line: None).deploy(
        plan, LAYER_ZIP, LAYER_SHA, callback_url=local.scf.callback_url)
    record.update(intake_bucket=env["DEPLOY_INTAKE_BUCKET"], intake_prefix=env["DEPLOY_INTAKE_PREFIX"])
    path = tmp_path / "deployed-prod.json"
    path.write_text(json.dumps(record))
    manifest = tmp_path / "cosguard-layer.json"
    manifest.write_text(json.dumps({"sha256": LAYER_SHA}))
    args = type("Args", (), {"deployment": str(path), "layer_manifest": str(manifest), "bucket": "intake-1250000000"})
    return fake, record, args, Runtime.from_env(local.env, require_callback_url=False)


@pytest.fixture
def deployed(deploy_script, app, example_env, local, tmp_path):
    return deploy_to(deploy_script, app, example_env, local, tmp_path)


def outcome(checks):
    return {c.name: c.ok for c in checks}


def test_a_good_deployment_passes_every_check(deployed):
    fake, record, args, rt = deployed
    checks = verify_deploy.run_checks(args, rt, api=fake)
    assert all(c.ok for c in checks), [vars(c) for c in checks]
    assert len(checks) == 7


def test_a_url_that_lets_anyone_in_fails(deployed):
    fake, record, args, rt = deployed
    answers = type("Answer", (), {"status_code": 200})
    checks = verify_deploy.run_checks(args, rt, api=fake, post=lambda *a, **k: answers)
    assert outcome(checks)["function URL refuses an unauthenticated POST"] is False


def test_a_widened_trigger_fails(deployed):
    fake, record, args, rt = deployed
    scan = record["functions"]["scan-on-upload"]
    [trigger] = fake.functions[scan]["_triggers"]
    trigger["TriggerDesc"] = json.dumps({"event": "cos:ObjectCreated:*", "filter": {"Prefix": "", "Suffix": ""}})
    [check] = [c for c in verify_deploy.run_checks(args, rt, api=fake) if c.name == "scan trigger filter"]
    assert not check.ok and "no prefix filter" in check.detail


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])   # COS ignores forbid-overwrite on both
def test_a_versioned_ledger_bucket_fails(deployed, local, status):
    fake, record, args, rt = deployed
    local.cloud.client("cos").put_bucket_versioning(Bucket="quarantine-1250000000", Status="Enabled")
    if status == "Suspended":
        local.cloud.client("cos").put_bucket_versioning(Bucket="quarantine-1250000000", Status="Suspended")
    checks = verify_deploy.run_checks(args, rt, api=fake)
    assert outcome(checks) == {"function URL refuses an unauthenticated POST": True, "scan trigger filter": True,
                               "CI bound to the intake bucket": True, "ledger bucket unversioned": False, "state location is this deployment's": True,
                               "ledger lifecycle rules": True, "functions run the layer just built": True}


def test_a_stale_layer_fails(deployed, tmp_path):
    fake, record, args, rt = deployed
    (tmp_path / "cosguard-layer.json").write_text(json.dumps({"sha256": "f" * 64}))
    checks = verify_deploy.run_checks(args, rt, api=fake)
    assert outcome(checks)["functions run the layer just built"] is False
    # a function left on another version fails too, even with the right build
    (tmp_path / "cosguard-layer.json").write_text(json.dumps({"sha256": LAYER_SHA}))
    fake.functions[record["functions"]["reconcile-pending"]]["Layers"] = [
        {"LayerName": "cosguard-prod", "LayerVersion": 7}]
    assert outcome(verify_deploy.run_checks(args, rt, api=fake))["functions run the layer just built"] is False


def test_the_command_runs_the_checks_without_uploading(deployed, local, tmp_path, monkeypatch, capsys):
    from cosguard.cli import main as cli
    fake, record, args, rt = deployed
    monkeypatch.setattr(verify_deploy, "TccliScfApi", lambda region: fake)
    env_file = tmp_path / "local.env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in local.env.items()))
    code = cli(["verify", "--bucket", "intake-1250000000", "--env-file", str(env_file), "--json",
                "--deployment", args.deployment, "--layer-manifest", args.layer_manifest, "--no-upload"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True and len(report["deployment"]) == 7
    assert local.cloud.client("cos").list_objects(Bucket="intake-1250000000").get("Contents") is None
    fake.functions[record["functions"]["scan-on-upload"]]["_triggers"].clear()
    code = cli(["verify", "--bucket", "intake-1250000000", "--env-file", str(env_file), "--json",
                "--deployment", args.deployment, "--layer-manifest", args.layer_manifest, "--no-upload"])
    assert code == 1 and json.loads(capsys.readouterr().out)["ok"] is False


@pytest.mark.parametrize("unbound", [False, True], ids=["bound", "unbound"])
def test_the_command_checks_ci_binding_of_the_intake_bucket(deployed, local, tmp_path, monkeypatch, capsys, unbound):
    """`GET /` on the CI host answers CIStatus (doc 460/97481): an unbound intake bucket fails the
    deployment check with a one-line reason naming the bucket."""
    from cosguard.cli import main as cli
    fake, record, args, rt = deployed
    monkeypatch.setattr(verify_deploy, "TccliScfApi", lambda region: fake)
    if unbound:
        local.cloud.ci.faults.unbound_buckets.add("intake-1250000000")
    env_file = tmp_path / "local.env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in local.env.items()))
    command = ["verify", "--bucket", "intake-1250000000", "--env-file", str(env_file),
               "--deployment", args.deployment, "--layer-manifest", args.layer_manifest, "--no-upload"]
    code = cli(command + ["--json"])
    report = json.loads(capsys.readouterr().out)
    [check] = [c for c in report["deployment"] if c["name"] == "CI bound to the intake bucket"]
    assert (code, report["ok"], check["ok"]) == ((1, False, False) if unbound else (0, True, True))
    if unbound:
        assert check["detail"] == ("intake-1250000000: CIStatus 'off', not bound to CI: "
                                   "bind it in the CI console")
        assert "\n" not in check["detail"]
        assert [c["name"] for c in report["deployment"] if not c["ok"]] == ["CI bound to the intake bucket"]
        assert cli(command) == 1
        [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CI bound")]
        assert " NO " in row and "intake-1250000000" in row
    else:
        assert check["detail"] == "intake-1250000000: CIStatus on"


def test_cosguard_local_refuses_a_folder_that_is_no_description(tmp_path, capsys):
    from cosguard.cli import main as cli
    assert cli(["local", "--description", str(tmp_path)]) == 2
    assert "not a cosguard checkout" in capsys.readouterr().err


def test_the_deploy_script_prints_its_plan_without_calling_anything(deploy_script, example_env, tmp_path,
                                                                    monkeypatch, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in dict(example_env, COSGUARD_CALLBACK_URL="").items()))
    monkeypatch.setattr(deploy_script.preflight, "check", lambda *a, **k: [])   # no layer built here
    assert deploy_script.main(["--env", str(env_file), "--dry-run"], api=object()) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["functions"]["scan-on-upload"]["triggers"][0]["type"] == "cos"
    assert plan["layer"] == "cosguard-prod"


def test_missing_lifecycle_rules_or_a_foreign_owner_fail(deployed, local):
    fake, record, args, rt = deployed
    cos = local.cloud.client("cos")
    cos.delete_bucket_lifecycle(Bucket="quarantine-1250000000")
    checks = {c.name: c for c in verify_deploy.run_checks(args, rt, api=fake)}
    assert not checks["ledger lifecycle rules"].ok and "run deploy/deploy.py" in checks["ledger lifecycle rules"].detail
    assert checks["state location is this deployment's"].ok
    cos.delete_object(Bucket="quarantine-1250000000", Key=".cosguard/cosguard-prod/owner.json")
    check = {c.name: c for c in verify_deploy.run_checks(args, rt, api=fake)}["state location is this deployment's"]
    assert not check.ok and "claimed by no deployment" in check.detail


def test_every_intake_bucket_has_its_trigger_checked(deploy_script, app, example_env, tmp_path):
    env = dict(example_env, DEPLOY_INTAKE_BUCKET="intake-1250000000,uploads-1250000000")
    with LocalDeployment.from_description(ROOT, env, scan_delay=0.05,
                                          log_stream=open(tmp_path / "functions.log", "w")) as local:
        fake, record, args, rt = deploy_to(deploy_script, app, env, local, tmp_path)
        checks = verify_deploy.run_checks(args, rt, api=fake)
        filters = [c for c in checks if c.name == "scan trigger filter"]
        assert [c.ok for c in filters] == [True, True] and "uploads-1250000000" in filters[1].detail
        assert all(c.ok for c in checks), [vars(c) for c in checks]
        scan = record["functions"]["scan-on-upload"]
        fake.functions[scan]["_triggers"] = [t for t in fake.functions[scan]["_triggers"]
                                             if not t["TriggerName"].startswith("uploads-")]
        [missing] = [c for c in verify_deploy.run_checks(args, rt, api=fake)
                     if c.name == "scan trigger filter" and not c.ok]
        assert "0 COS triggers on uploads-1250000000" in missing.detail
