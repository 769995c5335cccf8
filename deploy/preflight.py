#!/usr/bin/env python3
"""Check a deployment before `scf deploy`: the application's serverless.yml files, resolved with a
`.env` the way the Serverless CLI resolves them, must give every function a valid cosguard
configuration and a COS trigger that cosguard's own writes can never fire.

    python deploy/preflight.py [--env .env] [--allow-missing-callback-url]
    python deploy/preflight.py --environment scan-on-upload   # for tccli's --Environment

Exit 0 and a summary when everything holds, else 1 and one line per problem. With --environment,
print instead that function's resolved environment in SCF's API shape ({"Variables": [...]}) for
the console / tccli route of deploy/README.md. tests/deploy uses the same functions on
`.env.example`.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
CONFIG_NAMES = ("serverless.yml", "serverless.yaml", "serverless.json")
SUPPORTED_RUNTIMES = ("Python3.9", "Python3.10")
# Injected by SCF when the function has an execution role (reference §3.3); never set in the yml.
SCF_PROVIDED = ("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN")
# Functions that never submit a CI job, so need no callback URL (Settings' require_callback_url).
NO_CALLBACK_URL = ("quarantine-callback",)
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_SEGMENT = r"(?:\$\{\w+\}|[^:{}]+)"   # ${stage}, ${app} or a literal
OUTPUT_REF = re.compile(r"\$\{output:" + _SEGMENT + ":" + _SEGMENT + r":([A-Za-z0-9_-]+)\.([A-Za-z0-9_.]+)\}")


class AppError(Exception):
    """The folder is not a deployable multi-instance application."""


@dataclass
class Instance:
    folder: Path
    config: Dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.config["name"])

    @property
    def component(self) -> str:
        return str(self.config["component"])

    @property
    def inputs(self) -> Dict[str, Any]:
        return self.config.get("inputs") or {}


@dataclass
class App:
    root: Path
    config: Dict[str, Any]
    instances: Dict[str, Instance] = field(default_factory=dict)

    def of(self, component: str) -> List[Instance]:
        return [i for i in self.instances.values() if i.component == component]


# -- loading, as the CLI does ------------------------------------------------------------------
def _load_config(folder: Path) -> Optional[Dict[str, Any]]:
    for name in CONFIG_NAMES:
        path = folder / name
        if path.is_file():
            text = path.read_text("utf-8")
            if name.endswith(".json"):
                return json.loads(text)
            import yaml  # only needed here; tests and operators have it (pyyaml)
            return yaml.safe_load(text) or {}
    return None


def load_app(root: Path = ROOT) -> App:
    """The root file (app/stage/org only) and every direct, non-hidden sub-folder's instance.

    Mirrors serverless-cloud-framework's runningTemplate/getTemplate: a root file with a
    `component` would be deployed alone, and a sub-folder file without one stops the
    multi-instance deploy, so both are errors here.
    """
    config = _load_config(root)
    if config is None:
        raise AppError(f"no serverless.yml in {root}")
    if config.get("component"):
        raise AppError("the root serverless.yml declares a component: `scf deploy` would deploy it alone")
    app = App(root, config)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        instance = _load_config(folder)
        if instance is None:
            continue
        if not instance.get("component") or not instance.get("name"):
            raise AppError(f"{folder.name}/serverless.yml lacks `component` or `name`")
        if instance["name"] in app.instances:
            raise AppError(f"two instances are named {instance['name']!r}")
        app.instances[instance["name"]] = Instance(folder, instance)
    if not app.instances:
        raise AppError("no component instance in any sub-folder")
    return app


def parse_dotenv(text: str) -> Dict[str, str]:
    """KEY=value lines as dotenv reads them: comments, blank lines, `export `, optional quotes."""
    values: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def resolve(value: Any, env: Mapping[str, str]) -> Any:
    """Substitute ${env:NAME} like the CLI: a whole-value reference to an unset name drops the
    value (None); inside a longer string it becomes the text "undefined"."""
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if not isinstance(value, str):
        return value
    whole = ENV_REF.fullmatch(value)
    if whole:
        return env.get(whole.group(1))
    return ENV_REF.sub(lambda m: env.get(m.group(1), "undefined"), value)


def env_references(value: Any) -> List[str]:
    """Every ${env:NAME} in a (nested) value."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in env_references(v)]
    if isinstance(value, list):
        return [n for v in value for n in env_references(v)]
    return ENV_REF.findall(value) if isinstance(value, str) else []


