"""SCF's API schema as the installed `tccli` ships it (tccli/services/scf/v20180416/api.json), and a
checker for one call: the action exists, every parameter is a member of its request, every required
member is given, values have the member's type (objects and lists recursively), and the JSON-valued
TriggerDesc has the shape its trigger type documents.

TriggerDesc shapes (CreateTrigger's TriggerDesc points to doc 583/39901, "触发器配置描述"; en
583/34880): COS = {"event": <COS event type>, "filter": {"Prefix", "Suffix"}} (both required;
event types per doc 583/9707); timer = the bare cron expression, seven fields (second minute hour
day month weekday year); function URL (Type http, doc 583/100227) = {"AuthType": NONE|CAM,
"NetConfig": {"EnableIntranet": bool, "EnableExtranet": bool}} (required) and an optional
"CorsConfig" {"Enable", "Origins", "Headers", "Methods", "ExposeHeaders", "MaxAge", "Credentials"}.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping

import pytest

COS_EVENTS = {"cos:ObjectCreated:*", "cos:ObjectCreated:Put", "cos:ObjectCreated:Post",
              "cos:ObjectCreated:Copy", "cos:ObjectCreated:CompleteMultipartUpload",
              "cos:ObjectCreated:Origin", "cos:ObjectCreated:Replication", "cos:ObjectRemove:*",
              "cos:ObjectRemove:Delete", "cos:ObjectRemove:DeleteMarkerCreated",
              "cos:ObjectRestore:Post", "cos:ObjectRestore:Completed"}
CORS_MEMBERS = {"Enable", "Origins", "Headers", "Methods", "ExposeHeaders", "MaxAge", "Credentials"}
TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "list": list, "float": (int, float)}


@lru_cache(maxsize=1)
def schema() -> Dict[str, Any]:
    tccli = pytest.importorskip("tccli", reason="pip install tccli (the test extra has it)")
    path = Path(tccli.__file__).parent / "services" / "scf" / "v20180416" / "api.json"
    return json.loads(path.read_text("utf-8"))


def members(object_name: str) -> Dict[str, Dict[str, Any]]:
    return {m["name"]: m for m in schema()["objects"][object_name]["members"]}


def request_members(action: str) -> Dict[str, Dict[str, Any]]:
    return members(schema()["actions"][action]["input"])


def _check_value(where: str, member: Mapping[str, Any], value: Any) -> List[str]:
    kind = member["type"]
    if kind == "int" and isinstance(value, bool) or not isinstance(value, TYPES.get(kind, object)):
        return [f"{where}: {type(value).__name__} where the schema has {kind}"]
    if kind == "object":
        return _check_object(where, member["member"], value)
    if kind == "list":
        inner = member["member"]
        item = {"type": "object", "member": inner} if inner in schema()["objects"] else \
            {"type": {"string": "string", "int64": "int", "uint64": "int", "bool": "bool"}.get(inner, "string")}
        return [p for i, v in enumerate(value) for p in _check_value(f"{where}[{i}]", item, v)]
    return []


def _check_object(where: str, object_name: str, value: Mapping[str, Any]) -> List[str]:
    known = members(object_name)
    problems = [f"{where}.{k}: not a member of {object_name}" for k in value if k not in known]
    problems += [f"{where}.{k}: required member of {object_name} missing" for k, m in known.items()
                 if m.get("required") and k not in value]
    for key, inner in value.items():
        if key in known:
            problems += _check_value(f"{where}.{key}", known[key], inner)
    return problems


def trigger_desc_problems(kind: str, desc: Any) -> List[str]:
    if kind == "timer":
        fields = str(desc).split()
        return [] if len(fields) == 7 else [f"timer TriggerDesc {desc!r}: {len(fields)} cron fields, not 7"]
    try:
        parsed = json.loads(desc)
    except (TypeError, ValueError):
        return [f"{kind} TriggerDesc is not JSON: {desc!r}"]
    if kind == "cos":
        problems = [f"cos TriggerDesc: unknown member {k}" for k in parsed if k not in ("event", "filter")]
        if parsed.get("event") not in COS_EVENTS:
            problems.append(f"cos TriggerDesc: event {parsed.get('event')!r} is not a COS event type")
        flt = parsed.get("filter")
        if not isinstance(flt, dict):
            problems.append("cos TriggerDesc: filter missing")
        else:
            problems += [f"cos TriggerDesc: filter member {k} unknown" for k in flt if k not in ("Prefix", "Suffix")]
            problems += [f"cos TriggerDesc: filter.{k} is not a string" for k, v in flt.items() if not isinstance(v, str)]
        return problems
    if kind == "http":
        problems = [f"http TriggerDesc: unknown member {k}" for k in parsed
                    if k not in ("AuthType", "NetConfig", "CorsConfig")]
        if parsed.get("AuthType") not in ("NONE", "CAM"):
            problems.append(f"http TriggerDesc: AuthType {parsed.get('AuthType')!r} is not NONE or CAM")
        net = parsed.get("NetConfig")
        if not isinstance(net, dict) or set(net) != {"EnableIntranet", "EnableExtranet"} or \
                not all(isinstance(v, bool) for v in net.values()):
            problems.append(f"http TriggerDesc: NetConfig {net!r} needs boolean EnableIntranet and EnableExtranet")
        cors = parsed.get("CorsConfig")
        if cors is not None and (not isinstance(cors, dict) or set(cors) - CORS_MEMBERS):
            problems.append(f"http TriggerDesc: CorsConfig {cors!r} has unknown members")
        return problems
    return [f"TriggerDesc of type {kind!r} is not checked here"]


def problems(action: str, params: Mapping[str, Any]) -> List[str]:
    """Everything wrong with calling `action` with `params`; empty when the schema accepts it."""
    if action not in schema()["actions"]:
        return [f"{action}: no such SCF action"]
    found = _check_object(action, schema()["actions"][action]["input"], params)
    if "TriggerDesc" in params and action in ("CreateTrigger", "UpdateTrigger") and isinstance(params.get("Type"), str):
        found += trigger_desc_problems(params["Type"], params["TriggerDesc"])
    return found
