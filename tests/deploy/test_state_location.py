"""Each deployment's state location is its own, and the deploy sets the ledger's retention: the
deploy (a fake SCF, the local cloud's COS) claims `<prefix>owner.json` for `<app>-<stage>` and
puts the lifecycle rules before any function changes; a second deployment aimed at the same
location is refused with one line and SCF is not touched. One description serves N intake
buckets: one COS trigger each, and the local runtime scans uploads in every one."""
from __future__ import annotations

import json

import pytest
from qcloud_cos import CosServiceError

from cosguard.domain.seal import Sealer
from cosguard.local.deployment import LocalDeployment
from cosguard.local.description import read_description
from cosguard.local.samples import clean_text, eicar
from cosguard.runtime import Runtime
from deploy_helpers import ROOT, load_script
from fake_scf import FakeScf
from test_deploy_script import LAYER_SHA, LAYER_ZIP

STATE = "quarantine-1250000000"   # .env.example: the ledger lives in the quarantine bucket


@pytest.fixture(scope="module")
def deploy_script():
    return load_script("deploy/deploy.py", "cosguard_deploy_script_state")


@pytest.fixture
def local(example_env, tmp_path):
    with LocalDeployment.from_description(ROOT, example_env, scan_delay=0.05,
                                          log_stream=open(tmp_path / "functions.log", "w")) as deployment:
        yield deployment


@pytest.fixture
def run_deploy(deploy_script, example_env, local, tmp_path, monkeypatch, capsys):
    """deploy/deploy.py's command with `overrides` in .env: (exit code, stderr, the fake SCF)."""
    monkeypatch.setattr(deploy_script, "layer_build", lambda layer: (LAYER_ZIP, LAYER_SHA))
    monkeypatch.setattr(deploy_script.preflight, "check", lambda *a, **k: [])   # no layer built here
    gateway = Runtime.from_env(local.env, require_callback_url=False).gateway

    def run(*argv: str, **overrides: str):
        env_file = tmp_path / ".env"
        env_file.write_text("".join(f'{k}="{v}"\n' for k, v in dict(example_env, **overrides).items()))
        fake = FakeScf()
        capsys.readouterr()
        code = deploy_script.main(["--env", str(env_file), "--record", str(tmp_path / "deployed.json"),
                                   "--callback-url", local.scf.callback_url, *argv],
                                  api=fake, cos=lambda settings: gateway)
        return code, capsys.readouterr().err, fake
    return run


def rules(local):
    return local.cloud.client("cos").get_bucket_lifecycle(Bucket=STATE)["Rule"]


def test_the_deploy_claims_its_own_location_and_sets_the_ledgers_retention(run_deploy, local):
    code, err, fake = run_deploy()
    assert code == 0, err
    cos = local.cloud.client("cos")
    marker = json.loads(cos.get_object(Bucket=STATE, Key=".cosguard/cosguard-prod/owner.json")["Body"].get_raw_stream().read())
    assert marker["deployment"] == "cosguard-prod"
    expiry = {r["Filter"]["Prefix"]: int(r["Expiration"]["Days"]) for r in rules(local) if "Expiration" in r}
    assert expiry == {".cosguard/cosguard-prod/actions/": 1, ".cosguard/cosguard-prod/closed/": 180,
                      ".cosguard/cosguard-prod/index/": 180, ".cosguard/cosguard-prod/removed/": 180,
                      ".cosguard/cosguard-prod/losses/": 180, ".cosguard/cosguard-prod/claims/": 365,
                      ".cosguard/cosguard-prod/rescan-index/": 365, ".cosguard/cosguard-prod/rescan-budget/": 2,
                      ".cosguard/cosguard-prod/digests/": 2,
                      ".cosguard/cosguard-prod/promoting/": 1, ".cosguard/cosguard-prod/promoted/": 180}
    # the functions got the same location: the derived prefix is theirs too
    scan_env = {v["Key"]: v["Value"] for v in fake.functions["scan-on-upload-prod-cosguard"]["Environment"]["Variables"]}
    assert scan_env["COSGUARD_DEPLOYMENT"] == "cosguard-prod" and "COSGUARD_STATE_PREFIX" not in scan_env