def function_environment(instance: Instance, env: Mapping[str, str]) -> Dict[str, str]:
    """The environment variables SCF would give the function (unset parameters dropped)."""
    variables = ((instance.inputs.get("environment") or {}).get("variables") or {})
    resolved = resolve(variables, env)
    return {k: str(v) for k, v in resolved.items() if v is not None}


def cos_triggers(instance: Instance) -> List[Dict[str, Any]]:
    return [e["cos"] for e in instance.inputs.get("events") or [] if isinstance(e, dict) and "cos" in e]


def deployment_env(app: App, env: Mapping[str, str], stage: Optional[str] = None) -> Dict[str, str]:
    """`env` with COSGUARD_DEPLOYMENT defaulted to <app>-<stage>: the name that owns the state
    location, and from which the default COSGUARD_STATE_PREFIX (.cosguard/<deployment>/) derives."""
    out = dict(env)
    if not str(out.get("COSGUARD_DEPLOYMENT") or "").strip():
        out["COSGUARD_DEPLOYMENT"] = f"{app.config.get('app')}-{stage or app.config.get('stage') or 'dev'}"
    return out


def cos_trigger_params(trigger: Mapping[str, Any], env: Mapping[str, str]) -> List[Dict[str, Any]]:
    """A COS trigger's resolved parameters, once per intake bucket: a bucket given by a variable
    holding a comma-separated list (DEPLOY_INTAKE_BUCKET=a-125...,b-125...) is one trigger per bucket,
    so one description serves N intake buckets."""
    raw = (trigger.get("parameters") or {})
    names = env_references(raw.get("bucket"))
    listed = [n for n in names if "," in str(env.get(n) or "")]
    if not listed:
        return [resolve(raw, env)]
    name = listed[0]
    buckets = [b.strip() for b in str(env[name]).split(",") if b.strip()]
    return [resolve(raw, dict(env, **{name: bucket})) for bucket in buckets]


def handler_file(instance: Instance) -> Path:
    """The file `handler` (module.function) names inside the instance's src folder."""
    module = str(instance.inputs.get("handler", "index.main_handler")).rsplit(".", 1)[0]
    return src_folder(instance) / (module.replace(".", "/") + ".py")


def src_folder(instance: Instance) -> Path:
    src = instance.inputs.get("src")
    path = src.get("src") if isinstance(src, dict) else src
    return (instance.folder / str(path)).resolve()


