#!/usr/bin/env python3
"""Deploy cosguard in one command, first time and every time, from the same description `scf deploy`
reads (serverless.yml, the sls-*/ and layers/ instances, resolved with .env):

    python deploy/deploy.py [--env .env] [--stage prod] [--dry-run]

Through SCF's API (tccli): publish the layer unless a version with this build's hash exists,
create or update the three functions, create the callback's function URL (an `http` trigger) once,
read its URL back and give it to scan-on-upload and reconcile-pending as COSGUARD_CALLBACK_URL,
then make each function's triggers exactly those the description names. Re-running changes nothing
that is already right: no second URL, no duplicate trigger. Writes the URL into .env and a record
of what was deployed (deploy/deployed-<stage>.json) for `cosguard verify --deployment`, and the
functions' settings (deploy/deployed-<stage>.env) for the operator's `cosguard ... --env-file`.

Why not `scf deploy` alone: the scf component can create the function URL (its `http` event), but
its outputs carry only the trigger's name, never the URL, so nothing could hand the URL on.
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import preflight  # noqa: E402  (the description's loader and resolver, shared with the checks)
from deploy_plan import DeployError, FunctionPlan, LayerPlan, Plan, TriggerPlan, code_zip, make_plan  # noqa: E402

CALLBACK = "quarantine-callback"      # the instance whose function URL CI calls back
NEEDS_URL = ("scan-on-upload", "reconcile-pending")
MANAGED_TYPES = ("cos", "timer", "http")
NAMESPACE = "default"
HASH_MARK = re.compile(r"sha256:([0-9a-f]{64})")


# -- talking to SCF ----------------------------------------------------------------------------
class Deployer:
    """Brings SCF to the plan through `api` (anything with call(action, params) -> dict)."""

    def __init__(self, api, *, sleep: Callable[[float], None] = time.sleep, poll_seconds: float = 2.0,
                 polls: int = 90, log: Callable[[str], None] = print):
        self.api, self.sleep, self.poll_seconds, self.polls, self.log = api, sleep, poll_seconds, polls, log

    # layer
    def ensure_layer(self, layer: LayerPlan, zip_bytes: bytes, sha256: str) -> int:
        """The newest layer version carrying this build's hash, published only if none does."""
        from cosguard.cli.scf_api import ScfApiError
        try:
            versions = self.api.call("ListLayerVersions", {"LayerName": layer.name}).get("LayerVersions") or []
        except ScfApiError as exc:
            if not exc.not_found:
                raise
            versions = []
        same = [int(v["LayerVersion"]) for v in versions
                if HASH_MARK.search(str(v.get("Description") or "")) and
                HASH_MARK.search(str(v.get("Description"))).group(1) == sha256]
        if same:
            self.log(f"layer {layer.name}: version {max(same)} already holds this build")
            return max(same)
        answer = self.api.call("PublishLayerVersion", {
            "LayerName": layer.name, "CompatibleRuntimes": layer.runtimes,
            "Content": {"ZipFile": base64.b64encode(zip_bytes).decode("ascii")},
            "Description": f"{layer.description} sha256:{sha256}"[:1000]})
        version = int(answer["LayerVersion"])
        self.log(f"layer {layer.name}: published version {version}")
        return version

    # functions
    def wait_active(self, name: str) -> Dict[str, Any]:
        for _ in range(self.polls):
            function = self.api.call("GetFunction", {"FunctionName": name, "Namespace": NAMESPACE})
            status = function.get("Status")
            if status == "Active":
                return function
            if status and "Failed" in status:
                raise DeployError(f"function {name} is {status}: {function.get('StatusDesc')}")
            self.sleep(self.poll_seconds)
        raise DeployError(f"function {name} did not become Active")

    def ensure_function(self, fn: FunctionPlan, layer: LayerPlan, layer_version: int) -> None:
        from cosguard.cli.scf_api import ScfApiError
        zip_b64 = base64.b64encode(code_zip(fn.src)).decode("ascii")
        environment = {"Variables": [{"Key": k, "Value": v} for k, v in sorted(fn.environment.items())]}
        layers = [{"LayerName": layer.name, "LayerVersion": layer_version}]
        try:
            self.api.call("GetFunction", {"FunctionName": fn.name, "Namespace": NAMESPACE})
            exists = True
        except ScfApiError as exc:
            if not exc.not_found:
                raise
            exists = False
        if not exists:
            self.api.call("CreateFunction", {
                "FunctionName": fn.name, "Namespace": NAMESPACE, "Code": {"ZipFile": zip_b64},
                "Handler": fn.handler, "Runtime": fn.runtime, "Role": fn.role, "MemorySize": fn.memory,
                "Timeout": fn.timeout, "Environment": environment, "Layers": layers, "Type": "Event"})
            self.log(f"function {fn.name}: created")
            self.wait_active(fn.name)
            return
        self.wait_active(fn.name)
        self.api.call("UpdateFunctionCode", {"FunctionName": fn.name, "Namespace": NAMESPACE,
                                             "Handler": fn.handler, "ZipFile": zip_b64})
        self.wait_active(fn.name)
        self.api.call("UpdateFunctionConfiguration", {
            "FunctionName": fn.name, "Namespace": NAMESPACE, "Role": fn.role, "MemorySize": fn.memory,
            "Timeout": fn.timeout, "Environment": environment, "Layers": layers})
        self.log(f"function {fn.name}: code and configuration updated")
        self.wait_active(fn.name)

    # triggers
    def ensure_triggers(self, fn: FunctionPlan) -> None:
        """Exactly the planned triggers: missing ones created, changed ones replaced or updated,
        ones the description no longer names deleted; an existing function URL is kept."""
        from cosguard.cli.scf_api import cos_filter_of, cron_of, is_enabled, list_triggers
        existing = [t for t in list_triggers(self.api, fn.name, NAMESPACE) if t.get("Type") in MANAGED_TYPES]
        wanted_keys = set()
        for plan in fn.triggers:
            key = (plan.type, plan.qualifier) if plan.type == "http" else (plan.type, plan.name)
            wanted_keys.add(key)
            match = [t for t in existing if self._key(t) == key]
            if not match:
                self._create(fn, plan)
                continue
            current = match[0]
            if plan.type == "cos":
                want = json.loads(plan.desc)
                same = cos_filter_of(current) == {"event": want["event"], "prefix": want["filter"]["Prefix"],
                                                  "suffix": want["filter"]["Suffix"]}
                if same and is_enabled(current) == plan.enable:
                    continue
                # COS triggers cannot be updated (UpdateTrigger: timer, ckafka, http only).
                self._delete(fn, current)
                self._create(fn, plan)
            elif plan.type == "timer":
                if cron_of(current) == plan.desc and is_enabled(current) == plan.enable:
                    continue
                self._update(fn, plan, current)
            else:  # http: one URL per qualifier; keep it (and so its address), adjust its settings
                from cosguard.cli.scf_api import trigger_desc
                read = trigger_desc(current) if isinstance(trigger_desc(current), dict) else {}
                want = json.loads(plan.desc)
                if read.get("AuthType") == want["AuthType"] and all(
                        (read.get("NetConfig") or {}).get(k) == v for k, v in want["NetConfig"].items()):
                    continue
                self._update(fn, plan, current)
        for stale in [t for t in existing if self._key(t) not in wanted_keys]:
            self._delete(fn, stale)

    @staticmethod
    def _key(trigger: Mapping[str, Any]) -> tuple:
        if trigger.get("Type") == "http":
            return ("http", trigger.get("Qualifier") or "$DEFAULT")
        return (trigger.get("Type"), trigger.get("TriggerName"))

    def _create(self, fn: FunctionPlan, plan: TriggerPlan) -> None:
        self.api.call("CreateTrigger", {"FunctionName": fn.name, "Namespace": NAMESPACE,
                                        "TriggerName": plan.name, "Type": plan.type, "TriggerDesc": plan.desc,
                                        "Qualifier": plan.qualifier,
                                        "Enable": "OPEN" if plan.enable else "CLOSE"})
        self.log(f"function {fn.name}: {plan.type} trigger {plan.name} created")

    def _update(self, fn: FunctionPlan, plan: TriggerPlan, current: Mapping[str, Any]) -> None:
        self.api.call("UpdateTrigger", {"FunctionName": fn.name, "Namespace": NAMESPACE,
                                        "TriggerName": current.get("TriggerName") or plan.name,
                                        "Type": plan.type, "TriggerDesc": plan.desc, "Qualifier": plan.qualifier,
                                        "Enable": "OPEN" if plan.enable else "CLOSE"})
        self.log(f"function {fn.name}: {plan.type} trigger {plan.name} updated")

    def _delete(self, fn: FunctionPlan, trigger: Mapping[str, Any]) -> None:
        self.api.call("DeleteTrigger", {"FunctionName": fn.name, "Namespace": NAMESPACE,
                                        "TriggerName": trigger.get("TriggerName"), "Type": trigger.get("Type"),
                                        "TriggerDesc": trigger.get("TriggerDesc") or "",
                                        "Qualifier": trigger.get("Qualifier") or "$DEFAULT"})
        self.log(f"function {fn.name}: {trigger.get('Type')} trigger {trigger.get('TriggerName')} deleted")

    def read_function_url(self, name: str) -> str:
        """The function URL as SCF shows it (it may appear a moment after the trigger)."""
        from cosguard.cli.scf_api import function_url, list_triggers
        for _ in range(self.polls):
            url = function_url(list_triggers(self.api, name, NAMESPACE))
            if url:
                return url
            self.sleep(self.poll_seconds)
        raise DeployError(f"{name} has no function URL SCF shows: copy it from the console "
                          "(function -> Function URL) and re-run with --callback-url URL")

    # the whole deployment
    def deploy(self, plan: Plan, layer_zip: bytes, layer_sha256: str,
               callback_url: Optional[str] = None) -> Dict[str, Any]:
        version = self.ensure_layer(plan.layer, layer_zip, layer_sha256)
        callback = plan.functions[CALLBACK]
        self.ensure_function(callback, plan.layer, version)
        self.ensure_triggers(callback)
        url = callback_url or self.read_function_url(callback.name)
        self.log(f"function URL of {callback.name}: {url}")
        for instance, fn in plan.functions.items():
            if instance == CALLBACK:
                continue
            if instance in NEEDS_URL:
                fn.environment["COSGUARD_CALLBACK_URL"] = url
            self.ensure_function(fn, plan.layer, version)
            self.ensure_triggers(fn)
        self.operator_env = dict(plan.functions["scan-on-upload"].environment)
        return {"app": plan.app, "stage": plan.stage, "region": plan.region, "callback_url": url,
                "layer": {"name": plan.layer.name, "version": version, "sha256": layer_sha256},
                "functions": {i: f.name for i, f in plan.functions.items()}}


