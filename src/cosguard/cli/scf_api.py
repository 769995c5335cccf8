"""The seam between cosguard's deploy tooling (deploy/deploy.py, `cosguard verify --deployment`) and
SCF's cloud API: one method, `call(action, params)`, answering the action's Response as a dict.

The real implementation runs `tccli scf <Action> --region R --cli-input-json file://...`, so it uses
the operator's `tccli configure` credentials and the schema tccli ships; tests drive the same
orchestration against a fake that enforces that schema (tests/deploy/fake_scf.py). Also here: how
a trigger read back from SCF is understood (its TriggerDesc, the function URL inside it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional

# Trigger descriptions, doc 583/39901 (en 583/34880); function URL = CreateTrigger Type=http,
# doc 583/100227. The COS trigger's event type is cosguard's one UPLOAD_EVENT.
from ..triggers.events import UPLOAD_EVENT  # noqa: F401  (verify_deploy imports it from here)


class ScfApiError(Exception):
    """An SCF API call failed; `code` is SCF's error code (e.g. ResourceNotFound.Function)."""

    def __init__(self, action: str, code: str, message: str):
        super().__init__(f"{action}: {code}: {message}")
        self.action, self.code, self.message = action, code, message

    @property
    def not_found(self) -> bool:
        return self.code.startswith("ResourceNotFound")


class TccliScfApi:
    """SCF's API through the `tccli` command (pip install tccli; tccli configure)."""

    def __init__(self, region: str, *, tccli: Optional[str] = None, timeout: float = 120.0,
                 extra_args: Iterable[str] = ()):
        self.region = region
        self.tccli = tccli or shutil.which("tccli") or "tccli"
        self.timeout = timeout
        self.extra_args = list(extra_args)   # e.g. --profile NAME

    def call(self, action: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        # Parameters go through a file: a layer's base64 zip is far beyond one argv string's limit.
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as request:
            json.dump(dict(params), request)
        try:
            done = subprocess.run([self.tccli, "scf", action, "--region", self.region,
                                   "--cli-input-json", "file://" + request.name] + self.extra_args,
                                  capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScfApiError(action, "ToolFailed", f"{self.tccli}: {exc}") from exc
        finally:
            os.unlink(request.name)
        if done.returncode != 0:
            text = (done.stderr or "") + (done.stdout or "")
            match = re.search(r"code:\s*([A-Za-z][\w.]*)", text)
            raise ScfApiError(action, match.group(1) if match else "ToolFailed", text.strip()[-500:])
        try:
            answer = json.loads(done.stdout or "{}")
        except ValueError as exc:
            raise ScfApiError(action, "BadAnswer", done.stdout[-300:]) from exc
        return answer.get("Response", answer) if isinstance(answer, dict) else {}


# -- reading triggers back ---------------------------------------------------------------------
def trigger_desc(trigger: Mapping[str, Any]) -> Any:
    """A read-back TriggerDesc: parsed JSON where it is JSON, else the raw string (a timer's cron)."""
    raw = trigger.get("TriggerDesc")
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def cron_of(trigger: Mapping[str, Any]) -> str:
    """A timer trigger's cron: SCF answers it as `{"cron": "..."}` though it is created as the bare
    expression (observed by Tencent's own deploy toolkit, triggers/timer.ts); accept both."""
    desc = trigger_desc(trigger)
    return str(desc.get("cron", "")) if isinstance(desc, dict) else str(desc or "")


def cos_filter_of(trigger: Mapping[str, Any]) -> Dict[str, str]:
    """{"event", "prefix", "suffix"} of a COS trigger read back from SCF."""
    desc = trigger_desc(trigger)
    desc = desc if isinstance(desc, dict) else {}
    flt = desc.get("filter")
    flt = flt if isinstance(flt, dict) else {}
    return {"event": str(desc.get("event", "")), "prefix": str(flt.get("Prefix", "") or ""),
            "suffix": str(flt.get("Suffix", "") or "")}


def is_enabled(trigger: Mapping[str, Any]) -> bool:
    """Enable is written OPEN/CLOSE but read back as 1/0 (TriggerInfo.Enable is an integer)."""
    return str(trigger.get("Enable", "")).upper() in ("1", "OPEN", "TRUE")


def _urls(value: Any, path: str = "") -> Iterable[tuple]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _urls(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for inner in value:
            yield from _urls(inner, path)
    elif isinstance(value, str) and value.startswith(("https://", "http://")):
        yield path, value


def function_url(triggers: Iterable[Mapping[str, Any]], qualifier: str = "$DEFAULT") -> Optional[str]:
    """The public (extranet) function URL among `triggers`, or None while SCF shows none.

    Unknown (docs/tencent-facts.md) which member of the read-back TriggerDesc carries the URL: a public
    deploy script reads `NetConfig.WssExtranetUrl` for WebSocket URLs, so the https one is taken
    from the member whose path names Extranet (not Wss, not Intranet), else the only https URL.
    """
    for trigger in triggers:
        if trigger.get("Type") != "http" or (trigger.get("Qualifier") or qualifier) != qualifier:
            continue
        found = [(p, u) for p, u in _urls(trigger_desc(trigger)) if not u.startswith("http://")]
        public = [u for p, u in found if "extranet" in p.lower() and "wss" not in p.lower()]
        if public:
            return public[0]
        others = [u for p, u in found if "intranet" not in p.lower() and "wss" not in p.lower()]
        if len(others) == 1:
            return others[0]
    return None


def list_triggers(api, function: str, namespace: str = "default") -> List[Dict[str, Any]]:
    """Every trigger of `function` (ListTriggers pages through 20 by default)."""
    triggers: List[Dict[str, Any]] = []
    while True:
        page = api.call("ListTriggers", {"FunctionName": function, "Namespace": namespace,
                                         "Offset": len(triggers), "Limit": 100})
        batch = list(page.get("Triggers") or [])
        triggers.extend(batch)
        if not batch or len(triggers) >= int(page.get("TotalCount") or 0):
            return triggers