def defines_function(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def _fires(own_prefix: str, trigger_prefix: str, carries_key: bool) -> bool:
    """Can a key cosguard writes under `own_prefix` start with `trigger_prefix`?

    Quarantine and clean copies are written to own_prefix + <scanned key>, and a scanned key
    starts with the trigger prefix; ledger keys are own_prefix + <anything>.
    """
    if carries_key:
        return (own_prefix + trigger_prefix).startswith(trigger_prefix)
    return own_prefix.startswith(trigger_prefix) or trigger_prefix.startswith(own_prefix)


# -- the checks --------------------------------------------------------------------------------
def check(app: App, env: Mapping[str, str], *, allow_missing_callback_url: bool = False,
          require_layer_build: bool = True) -> List[str]:
    """Every problem found; empty when the deployment can go ahead."""
    problems: List[str] = []
    try:
        from cosguard.errors import ConfigError
        from cosguard.infra.config import Settings
    except ImportError:  # pragma: no cover - operators run this from a checkout with cosguard installed
        Settings = None
        problems.append("cosguard is not importable (pip install -e .): settings were not checked")

    layers = {i.name: i for i in app.of("layer")}
    for instance in app.of("layer"):
        tree = src_folder(instance)
        if require_layer_build and not (tree / "cosguard" / "runtime.py").is_file():
            problems.append(f"{instance.name}: {tree} is not built: run python layers/build.py "
                            "--python /path/to/python3.9")

    for instance in app.of("scf"):
        label = instance.name
        inputs = instance.inputs
        runtime = inputs.get("runtime")
        if runtime not in SUPPORTED_RUNTIMES:
            problems.append(f"{label}: runtime {runtime!r} is not one of {SUPPORTED_RUNTIMES}")
        if not src_folder(instance).is_dir():
            problems.append(f"{label}: src {src_folder(instance)} does not exist")
        elif not handler_file(instance).is_file():
            problems.append(f"{label}: handler file {handler_file(instance)} does not exist")
        elif not defines_function(handler_file(instance), str(inputs.get("handler")).rsplit(".", 1)[1]):
            problems.append(f"{label}: {handler_file(instance)} defines no {inputs.get('handler')}")
        if not resolve(inputs.get("role"), env):
            problems.append(f"{label}: no execution role (DEPLOY_ROLE): SCF would inject no keys")
        for layer in inputs.get("layers") or []:
            refs = {OUTPUT_REF.fullmatch(str(layer.get(k, ""))) for k in ("name", "version")}
            names = {m.group(1) for m in refs if m}
            if len(names) != 1 or None in refs or next(iter(names)) not in layers:
                problems.append(f"{label}: layer {layer} is not an ${{output:...}} of a layer instance")
            elif runtime not in (layers[next(iter(names))].inputs.get("runtimes") or []):
                problems.append(f"{label}: layer {next(iter(names))} does not list runtime {runtime}")
        environment = function_environment(instance, env)
        undefined = [k for k, v in environment.items() if "undefined" in v]
        if undefined:
            problems.append(f"{label}: unset parameters inside {undefined}")
        if Settings is not None:
            need_url = label not in NO_CALLBACK_URL
            probe = dict(environment, **{k: "scf-provides-this" for k in SCF_PROVIDED})
            if need_url and allow_missing_callback_url and not probe.get("COSGUARD_CALLBACK_URL"):
                probe["COSGUARD_CALLBACK_URL"] = "https://callback-url.invalid/"
            try:
                Settings.from_env(probe, require_callback_url=need_url)
            except ConfigError as exc:
                problems.extend(f"{label}: {p}" for p in exc.problems)
        problems.extend(f"{label}: {p}" for p in _trigger_problems(instance, env, environment))
    return problems


def _trigger_problems(instance: Instance, env: Mapping[str, str],
                      environment: Mapping[str, str]) -> List[str]:
    """A COS trigger must not fire on cosguard's own writes into the intake bucket."""
    problems: List[str] = []
    for params in [p for trigger in cos_triggers(instance) for p in cos_trigger_params(trigger, env)]:
        bucket_host = str(params.get("bucket") or "")
        bucket = bucket_host.split(".cos.", 1)[0]
        prefix = str((params.get("filter") or {}).get("prefix") or "")
        # Upload events only (doc 583/9707); deploy_plan then insists on cosguard's UPLOAD_EVENT.
        if not str(params.get("events") or "").startswith("cos:ObjectCreated:"):
            problems.append(f"trigger events {params.get('events')!r} are not upload events")
        if "undefined" in bucket_host or not bucket:
            problems.append(f"trigger bucket {bucket_host!r} is incomplete")
        if bucket not in [b.strip() for b in environment.get("COSGUARD_BUCKETS", "").split(",")]:
            problems.append(f"trigger bucket {bucket!r} is not in COSGUARD_BUCKETS")
        if not prefix.strip("/"):
            problems.append("trigger filter prefix is empty: every key, cosguard's own writes "
                            "included, would trigger a scan")
            continue
        quarantine_bucket = environment.get("COSGUARD_QUARANTINE_BUCKET") or bucket
        state_bucket = environment.get("COSGUARD_STATE_BUCKET") or quarantine_bucket
        # (what, bucket, prefix, whether the written key ends with the scanned object's key)
        own_writes = [("quarantine prefix", quarantine_bucket,
                       environment.get("COSGUARD_QUARANTINE_PREFIX") or "quarantine/", True),
                      ("ledger prefix", state_bucket,
                       environment.get("COSGUARD_STATE_PREFIX") or ".cosguard/", False)]
        destination = (environment.get("COSGUARD_CLEAN_DESTINATION") or "").strip()
        if destination.startswith("/"):
            own_writes.append(("clean destination", bucket, destination.strip("/") + "/", True))
        elif destination:
            dest_bucket, _, rest = destination.partition("/")
            own_writes.append(("clean destination", dest_bucket,
                               rest.strip("/") + "/" if rest.strip("/") else "", True))
        for what, where, own_prefix, carries_key in own_writes:
            own_prefix = own_prefix.lstrip("/")
            if where == bucket and _fires(own_prefix, prefix, carries_key):
                problems.append(f"trigger filter prefix {prefix!r} overlaps the {what} "
                                f"{own_prefix!r} in {bucket}: cosguard's writes would be scanned")
    return problems


def warnings(app: App, env: Mapping[str, str]) -> List[str]:
    """Risky but working choices (cosguard.domain.layout): state or quarantine where uploaders can
    write. Bucket versioning cannot be seen from here: `cosguard verify` checks it."""
    try:
        from cosguard.domain.layout import layout_warnings
        from cosguard.errors import ConfigError
        from cosguard.infra.config import Settings
    except ImportError:  # pragma: no cover - check() already reports this
        return []
    found: List[str] = []
    for instance in app.of("scf"):
        if not cos_triggers(instance):
            continue
        probe = dict(function_environment(instance, env), **{k: "scf-provides-this" for k in SCF_PROVIDED})
        try:
            settings = Settings.from_env(probe, require_callback_url=False)
        except ConfigError:
            continue  # check() reports it
        found.extend(f"{instance.name}: {w}" for w in layout_warnings(settings) if w not in found)
    found.append("intake bucket versioning is not visible to preflight: `cosguard verify` warns when it is off "
                 "(versioned intake buckets are recommended, see docs/how-it-works.md)")
    return found


def scf_api_environment(instance: Instance, env: Mapping[str, str]) -> Dict[str, Any]:
    """The function's environment as SCF's CreateFunction/UpdateFunctionConfiguration take it.

    Empty values are left out: cosguard reads them as unset anyway, and whether SCF accepts an
    empty value is unconfirmed."""
    return {"Variables": [{"Key": k, "Value": v} for k, v in function_environment(instance, env).items() if v]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, default=ROOT / ".env", help="dotenv file (default .env)")
    parser.add_argument("--allow-missing-callback-url", action="store_true",
                        help="before the first deploy of quarantine-callback (its URL is unknown)")
    parser.add_argument("--environment", metavar="INSTANCE",
                        help="print this function's resolved environment as SCF's API takes it")
    args = parser.parse_args(argv)
    if not args.env.is_file():
        print(f"no {args.env}: copy .env.example and fill it in", file=sys.stderr)
        return 1
    try:
        app = load_app(ROOT)
    except AppError as exc:
        print(f"problem: {exc}")
        return 1
    if args.environment:
        if args.environment not in app.instances:
            print(f"no instance {args.environment!r}; instances: {', '.join(app.instances)}", file=sys.stderr)
            return 1
        env = parse_dotenv(args.env.read_text("utf-8"))
        print(json.dumps(scf_api_environment(app.instances[args.environment], env), ensure_ascii=False))
        return 0
    problems = check(app, parse_dotenv(args.env.read_text("utf-8")),
                     allow_missing_callback_url=args.allow_missing_callback_url)
    for problem in problems:
        print(f"problem: {problem}")
    for warning in warnings(app, parse_dotenv(args.env.read_text("utf-8"))):
        print(f"warning: {warning}")
    if problems:
        return 1
    print(f"ok: app {app.config.get('app')!r}, stage {app.config.get('stage')!r}, instances "
          f"{', '.join(f'{n} ({i.component})' for n, i in app.instances.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