# -- the state location: this deployment's own, with its retention ----------------------------
def prepare_state(environment: Mapping[str, str], gateway_for: Optional[Callable[[Any], Any]] = None,
                  log: Callable[[str], None] = print, inventory_bucket: str = "") -> None:
    """Before any function changes: claim each state location for this deployment (refused, with
    one line naming the owner, when another deployment has it) and set the ledger's lifecycle
    rules (docs/retention.md). With the operator's keys (TENCENTCLOUD_SECRETID/SECRETKEY), which
    need cos:GetObject/PutObject there and cos:Get/PutBucketLifecycle. With `inventory_bucket`
    (DEPLOY_INVENTORY_BUCKET, opt-in): a weekly COS inventory of every intake bucket into it, the
    listing `cosguard backfill --inventory` reads (docs/operations.md; cos:PutBucketInventory)."""
    import os

    from cosguard.domain.owner import claim_state_location
    from cosguard.domain.retention import apply_lifecycle
    from cosguard.domain.seal import sealer_for
    from cosguard.infra.config import Settings
    probe = dict(environment)
    for name in ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"):
        if os.environ.get(name):
            probe[name] = os.environ[name]
    if gateway_for is None and not (probe.get("TENCENTCLOUD_SECRETID") and probe.get("TENCENTCLOUD_SECRETKEY")):
        raise DeployError("set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY (the operator's keys) so the "
                          "deploy can claim the state location and set its lifecycle rules")
    probe.setdefault("TENCENTCLOUD_SECRETID", "unused")
    probe.setdefault("TENCENTCLOUD_SECRETKEY", "unused")
    settings = Settings.from_env(probe, require_callback_url=False)
    if gateway_for is None:
        from cosguard.infra.cloud import CloudGateway
        gateway_for = CloudGateway
    gateway = gateway_for(settings)
    claimed = claim_state_location(gateway, sealer_for(settings), settings,
                                   prefix_is_default=not str(environment.get("COSGUARD_STATE_PREFIX") or "").strip())
    for bucket in claimed:
        log(f"state location {bucket}/{settings.state_prefix}: claimed for {settings.deployment}")
    for bucket, done in apply_lifecycle(gateway, settings).items():
        log(f"state location {bucket}/{settings.state_prefix}: lifecycle rules {done}")
    if inventory_bucket:
        from cosguard.bulk.inventory import INVENTORY_ID, REPORT_PREFIX, apply_inventory
        for bucket in apply_inventory(gateway, list(settings.buckets), inventory_bucket, settings.region):
            log(f"{bucket}: weekly inventory {INVENTORY_ID!r} into {inventory_bucket}/{REPORT_PREFIX}/")


