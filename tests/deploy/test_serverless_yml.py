"""serverless.yml and its instances, read as the Serverless CLI reads them, resolved with
.env.example: the app deploys what exists, every function gets a valid cosguard configuration, and
cosguard's own writes can never trigger a scan. Plus the CAM policy the functions' role needs."""
from __future__ import annotations

import json
import re

import pytest

from cosguard.errors import ConfigError
from cosguard.infra.config import Settings
from deploy_helpers import OPERATOR_FILLS, ROOT

FUNCTIONS = {"scan-on-upload": "scan_on_upload", "quarantine-callback": "quarantine_callback",
             "reconcile-pending": "reconcile_pending"}
LAYER = "cosguard-layer"


def scf(app, name):
    return app.instances[name]


def required_variables(**kwargs):
    """The variables Settings.from_env names as required, from its own error report."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({}, **kwargs)
    names = {re.match(r"[A-Z][A-Z0-9_]+", problem).group(0) for problem in info.value.problems}
    assert names, info.value.problems
    return names


def known_variables():
    """Every variable Settings.from_env reads: its declaration, infra/settings_spec.SETTINGS."""
    from cosguard.infra.settings_spec import BY_ENV
    return set(BY_ENV)


# -- the application ---------------------------------------------------------------------------
def test_the_root_file_is_an_application_of_four_instances(app):
    assert app.config.get("app") and app.config.get("stage")
    assert "component" not in app.config and "inputs" not in app.config
    assert {n: i.component for n, i in app.instances.items()} == {
        LAYER: "layer", "scan-on-upload": "scf", "quarantine-callback": "scf", "reconcile-pending": "scf"}


def test_a_component_in_the_root_file_is_refused(preflight, tmp_path):
    (tmp_path / "serverless.yml").write_text("app: x\ncomponent: scf\nname: x\n")
    with pytest.raises(preflight.AppError) as info:
        preflight.load_app(tmp_path)
    assert "deploy it alone" in str(info.value)


def test_a_subfolder_file_without_component_is_refused(preflight, tmp_path):
    """The CLI would then fall back to a single-instance deploy of the root file, and fail."""
    (tmp_path / "serverless.yml").write_text("app: x\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "serverless.yml").write_text("service: old-style\n")
    with pytest.raises(preflight.AppError) as info:
        preflight.load_app(tmp_path)
    assert "docs/serverless.yml" in str(info.value)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_names_an_existing_handler(app, preflight, name):
    instance = scf(app, name)
    folder = ROOT / "functions" / FUNCTIONS[name]
    assert preflight.src_folder(instance) == folder
    assert instance.inputs["handler"] == "index.main_handler"
    if not folder.exists() and name == "reconcile-pending":
        pytest.skip("functions/reconcile_pending has not landed yet")
    assert preflight.handler_file(instance) == folder / "index.py"
    assert preflight.defines_function(folder / "index.py", "main_handler")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_runs_python39_or_310_with_a_role_and_the_layer(app, name, example_env, preflight):
    inputs = scf(app, name).inputs
    assert inputs["runtime"] in ("Python3.9", "Python3.10")
    assert preflight.resolve(inputs["role"], example_env)
    assert inputs["layers"] == [{"name": "${output:${stage}:${app}:cosguard-layer.name}",
                                 "version": "${output:${stage}:${app}:cosguard-layer.version}"}]
    assert inputs["runtime"] in app.instances[LAYER].inputs["runtimes"]


def test_the_layer_instance_uploads_what_build_py_builds(app, preflight, layer_build_script):
    layer = app.instances[LAYER]
    assert preflight.src_folder(layer) == layer_build_script.DEFAULT_TREE
    assert layer_build_script.DEFAULT_OUT.with_suffix("") == layer_build_script.DEFAULT_TREE
    assert layer_build_script.TREE_MARKER in layer.inputs["src"]["exclude"]
    assert "Python3.9" in layer.inputs["runtimes"]


# -- triggers ----------------------------------------------------------------------------------
def test_scan_on_upload_has_one_upload_trigger_on_the_intake_prefix(app):
    inputs = scf(app, "scan-on-upload").inputs
    [trigger] = [e for e in inputs["events"]]
    params = trigger["cos"]["parameters"]
    assert params["events"] == "cos:ObjectCreated:*" and params["enable"] is True
    assert params["bucket"] == "${env:DEPLOY_INTAKE_BUCKET}.cos.${env:COSGUARD_REGION}.myqcloud.com"
    variables = inputs["environment"]["variables"]
    assert variables["COSGUARD_BUCKETS"] == "${env:DEPLOY_INTAKE_BUCKET}"
    # the function filters exactly what the trigger filters
    assert params["filter"] == {"prefix": "${env:DEPLOY_INTAKE_PREFIX}"}
    assert variables["COSGUARD_INCLUDE_PREFIXES"] == "${env:DEPLOY_INTAKE_PREFIX}"


def test_the_other_functions_have_a_function_url_and_a_timer(app):
    [callback_event] = scf(app, "quarantine-callback").inputs["events"]
    assert callback_event == {"http": {"parameters": {"netConfig": {"enableExtranet": True},
                                                      "qualifier": "$DEFAULT", "authType": "NONE"}}}
    [timer] = scf(app, "reconcile-pending").inputs["events"]
    assert timer["timer"]["parameters"]["cronExpression"] == "${env:DEPLOY_RECONCILE_CRON}"


@pytest.mark.parametrize("quarantine_bucket", ["quarantine-1250000000", ""], ids=["own-bucket", "intake-bucket"])
def test_quarantine_and_ledger_keys_never_match_the_trigger_filter(app, preflight, example_env,
                                                                    quarantine_bucket):
    env = dict(example_env, COSGUARD_QUARANTINE_BUCKET=quarantine_bucket)
    instance = scf(app, "scan-on-upload")
    [trigger] = preflight.cos_triggers(instance)
    prefix = preflight.resolve(trigger["parameters"], env)["filter"]["prefix"]
    settings = Settings.from_env(dict(preflight.function_environment(instance, env),
                                      TENCENTCLOUD_SECRETID="x", TENCENTCLOUD_SECRETKEY="y"))
    scanned_key = prefix + "report.pdf"
    assert scanned_key.startswith(prefix) and prefix.strip("/")
    quarantine_key = settings.quarantine_prefix + scanned_key
    ledger_key = settings.state_prefix + "jobs/0123.json"
    assert not quarantine_key.startswith(prefix)
    assert settings.state_prefix == ".cosguard/" and not ledger_key.startswith(prefix)
    assert preflight.check(app, env, require_layer_build=False) == []


@pytest.mark.parametrize("overrides, expected", [
    ({"DEPLOY_INTAKE_PREFIX": ""}, "prefix is empty"),
    ({"COSGUARD_QUARANTINE_BUCKET": "", "COSGUARD_QUARANTINE_PREFIX": "incoming/held/"}, "quarantine prefix"),
    ({"COSGUARD_QUARANTINE_BUCKET": "", "DEPLOY_INTAKE_PREFIX": ".cosguard/"}, "ledger prefix"),
    ({"COSGUARD_CLEAN_DESTINATION": "/"}, "COSGUARD_CLEAN_DESTINATION"),
    ({"COSGUARD_CLEAN_DESTINATION": "/incoming/ok/"}, "clean destination"),
])
def test_preflight_refuses_a_trigger_that_cosguard_would_fire(app, preflight, example_env, overrides, expected):
    problems = preflight.check(app, dict(example_env, **overrides), require_layer_build=False)
    assert any(expected in p and p.startswith("scan-on-upload") for p in problems), problems


# -- environment -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_environment_covers_every_required_setting(app, preflight, name):
    require_url = name not in preflight.NO_CALLBACK_URL
    required = required_variables(require_callback_url=require_url)
    assert ("COSGUARD_CALLBACK_URL" in required) is require_url
    provided_by_scf = set(preflight.SCF_PROVIDED) & required
    assert provided_by_scf == {"TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY"}
    variables = set(scf(app, name).inputs["environment"]["variables"])
    assert required - provided_by_scf <= variables, required - provided_by_scf - variables


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_variable_set_is_a_known_setting_and_none_is_local_only(app, name):
    variables = set(scf(app, name).inputs["environment"]["variables"])
    known = known_variables()
    assert "COSGUARD_CALLBACK_TOKEN" in known and "COSGUARD_NOTIFY_FORMAT" in known
    assert variables <= known, variables - known
    assert not variables & {"COSGUARD_COS_ENDPOINT", "COSGUARD_CI_ENDPOINT"}
    assert not any(v.startswith("TENCENTCLOUD_") for v in variables)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_resolved_environment_is_a_valid_configuration(app, preflight, example_env, name):
    environment = preflight.function_environment(scf(app, name), example_env)
    settings = Settings.from_env(dict(environment, TENCENTCLOUD_SECRETID="x", TENCENTCLOUD_SECRETKEY="y"),
                                 require_callback_url=name not in preflight.NO_CALLBACK_URL)
    assert settings.buckets == (example_env["DEPLOY_INTAKE_BUCKET"],)
    assert settings.include_prefixes == (example_env["DEPLOY_INTAKE_PREFIX"],)
    assert settings.region == example_env["COSGUARD_REGION"]
    assert settings.callback_token == OPERATOR_FILLS["COSGUARD_CALLBACK_TOKEN"]


def test_the_functions_share_one_configuration(app):
    scan = scf(app, "scan-on-upload").inputs["environment"]["variables"]
    callback = scf(app, "quarantine-callback").inputs["environment"]["variables"]
    reconcile = scf(app, "reconcile-pending").inputs["environment"]["variables"]
    assert reconcile == scan
    assert callback == {k: v for k, v in scan.items() if k != "COSGUARD_CALLBACK_URL"}


# Parameters only deploy/deploy.py reads (the serverless.yml instances do not)
DEPLOY_SCRIPT_ONLY = {"DEPLOY_INVENTORY_BUCKET"}


def test_env_example_documents_exactly_the_parameters_the_app_reads(app, preflight):
    example = preflight.parse_dotenv((ROOT / ".env.example").read_text("utf-8"))
    referenced = set(preflight.env_references(app.config))
    for instance in app.instances.values():
        referenced |= set(preflight.env_references(instance.config))
    deploy_script = (ROOT / "deploy" / "deploy.py").read_text("utf-8")
    read_by_the_deploy_script = {name for name in DEPLOY_SCRIPT_ONLY if f'"{name}"' in deploy_script}
    assert read_by_the_deploy_script == DEPLOY_SCRIPT_ONLY
    assert referenced | DEPLOY_SCRIPT_ONLY == set(example), (referenced ^ set(example))
    assert not any(v for k, v in example.items() if "TOKEN" in k or "SECRET" in k)


def test_no_parameter_is_left_unresolved_by_env_example(app, preflight, example_env):
    for instance in app.instances.values():
        resolved = json.dumps(preflight.resolve(instance.inputs, example_env))
        assert "${env:" not in resolved and "undefined" not in resolved, instance.name


# -- the CAM policy ----------------------------------------------------------------------------
POLICY = ROOT / "deploy" / "cam-policy.json"
# The CAM actions behind each operation cosguard's gateway performs (infra/*.py `_call("<op>"`).
# CopyObject/MultipartCopy: read on the source, write on the destination (COS API docs 436/10881,
# 436/8287); ListObjects is GET Bucket.
CAM_ACTIONS = {
    "HeadObject": {"name/cos:HeadObject"},
    "GetObject": {"name/cos:GetObject"},
    "PutObject": {"name/cos:PutObject"},
    "DeleteObject": {"name/cos:DeleteObject"},
    "GetObjectTagging": {"name/cos:GetObjectTagging"},
    "PutObjectTagging": {"name/cos:PutObjectTagging"},
    "ListObjects": {"name/cos:GetBucket"},
    "CopyObject": {"name/cos:GetObject", "name/cos:PutObject"},
    "MultipartCopy": {"name/cos:GetObject", "name/cos:PutObject", "name/cos:InitiateMultipartUpload",
                      "name/cos:ListMultipartUploads", "name/cos:ListParts",
                      "name/cos:CompleteMultipartUpload", "name/cos:AbortMultipartUpload"},
    "InitiateMultipartUpload": {"name/cos:InitiateMultipartUpload"},
    # Upload Part - Copy: read on the source; PutObject, ListMultipartUploads, ListParts on the
    # destination (doc 436/8287 lists those as what a caller of this API needs).
    "UploadPartCopy": {"name/cos:GetObject", "name/cos:PutObject", "name/cos:ListMultipartUploads",
                       "name/cos:ListParts"},
    # Upload Part: the streamed copy of an appendable object (doc 436/31923 names the action).
    "UploadPart": {"name/cos:UploadPart"},
    "CompleteMultipartUpload": {"name/cos:CompleteMultipartUpload"},
    "AbortMultipartUpload": {"name/cos:AbortMultipartUpload"},
    "SubmitVirusJob": {"name/ci:CreateAuditingVirusJob"},
    "QueryVirusJob": {"name/ci:DescribeAuditingVirusJob"},
}
# Operations only the operator's CLI performs (backfill of versioned buckets), with the operator's
# own credentials: the functions' role is not granted them.
OPERATOR_ONLY = {
    "GetBucketVersioning": {"name/cos:GetBucketVersioning"},
    "ListObjectVersions": {"name/cos:ListBucketVersions"},
    # the deploy sets the ledger's retention with the operator's keys (doc 436/8280: cos:PutBucketLifecycle)
    "GetBucketLifecycle": {"name/cos:GetBucketLifecycle"},
    "PutBucketLifecycle": {"name/cos:PutBucketLifecycle"},
    # and, opted in (DEPLOY_INVENTORY_BUCKET), each intake bucket's inventory (doc 436/30625)
    "PutBucketInventory": {"name/cos:PutBucketInventory"},
}
# Not an operation of ours: CI's asynchronous jobs read COS through a service role (doc 436/50132).
PASS_ROLE = "name/cam:PassRole"
PLACEHOLDERS = {"<region>", "<appid>", "<owner-uin>", "<intake-bucket>", "<intake-prefix>",
                "<quarantine-bucket>", "<quarantine-prefix>", "<state-bucket>", "<state-prefix>"}


def policy_actions():
    policy = json.loads(POLICY.read_text("utf-8"))
    return {a for s in policy["statement"] for a in s["action"]}


def test_policy_parses_and_names_no_wildcard():
    policy = json.loads(POLICY.read_text("utf-8"))
    assert policy["version"] == "2.0" and policy["statement"]
    for statement in policy["statement"]:
        assert statement["effect"] == "allow"
        assert isinstance(statement["action"], list) and isinstance(statement["resource"], list)
        for action in statement["action"]:
            assert "*" not in action and re.fullmatch(r"name/(cos|ci|cam):[A-Z][A-Za-z]+", action), action
        for resource in statement["resource"]:
            assert resource != "*" and resource.startswith("qcs::"), resource
            assert not resource.startswith(("qcs::cos:*", "qcs::ci:*")), resource


def test_policy_grants_every_operation_cosguard_performs_and_nothing_else():
    source = "".join(path.read_text("utf-8") for path in (ROOT / "src" / "cosguard" / "infra").glob("*.py"))
    operations = set(re.findall(r"_call\(\s*\"([A-Za-z]+)\"", source))
    assert {"HeadObject", "SubmitVirusJob", "QueryVirusJob"} <= operations
    unmapped = operations - set(CAM_ACTIONS) - set(OPERATOR_ONLY)
    assert not unmapped, f"new cloud operations {unmapped}: map them here and grant them in {POLICY}"
    needed = set().union(*(CAM_ACTIONS[op] for op in operations - set(OPERATOR_ONLY)))
    granted = policy_actions()
    assert needed <= granted, needed - granted
    assert granted - needed == {PASS_ROLE}, granted - needed


def test_policy_is_scoped_to_documented_placeholders():
    text = POLICY.read_text("utf-8")
    used = set(re.findall(r"<[a-z-]+>", text))
    assert used == PLACEHOLDERS, used ^ PLACEHOLDERS
    readme = (ROOT / "deploy" / "README.md").read_text("utf-8")
    assert all(p in readme for p in PLACEHOLDERS), [p for p in PLACEHOLDERS if p not in readme]
    ci = [r for s in json.loads(text)["statement"] for r in s["resource"] if r.startswith("qcs::ci:")]
    assert ci == ["qcs::ci:<region>:uid/<appid>:bucket/<intake-bucket>/*"]


# -- the preflight command ---------------------------------------------------------------------
def write_env(path, values):
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    return str(path)


def test_preflight_prints_a_function_environment_for_tccli(preflight, example_env, tmp_path, capsys):
    env_file = write_env(tmp_path / ".env", example_env)
    assert preflight.main(["--env", env_file, "--environment", "scan-on-upload"]) == 0
    variables = {v["Key"]: v["Value"] for v in json.loads(capsys.readouterr().out)["Variables"]}
    assert variables["COSGUARD_BUCKETS"] == example_env["DEPLOY_INTAKE_BUCKET"]
    assert variables["COSGUARD_CALLBACK_URL"] == OPERATOR_FILLS["COSGUARD_CALLBACK_URL"]
    assert all(variables.values()) and "COSGUARD_STATE_BUCKET" not in variables


def test_preflight_fails_until_the_callback_url_is_known(preflight, example_env, tmp_path, capsys):
    env_file = write_env(tmp_path / ".env", dict(example_env, COSGUARD_CALLBACK_URL=""))
    assert preflight.main(["--env", env_file]) == 1
    out = capsys.readouterr().out
    assert "problem: scan-on-upload: COSGUARD_CALLBACK_URL is required" in out
    assert "quarantine-callback: COSGUARD_CALLBACK_URL" not in out
    assert preflight.check(preflight.load_app(ROOT), dict(example_env, COSGUARD_CALLBACK_URL=""),
                           allow_missing_callback_url=True, require_layer_build=False) == []
