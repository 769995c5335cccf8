"""The deployment plan: serverless.yml's instances (resolved with .env, as the scf and layer
components resolve them) as the SCF API arguments deploy/deploy.py sends. No cloud call here."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import preflight  # deploy/ is on sys.path: deploy.py puts it there


class DeployError(Exception):
    pass


@dataclass
class TriggerPlan:
    type: str
    name: str
    desc: str
    qualifier: str = "$DEFAULT"
    enable: bool = True


@dataclass
class FunctionPlan:
    instance: str
    name: str
    src: Path
    handler: str
    runtime: str
    role: str
    memory: int
    timeout: int
    environment: Dict[str, str]
    triggers: List[TriggerPlan] = field(default_factory=list)


@dataclass
class LayerPlan:
    name: str
    runtimes: List[str]
    src: Path
    description: str


@dataclass
class Plan:
    app: str
    stage: str
    region: str
    layer: LayerPlan
    functions: Dict[str, FunctionPlan]


# -- the description, read as the scf/layer components read it --------------------------------
def _substitute(value: Any, app: str, stage: str, instance: str) -> Any:
    if isinstance(value, str):
        return value.replace("${app}", app).replace("${stage}", stage).replace("${name}", instance)
    return value


def _cos_plan(params: Mapping[str, Any]) -> TriggerPlan:
    flt = params.get("filter") or {}
    from cosguard.triggers.events import UPLOAD_EVENT
    if params.get("events") != UPLOAD_EVENT or not str(flt.get("prefix") or "").strip("/"):
        raise DeployError(f"COS trigger on {params.get('bucket')}: cosguard needs {UPLOAD_EVENT} "
                          "filtered to a non-empty prefix (deploy/preflight.py explains why)")
    desc = {"event": params.get("events"), "filter": {"Prefix": flt.get("prefix") or "", "Suffix": flt.get("suffix") or ""}}
    return TriggerPlan("cos", str(params.get("bucket")), json.dumps(desc), params.get("qualifier") or "$DEFAULT",
                       bool(params.get("enable", True)))


def trigger_plans(events: Sequence[Mapping[str, Any]], env: Mapping[str, str]) -> List[TriggerPlan]:
    """serverless.yml `events` as SCF CreateTrigger arguments, the way Tencent's component toolkit
    maps them (tencent-component-toolkit src/modules/triggers/{cos,timer,http}.ts); TriggerDesc
    shapes per doc 583/39901 (COS: event + filter.Prefix/Suffix; timer: 7-field cron) and
    583/100227 (function URL: AuthType + NetConfig)."""
    plans = []
    for event in events or []:
        [(kind, spec)] = event.items()
        if kind == "cos":   # one trigger per intake bucket (preflight.cos_trigger_params)
            plans.extend(_cos_plan(params) for params in preflight.cos_trigger_params(spec or {}, env))
            continue
        spec = preflight.resolve(spec or {}, env)
        params = spec.get("parameters") or {}
        enable = bool(params.get("enable", True))
        qualifier = params.get("qualifier") or "$DEFAULT"
        if kind == "timer":
            name = spec.get("name") or params.get("name") or "timer"
            cron = str(params.get("cronExpression") or "")
            if len(cron.split()) != 7:   # doc 583/39901: second minute hour day month weekday year
                raise DeployError(f"timer {name}: cron {cron!r} has {len(cron.split())} fields; SCF's has 7")
            plans.append(TriggerPlan("timer", str(name), cron, qualifier, enable))
        elif kind == "http":
            net = params.get("netConfig") or {}
            desc = {"AuthType": params.get("authType") or "NONE",
                    "NetConfig": {"EnableIntranet": bool(net.get("enableIntranet", False)),
                                  "EnableExtranet": bool(net.get("enableExtranet", False))}}
            plans.append(TriggerPlan("http", str(params.get("name") or "url-trigger"), json.dumps(desc),
                                     qualifier, True))
        else:
            raise DeployError(f"trigger type {kind!r} is not one cosguard deploys")
    return plans


def make_plan(app: "preflight.App", env: Mapping[str, str], stage: Optional[str] = None) -> Plan:
    app_name = str(app.config.get("app"))
    stage = stage or str(app.config.get("stage") or "dev")
    env = preflight.deployment_env(app, env, stage)
    [layer] = app.of("layer")
    layer_inputs = layer.inputs
    plan_layer = LayerPlan(_substitute(str(layer_inputs.get("name") or layer.name), app_name, stage, layer.name),
                           list(layer_inputs.get("runtimes") or []), preflight.src_folder(layer),
                           str(layer_inputs.get("description") or "cosguard layer"))
    functions = {}
    for instance in app.of("scf"):
        inputs = instance.inputs
        name = inputs.get("name") or "${name}-${stage}-${app}"   # the scf component's default
        functions[instance.name] = FunctionPlan(
            instance=instance.name, name=_substitute(str(name), app_name, stage, instance.name),
            src=preflight.src_folder(instance), handler=str(inputs.get("handler")),
            runtime=str(inputs.get("runtime")), role=str(preflight.resolve(inputs.get("role"), env) or ""),
            memory=int(inputs.get("memorySize") or 128), timeout=int(inputs.get("timeout") or 3),
            environment={k: v for k, v in preflight.function_environment(instance, env).items() if v},
            triggers=trigger_plans(inputs.get("events") or [], env))
    return Plan(app_name, stage, str(env.get("COSGUARD_REGION") or ""), plan_layer, functions)


def code_zip(folder: Path) -> bytes:
    """The function folder zipped with its files at the root, byte for byte the same each time."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_dir() or "__pycache__" in rel or path.suffix in (".pyc", ".pyo"):
                continue
            info = zipfile.ZipInfo(rel, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