def test_a_rerun_changes_nothing_and_other_rules_of_the_bucket_are_kept(run_deploy, local):
    cos = local.cloud.client("cos")
    theirs = {"ID": "someone-elses", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    cos.put_bucket_lifecycle(Bucket=STATE, LifecycleConfiguration={"Rule": [theirs]})
    assert run_deploy()[0] == 0
    first = rules(local)
    assert "someone-elses" in {r["ID"] for r in first}
    assert run_deploy()[0] == 0
    assert rules(local) == first
    # a changed retention replaces cosguard's rules only; 0 keeps claims/ forever (no rule)
    assert run_deploy(COSGUARD_RETAIN_CLOSED_DAYS="30", COSGUARD_RETAIN_CLAIMS_DAYS="0")[0] == 0
    expiry = {r["Filter"]["Prefix"]: int(r["Expiration"]["Days"]) for r in rules(local) if "Expiration" in r}
    assert expiry[".cosguard/cosguard-prod/closed/"] == 30 and expiry["logs/"] == 30
    assert ".cosguard/cosguard-prod/claims/" not in expiry


def test_another_stage_gets_its_own_location(run_deploy, local):
    assert run_deploy()[0] == 0
    code, err, _ = run_deploy("--stage", "dev")
    assert code == 0, err
    cos = local.cloud.client("cos")
    assert cos.object_exists(Bucket=STATE, Key=".cosguard/cosguard-dev/owner.json")
    prefixes = {r["Filter"]["Prefix"] for r in rules(local)}
    assert {".cosguard/cosguard-prod/closed/", ".cosguard/cosguard-dev/closed/"} <= prefixes


def test_a_location_another_deployment_owns_is_refused_in_one_line_before_scf_is_touched(run_deploy):
    assert run_deploy(COSGUARD_STATE_PREFIX=".cosguard/shared/")[0] == 0
    code, err, fake = run_deploy("--stage", "dev", COSGUARD_STATE_PREFIX=".cosguard/shared/")
    assert code == 1
    assert err.strip().splitlines() == [
        "problem: state location quarantine-1250000000/.cosguard/shared/ belongs to deployment 'cosguard-prod', "
        "not 'cosguard-dev': give this deployment its own COSGUARD_STATE_PREFIX (or COSGUARD_STATE_BUCKET)"]
    assert fake.mutations() == []


def test_a_marker_sealed_under_another_key_is_refused(run_deploy, local):
    key = ".cosguard/cosguard-prod/owner.json"
    foreign = Sealer(b"another deployment's key").seal(STATE, key, {"deployment": "cosguard-prod"})
    local.cloud.client("cos").put_object(Bucket=STATE, Key=key, Body=json.dumps(foreign).encode())
    code, err, fake = run_deploy()
    assert code == 1 and "holds an owner marker this deployment cannot verify" in err
    assert len(err.strip().splitlines()) == 1 and fake.mutations() == []


def test_a_ledger_from_before_per_deployment_prefixes_is_not_left_behind(run_deploy, local):
    local.cloud.client("cos").put_object(Bucket=STATE, Key=".cosguard/claims/x.json", Body=b"{}")
    code, err, _ = run_deploy()
    assert code == 1 and "set COSGUARD_STATE_PREFIX=.cosguard/ to keep using it" in err
    assert run_deploy(COSGUARD_STATE_PREFIX=".cosguard/")[0] == 0   # the operator keeps the old ledger


def test_without_the_operators_keys_the_deploy_says_what_to_set(deploy_script, example_env, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(deploy_script.preflight, "check", lambda *a, **k: [])
    for name in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f'{k}="{v}"\n' for k, v in example_env.items()))
    fake = FakeScf()
    assert deploy_script.main(["--env", str(env_file)], api=fake) == 1
    assert "set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY" in capsys.readouterr().err
    assert fake.mutations() == []


# -- many intake buckets from one description ----------------------------------------------------
TWO = "intake-1250000000,uploads-1250000000"


def test_one_description_serves_n_intake_buckets(deploy_script, app, example_env):
    env = dict(example_env, DEPLOY_INTAKE_BUCKET=TWO)
    plan = deploy_script.make_plan(app, env)
    scan = plan.functions["scan-on-upload"]
    assert [t.name for t in scan.triggers] == [f"{b}.cos.ap-guangzhou.myqcloud.com" for b in TWO.split(",")]
    assert scan.environment["COSGUARD_BUCKETS"] == TWO
    assert read_description(ROOT, env).buckets == TWO.split(",")


def test_the_local_runtime_scans_every_described_bucket(example_env, tmp_path):
    env = dict(example_env, DEPLOY_INTAKE_BUCKET=TWO)
    with LocalDeployment.from_description(ROOT, env, scan_delay=0.05,
                                          log_stream=open(tmp_path / "functions.log", "w")) as local:
        cos, prefix = local.cloud.client("cos"), example_env["DEPLOY_INTAKE_PREFIX"]
        for bucket in TWO.split(","):
            cos.put_object(Bucket=bucket, Key=prefix + "bad.com", Body=eicar())
            cos.put_object(Bucket=bucket, Key=prefix + "good.txt", Body=clean_text())
        assert local.wait_idle(30)
        for bucket in TWO.split(","):
            assert not cos.object_exists(Bucket=bucket, Key=prefix + "bad.com")
            tags = cos.get_object_tagging(Bucket=bucket, Key=prefix + "good.txt")["TagSet"]["Tag"]
            assert {"Key": "cosguard-status", "Value": "clean"} in tags
        quarantined = [o["Key"] for o in cos.list_objects(Bucket=STATE, Prefix="quarantine/").get("Contents") or []]
        assert sorted(k.split("/")[1] for k in quarantined) == sorted(TWO.split(","))


def test_the_deploy_configures_a_weekly_inventory_when_asked_and_its_report_drives_a_backfill(run_deploy, local):
    intake = "intake-1250000000"
    cos = local.cloud.client("cos")
    code, err, _ = run_deploy()
    assert code == 0, err
    with pytest.raises(CosServiceError):   # off by default
        cos.get_bucket_inventory(Bucket=intake, Id="cosguard")

    code, err, _ = run_deploy(DEPLOY_INVENTORY_BUCKET=STATE)

    assert code == 0, err
    got = cos.get_bucket_inventory(Bucket=intake, Id="cosguard")
    assert got["Schedule"]["Frequency"] == "Weekly" and got["IncludedObjectVersions"] == "Current"
    assert got["Destination"]["COSBucketDestination"]["Bucket"] == f"qcs::cos:ap-guangzhou::{STATE}"
    assert {"Size", "LastModifiedDate", "ETag"} <= set(got["OptionalFields"]["Field"])
    cos.put_object(Bucket=intake, Key="incoming/old.txt", Body=clean_text())
    manifest = local.cloud.cos.run_inventory(intake, "cosguard")   # COS's weekly run, now
    assert manifest.startswith("cosguard-inventory/1250000000/intake/cosguard/")
    from cosguard.bulk.backfill import Backfill, Options
    report = Backfill(Runtime.from_env(local.env, require_callback_url=False),
                      Options(intake, dry_run=True, inventory=f"{STATE}/{manifest}")).run()
    assert report.complete and report.counts == {"to_scan": 1}
