"""A fake SCF API for the deploy orchestration: refuses any call tccli's own schema refuses
(scf_schema.problems), and keeps state the way SCF does as far as cosguard depends on it:

- functions pass through Creating/Updating before Active; changing one that is not Active fails;
- a trigger is unique per (function, type, name), a function URL per (function, qualifier);
- COS triggers cannot be updated (UpdateTrigger: timer, ckafka, http only) and need their
  TriggerDesc to be deleted (DeleteTrigger's own documentation);
- read-backs differ from what was written, as observed by Tencent's toolkit: Enable comes back as
  1/0, a timer's TriggerDesc as {"cron": ...}; the http trigger's description gains its URL.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, List, Mapping

import scf_schema
from cosguard.cli.scf_api import ScfApiError

APPID = "1250000000"


class FakeScf:
    def __init__(self, region: str = "ap-guangzhou", busy_polls: int = 1, url_member: str = "ExtranetUrl"):
        self.region, self.busy_polls, self.url_member = region, busy_polls, url_member
        self.functions: Dict[str, Dict[str, Any]] = {}
        self.layers: Dict[str, List[Dict[str, Any]]] = {}
        self.calls: List[tuple] = []
        self._urls = 0

    def call(self, action: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        wrong = scf_schema.problems(action, params)
        assert not wrong, f"tccli's schema refuses {action}: {wrong}"
        params = json.loads(json.dumps(params))   # what crosses the wire is JSON
        self.calls.append((action, params))
        return getattr(self, "_" + action)(params)

    def mutations(self) -> List[str]:
        return [a for a, _ in self.calls if not a.startswith(("Get", "List"))]

    # layers
    def _ListLayerVersions(self, p):
        if p["LayerName"] not in self.layers:
            raise ScfApiError("ListLayerVersions", "ResourceNotFound.Layer", p["LayerName"])
        return {"LayerVersions": [{k: v for k, v in lv.items() if k != "Content"}
                                  for lv in reversed(self.layers[p["LayerName"]])]}

    def _PublishLayerVersion(self, p):
        versions = self.layers.setdefault(p["LayerName"], [])
        versions.append({"LayerName": p["LayerName"], "LayerVersion": len(versions) + 1,
                         "Description": p.get("Description", ""), "CompatibleRuntimes": p["CompatibleRuntimes"],
                         "Content": p["Content"], "Status": "Active"})
        return {"LayerVersion": len(versions)}

    def _GetLayerVersion(self, p):
        for lv in self.layers.get(p["LayerName"], []):
            if lv["LayerVersion"] == p["LayerVersion"]:
                return {k: v for k, v in lv.items() if k != "Content"}
        raise ScfApiError("GetLayerVersion", "ResourceNotFound.LayerVersion", p["LayerName"])

    # functions
    def _function(self, action, name, *, active=False):
        if name not in self.functions:
            raise ScfApiError(action, "ResourceNotFound.Function", name)
        function = self.functions[name]
        if active and function["Status"] != "Active":
            raise ScfApiError(action, "FailedOperation.FunctionStatusError", f"{name} is {function['Status']}")
        return function

    def _busy(self, function, status):
        function["Status"], function["_busy"] = status, self.busy_polls

    def _GetFunction(self, p):
        function = self._function("GetFunction", p["FunctionName"])
        if function["_busy"]:
            function["_busy"] -= 1
        elif function["Status"] != "Active":
            function["Status"] = "Active"
        answer = {k: copy.deepcopy(v) for k, v in function.items() if not k.startswith("_") and k != "Code"}
        answer["Triggers"] = [self._read_back(t) for t in function["_triggers"]]
        return answer

    def _CreateFunction(self, p):
        if p["FunctionName"] in self.functions:
            raise ScfApiError("CreateFunction", "ResourceInUse.Function", p["FunctionName"])
        function = dict(p, Namespace=p.get("Namespace", "default"), _triggers=[])
        self.functions[p["FunctionName"]] = function
        self._busy(function, "Creating")
        return {}

    def _UpdateFunctionCode(self, p):
        function = self._function("UpdateFunctionCode", p["FunctionName"], active=True)
        function["Code"] = {"ZipFile": p["ZipFile"]}
        self._busy(function, "Updating")
        return {}

    def _UpdateFunctionConfiguration(self, p):
        function = self._function("UpdateFunctionConfiguration", p["FunctionName"], active=True)
        function.update({k: v for k, v in p.items() if k not in ("FunctionName", "Namespace")})
        self._busy(function, "Updating")
        return {}

    # triggers
    def _read_back(self, trigger):
        out = {k: v for k, v in trigger.items() if not k.startswith("_")}
        out["Enable"] = 1 if trigger["Enable"] == "OPEN" else 0
        if trigger["Type"] == "timer":
            out["TriggerDesc"] = json.dumps({"cron": trigger["TriggerDesc"]})
        if trigger["Type"] == "http":
            desc = json.loads(trigger["TriggerDesc"])
            desc["NetConfig"][self.url_member] = trigger["_url"]
            out["TriggerDesc"] = json.dumps(desc)
        return out

    def _ListTriggers(self, p):
        triggers = [self._read_back(t) for t in self._function("ListTriggers", p["FunctionName"])["_triggers"]]
        offset, limit = p.get("Offset", 0), p.get("Limit", 20)
        return {"TotalCount": len(triggers), "Triggers": triggers[offset:offset + limit]}

    def _CreateTrigger(self, p):
        function = self._function("CreateTrigger", p["FunctionName"], active=True)
        qualifier = p.get("Qualifier", "$LATEST")
        for t in function["_triggers"]:
            if (t["Type"], t["TriggerName"]) == (p["Type"], p["TriggerName"]):
                raise ScfApiError("CreateTrigger", "ResourceInUse.Trigger", p["TriggerName"])
            if p["Type"] == "http" and t["Type"] == "http" and t["Qualifier"] == qualifier:
                raise ScfApiError("CreateTrigger", "ResourceInUse.FunctionUrl", "one URL per alias/version")
        trigger = {"Type": p["Type"], "TriggerName": p["TriggerName"], "TriggerDesc": p.get("TriggerDesc", ""),
                   "Qualifier": qualifier, "Enable": p.get("Enable", "OPEN")}
        if p["Type"] == "http":
            self._urls += 1
            trigger["_url"] = f"https://{APPID}-url{self._urls:04d}.{self.region}.tencentscf.com"
        function["_triggers"].append(trigger)
        return {"TriggerInfo": self._read_back(trigger)}

    def _UpdateTrigger(self, p):
        function = self._function("UpdateTrigger", p["FunctionName"], active=True)
        if p["Type"] not in ("timer", "ckafka", "http"):
            raise ScfApiError("UpdateTrigger", "InvalidParameterValue.Type", p["Type"])
        for t in function["_triggers"]:
            if (t["Type"], t["TriggerName"]) == (p["Type"], p["TriggerName"]):
                t.update({k: p[k] for k in ("TriggerDesc", "Enable") if k in p})
                return {}
        raise ScfApiError("UpdateTrigger", "ResourceNotFound.Trigger", p["TriggerName"])

    def _DeleteTrigger(self, p):
        function = self._function("DeleteTrigger", p["FunctionName"])
        if p["Type"] == "cos" and not p.get("TriggerDesc"):
            raise ScfApiError("DeleteTrigger", "InvalidParameterValue.TriggerDesc", "required for cos")
        before = len(function["_triggers"])
        function["_triggers"] = [t for t in function["_triggers"]
                                 if (t["Type"], t["TriggerName"]) != (p["Type"], p["TriggerName"])]
        if len(function["_triggers"]) == before:
            raise ScfApiError("DeleteTrigger", "ResourceNotFound.Trigger", p["TriggerName"])
        return {}
