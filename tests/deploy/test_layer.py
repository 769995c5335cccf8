"""The layer that ships is the layer that is tested: built by layers/build.py with Python 3.9,
unzipped, and both handlers run by a Python 3.9 process whose only import paths are the function's
folder and the unzipped layer (SCF: /var/user:/opt), against the local cloud."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from packaging.requirements import Requirement
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from cosguard.local.function_url import FunctionUrlServer, request_to_event
from cosguard.local.samples import eicar
from cosguard.local.stack import LocalCloud
from deploy_helpers import ROOT
from helpers import CALLBACK_SECRET, unique_bucket

RUNNER = Path(__file__).with_name("run_handler.py")
MARK = "@@run_handler@@ "


def pyproject_dependencies():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return [Requirement(r) for r in tomllib.load(handle)["project"]["dependencies"]]


# -- the artifact --------------------------------------------------------------------------------
def test_zip_holds_the_runtime_library_and_its_dependencies_at_its_root(built_layer, layer_build_script):
    summary, path = built_layer
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    for needed in ("cosguard/runtime.py", "cosguard/domain/scan.py", "cosguard/triggers/callback.py",
                   "cosguard/infra/config.py",
                   "qcloud_cos/cos_client.py", "defusedxml/ElementTree.py", "requests/__init__.py",
                   "xmltodict.py", "six.py", "Crypto/__init__.py", "crcmod/__init__.py"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("cosguard/local/")]
    assert not [n for n in names if n.startswith("cosguard/cli/") or re.fullmatch(r"cosguard/cli(_\w*)?\.py", n)]
    assert not [n for n in names if n.split("/")[0] in ("tests", "test", "python", "opt")]
    assert layer_build_script.forbidden_entries(names, bytecode_tag="cpython-39") == []
    assert summary["python"].startswith("3.9.") and summary["route"] == "interpreter"
    assert summary["bytecode"] == "cpython-39"
    assert summary["unpinned"] == [] and summary["files"] == len([n for n in names if not n.endswith("/")])
    assert summary["bytes"] == path.stat().st_size and summary["bytes"] < 50 * 1024 * 1024



def test_every_module_ships_with_its_own_python39_byte_code(built_layer, layer_build_script, python39, tmp_path):
    # SCF's layer directory is read-only: without .pyc each cold start compiles every module again
    summary, path = built_layer
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    assert "cosguard/__pycache__/runtime.cpython-39.pyc" in names
    assert "qcloud_cos/__pycache__/cos_client.cpython-39.pyc" in names
    assert layer_build_script.bytecode_problems(tmp_path, python39) == ("cpython-39", [])
    # a .pyc that no longer matches its source is caught, and so is a module without one
    (tmp_path / "cosguard" / "runtime.py").write_text("changed = True\n")
    (tmp_path / "cosguard" / "domain" / "__pycache__" / "scan.cpython-39.pyc").unlink()
    tag, problems = layer_build_script.bytecode_problems(tmp_path, python39)
    assert sorted(problems) == ["cosguard/__pycache__/runtime.cpython-39.pyc: not cpython-39 unchecked-hash "
                                "byte code of its source", "cosguard/domain/scan.py: no byte code"]


def test_a_second_build_ships_the_same_bytes(built_layer, python39, layer_build_script, tmp_path):
    # byte code included (marshal's output depends on the compiling process's state: one process, in order)
    _, first = built_layer
    layer_build_script.build(tmp_path / "again.zip", tmp_path / "again", python39, "3.9")
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(tmp_path / "again.zip") as b:
        assert a.namelist() == b.namelist()
        # crcmod's C extension is compiled anew by each build
        assert [n for n in a.namelist() if not n.endswith(".so") and a.read(n) != b.read(n)] == []


def test_no_bytecode_ships_sources_only(python39, layer_build_script, tmp_path):
    out = tmp_path / "plain.zip"
    summary = layer_build_script.build(out, tmp_path / "plain", python39, "3.9", bytecode=False)
    with zipfile.ZipFile(out) as archive:
        assert not [n for n in archive.namelist() if "__pycache__" in n or n.endswith(".pyc")]
    assert summary["bytecode"] is None


def test_the_build_records_the_zip_hash_the_deploy_and_verify_compare(built_layer):
    import hashlib
    summary, path = built_layer
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["sha256"] == summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_forbidden_entries_catches_what_must_not_ship(layer_build_script):
    bad = ["cosguard/local/stack.py", "cosguard/cli.py", "cosguard/cli_demo.py", "cosguard/cli/ops.py", "cosguard/ui/table.py", "tests/x.py",
           "cosguard/__pycache__/a.cpython-39.pyc", "qcloud_cos/x.pyc", "cosguard/__pycache__/client.cpython-311.pyc",
           "cosguard/__pycache__/client.cpython-39.pyo"]
    good = ["cosguard/runtime.py", "cosguard/client.py", "qcloud_cos/cos_client.py", "cosguard/local.txt"]
    compiled = ["cosguard/__pycache__/", "cosguard/__pycache__/runtime.cpython-39.pyc", "__pycache__/six.cpython-39.pyc",
                "six.py"]
    assert layer_build_script.forbidden_entries(bad + good + compiled, bytecode_tag="cpython-39") == bad
    assert layer_build_script.forbidden_entries(bad + good + compiled) == bad + compiled[:3]  # not compiled: none


def test_the_emulator_cli_and_modules_importing_the_emulator_are_left_out(layer_build_script, tmp_path):
    package = tmp_path / "cosguard"
    files = {"__init__.py": "", "runtime.py": "from .config import Settings\n", "py.typed": "",
             "cli.py": "", "cli_ops.py": "", "client.py": "import json\n",
             "demo.py": "from .local import stack\n", "bench.py": "from . import local\n",
             "lazy.py": "def f():\n    from cosguard.local.samples import eicar\n",
             "cli/__init__.py": "", "cli/ops.py": "", "ui/table.py": "", "domain/deep.py": "from ..local.stack import LocalCloud\n",
             "domain/near.py": "from .local import x\n",
             "local/__init__.py": "", "local/stack.py": "", "sub/mod.py": "import cosguard.localish\n",
             "__pycache__/runtime.cpython-39.pyc": ""}
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    shipped = sorted(p.as_posix() for p in layer_build_script.runtime_files(package))
    assert shipped == ["__init__.py", "client.py", "domain/near.py", "py.typed", "runtime.py", "sub/mod.py"]


def test_pins_satisfy_pyproject_dependencies(layer_build_script):
    pins = layer_build_script.pinned_requirements()
    for requirement in pyproject_dependencies():
        name = layer_build_script.normalize(requirement.name)
        assert name in pins, f"{requirement} is not pinned in layers/requirements.txt"
        assert requirement.specifier.contains(pins[name]), (requirement, pins[name])


# -- the handlers, under Python 3.9, from the unzipped layer ---------------------------------------
def run_handler(python39, function, layer_dir, env, event, timeout=60):
    """One invocation in a fresh Python 3.9 process: no site-packages (-S), PYTHONPATH as SCF's."""
    function_dir = ROOT / "functions" / function
    process_env = dict(env, PYTHONPATH=f"{function_dir}{os.pathsep}{layer_dir}",
                       PYTHONDONTWRITEBYTECODE="x", PATH=os.environ.get("PATH", ""))
    request = {"handler": "index.main_handler", "event": event,
               "context": {"request_id": f"req-{time.time_ns()}", "memory_limit_in_mb": 128,
                           "time_limit_in_ms": 60000, "function_name": function}}
    done = subprocess.run([python39, "-S", str(RUNNER)], input=json.dumps(request), env=process_env,
                          cwd=function_dir, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert done.returncode == 0 and lines, f"runner failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    payload = json.loads(lines[-1][len(MARK):])
    assert payload["ok"], f"{payload.get('traceback')}\nstderr:\n{done.stderr[-3000:]}"
    assert payload["python"].startswith("3.9.") and payload["site_loaded"] is False
    for module in ("cosguard.runtime", "qcloud_cos", "requests", "defusedxml"):
        assert payload["files"][module].startswith(str(layer_dir) + os.sep), payload["files"]
    assert payload["files"]["index"] == str(function_dir / "index.py")
    return payload["result"]


@pytest.fixture
def unzipped_layer(built_layer, tmp_path):
    _, path = built_layer
    target = tmp_path / "opt"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(target)
    return target


@pytest.fixture
def cloud():
    intake, jail = unique_bucket("intake"), unique_bucket("jail")
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    cloud.intake, cloud.jail = intake, jail
    yield cloud
    cloud.stop()


@pytest.fixture
def callback_recorder():
    """Where CI's own callbacks land: recorded only, so the 3.9 process does the acting."""
    received = []
    server = FunctionUrlServer(lambda event, context: received.append(event) or
                               {"statusCode": 200, "headers": {}, "body": "{}"}).start()
    server.received = received
    yield server
    server.stop()


def production_env(app, preflight, example_env, name, cloud, callback_base):
    """The function's environment from serverless.yml + .env.example, pointed at the local cloud."""
    env = preflight.function_environment(app.instances[name], example_env)
    env.update(cloud.function_env(COSGUARD_BUCKETS=cloud.intake, COSGUARD_QUARANTINE_BUCKET=cloud.jail,
                                  COSGUARD_CALLBACK_URL=callback_base,
                                  COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET))
    return env


def function_url_event(url, body):
    parts = urlsplit(url)
    builder = EnvironBuilder(method="POST", path=parts.path, query_string=parts.query, data=body,
                             content_type="application/xml")
    return request_to_event(Request(builder.get_environ()))


def tags_of(cos, bucket, key):
    response = cos.get_object_tagging(Bucket=bucket, Key=key)
    return {t["Key"]: t["Value"] for t in response.get("TagSet", {}).get("Tag", [])}


def test_both_handlers_run_from_the_layer_under_python39(python39, unzipped_layer, cloud, callback_recorder,
                                                        app, preflight, example_env):
    prefix = example_env["DEPLOY_INTAKE_PREFIX"]
    key = prefix + "eicar.com"
    events = []
    cloud.cos.subscribe(events.append, bucket=cloud.intake)
    cos = cloud.client("cos")
    cos.put_object(Bucket=cloud.intake, Key=key, Body=eicar())
    cloud.cos.drain()
    event = {"Records": [r for e in events for r in e["Records"]]}
    assert len(event["Records"]) == 1

    # (a) scan_on_upload: the COS event COS emitted -> one CI job, the object tagged pending
    scan_env = production_env(app, preflight, example_env, "scan-on-upload", cloud, callback_recorder.url)
    assert scan_env["COSGUARD_INCLUDE_PREFIXES"] == prefix
    summary = run_handler(python39, "scan_on_upload", unzipped_layer, scan_env, event)
    job_id = summary["jobs"][key]
    assert job_id and summary["records"] == 1
    assert tags_of(cos, cloud.intake, key) == {"cosguard-status": "pending", "cosguard-job": job_id}

    # CI finishes and calls back the URL scan_on_upload gave it: bucket, object ref, expiry, token
    assert cloud.ci.wait_idle(15)
    expected_url = cloud.ci.backend.jobs[job_id].callback
    [delivered] = callback_recorder.received
    assert delivered["queryString"] == {k: v[0] for k, v in parse_qs(urlsplit(expected_url).query).items()}
    query = delivered["queryString"]
    assert expected_url.startswith(callback_recorder.url) and query["bucket"] == cloud.intake
    assert set(query) == {"bucket", "ref", "exp", "token"} and int(query["exp"]) > time.time() + 86400

    # (b) quarantine_callback: a function-URL event naming the job -> re-queried, quarantined
    callback_env = production_env(app, preflight, example_env, "quarantine-callback", cloud,
                                  callback_recorder.url)
    assert "COSGUARD_CALLBACK_URL" not in preflight.function_environment(
        app.instances["quarantine-callback"], example_env)
    body = f"<Response><JobsDetail><JobId>{job_id}</JobId></JobsDetail></Response>"
    answer = run_handler(python39, "quarantine_callback", unzipped_layer, callback_env,
                         function_url_event(expected_url, body))
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["outcome"] == "quarantined"
    assert not cos.object_exists(Bucket=cloud.intake, Key=key)
    quarantined = f"{example_env['COSGUARD_QUARANTINE_PREFIX']}{cloud.intake}/{job_id}/{key}"
    assert cos.object_exists(Bucket=cloud.jail, Key=quarantined)
    assert tags_of(cos, cloud.jail, quarantined)["cosguard-status"] == "infected"


def test_reconcile_pending_runs_from_the_layer_under_python39(python39, unzipped_layer, cloud, app, preflight,
                                                             example_env, callback_recorder):
    if not (ROOT / "functions" / "reconcile_pending" / "index.py").exists():
        pytest.skip("functions/reconcile_pending has not landed yet")
    env = production_env(app, preflight, example_env, "reconcile-pending", cloud, callback_recorder.url)
    timer_event = {"Type": "timer", "TriggerName": "cosguard-reconcile",
                   "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "Message": ""}
    report = run_handler(python39, "reconcile_pending", unzipped_layer, env, timer_event)
    assert isinstance(report, dict) and report


def test_a_missing_setting_fails_the_cold_start_under_python39(python39, unzipped_layer, cloud, app, preflight,
                                                               example_env, callback_recorder):
    """The runner reports a failing handler (so the tests above cannot pass vacuously)."""
    env = production_env(app, preflight, example_env, "scan-on-upload", cloud, callback_recorder.url)
    del env["COSGUARD_CALLBACK_TOKEN"]
    with pytest.raises(AssertionError) as info:
        run_handler(python39, "scan_on_upload", unzipped_layer, env, {"Records": []})
    assert "ConfigError" in str(info.value) and "COSGUARD_CALLBACK_TOKEN" in str(info.value)