# -- the command -------------------------------------------------------------------------------
def set_dotenv_value(path: Path, name: str, value: str) -> bool:
    """Replace (or append) NAME=value in a dotenv file; True when the file changed."""
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    line = f"{name}={value}"
    for i, old in enumerate(lines):
        if re.match(rf"\s*(export\s+)?{re.escape(name)}\s*=", old):
            if old == line:
                return False
            lines[i] = line
            break
    else:
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return True


def layer_build(layer: LayerPlan) -> tuple:
    """(zip bytes, sha256) of the layer layers/build.py built, from the manifest it wrote."""
    manifest = layer.src.with_suffix(".json")
    archive = layer.src.with_suffix(".zip")
    if not manifest.is_file() or not archive.is_file():
        raise DeployError(f"no layer build at {archive}: run python layers/build.py --python /path/to/python3.9")
    sha256 = json.loads(manifest.read_text("utf-8"))["sha256"]
    data = archive.read_bytes()
    import hashlib
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DeployError(f"{archive} does not match {manifest.name}: rebuild the layer")
    return data, sha256


def main(argv: Optional[Sequence[str]] = None, api=None, cos=None) -> int:
    """`api`: SCF (default tccli); `cos`: Settings -> CloudGateway for the state location (tests)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, default=ROOT / ".env", help="dotenv file (default .env)")
    parser.add_argument("--stage", help="stage (default: serverless.yml's)")
    parser.add_argument("--callback-url", help="use this function URL instead of reading it back")
    parser.add_argument("--record", type=Path, help="where to write the deployment record "
                                                    "(default deploy/deployed-<stage>.json)")
    parser.add_argument("--dry-run", action="store_true", help="check and print the plan; call nothing")
    parser.add_argument("--skip-state", action="store_true",
                        help="do not claim the state location or set its lifecycle rules (someone else does)")
    args = parser.parse_args(argv)
    if not args.env.is_file():
        print(f"no {args.env}: copy .env.example and fill it in", file=sys.stderr)
        return 1
    env = preflight.parse_dotenv(args.env.read_text("utf-8"))
    try:
        app = preflight.load_app(ROOT)
    except preflight.AppError as exc:
        print(f"problem: {exc}", file=sys.stderr)
        return 1
    env = preflight.deployment_env(app, env, args.stage)
    problems = preflight.check(app, env, allow_missing_callback_url=True)
    if problems:
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        return 1
    try:
        plan = make_plan(app, env, args.stage)
    except DeployError as exc:
        print(f"problem: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(json.dumps({"layer": plan.layer.name, "functions": {
            i: {"name": f.name, "triggers": [vars(t) for t in f.triggers]} for i, f in plan.functions.items()}},
            indent=2))
        return 0
    from cosguard.cli.scf_api import ScfApiError, TccliScfApi
    from cosguard.errors import CosguardError
    if not args.skip_state:
        try:
            prepare_state(plan.functions["scan-on-upload"].environment, cos,
                          inventory_bucket=str(env.get("DEPLOY_INVENTORY_BUCKET") or "").strip())
        except (DeployError, CosguardError) as exc:   # StateLocationTaken's message is one line
            print(f"problem: {exc}", file=sys.stderr)
            return 1
    try:
        data, sha256 = layer_build(plan.layer)
        deployer = Deployer(api or TccliScfApi(plan.region))
        record = deployer.deploy(plan, data, sha256, args.callback_url)
    except (DeployError, ScfApiError) as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    if set_dotenv_value(args.env, "COSGUARD_CALLBACK_URL", record["callback_url"]):
        print(f"{args.env}: COSGUARD_CALLBACK_URL set to the function URL")
    record.update(intake_bucket=env.get("DEPLOY_INTAKE_BUCKET"), intake_prefix=env.get("DEPLOY_INTAKE_PREFIX"))
    out = args.record or HERE / f"deployed-{plan.stage}.json"
    out.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    # The functions' own settings, for the operator's commands (`cosguard ... --env-file`). It holds
    # the callback secret, like .env: owner-only, git-ignored.
    operator_env = out.with_suffix(".env")
    operator_env.touch(mode=0o600)
    operator_env.chmod(0o600)
    operator_env.write_text("".join(f"{k}={v}\n" for k, v in sorted(deployer.operator_env.items())), "utf-8")
    print(f"deployed: {', '.join(record['functions'].values())}; record in {out}, settings in {operator_env}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
