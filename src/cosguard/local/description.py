"""The deployment description (serverless.yml + the sls-*/ instances, resolved with a .env) read for
the local cloud, so `cosguard local --description DIR` is wired exactly as deploy/deploy.py and
`scf deploy` wire the cloud: the buckets and prefix of scan-on-upload's COS trigger, the quarantine
and ledger buckets, and the functions' environment. One reader: the checkout's own
deploy/preflight.py (the same functions the deploy script uses), loaded from DIR."""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional

SCAN_INSTANCE = "scan-on-upload"
# The local runtime provides these itself (its own function URL, endpoints and keys).
LOCAL_OWNED = ("COSGUARD_CALLBACK_URL",)


class DescriptionError(Exception):
    pass


@dataclass
class LocalWiring:
    region: str
    buckets: List[str]
    trigger_prefix: str
    quarantine_bucket: Optional[str]
    extra_buckets: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)


def _preflight(root: Path):
    path = root / "deploy" / "preflight.py"
    if not path.is_file():
        raise DescriptionError(f"{root} holds no deploy/preflight.py: not a cosguard checkout")
    name = "cosguard_description_preflight"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None   # a .py file's, with a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # its dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def read_description(root: Path, env: Optional[Mapping[str, str]] = None) -> LocalWiring:
    """How the description at `root` wires scan-on-upload, with `env` (default: root/.env)."""
    preflight = _preflight(root)
    if env is None:
        dotenv = root / ".env"
        if not dotenv.is_file():
            raise DescriptionError(f"no {dotenv}: copy .env.example and fill it in")
        env = preflight.parse_dotenv(dotenv.read_text("utf-8"))
    try:
        app = preflight.load_app(root)
    except preflight.AppError as exc:
        raise DescriptionError(str(exc)) from exc
    scan = app.instances.get(SCAN_INSTANCE)
    triggers = preflight.cos_triggers(scan) if scan else []
    if len(triggers) != 1:
        raise DescriptionError(f"{SCAN_INSTANCE} needs exactly one COS trigger, has {len(triggers)}")
    env = preflight.deployment_env(app, env)
    every = preflight.cos_trigger_params(triggers[0], env)   # one per intake bucket
    buckets = [str(params.get("bucket") or "").split(".cos.", 1)[0] for params in every]
    prefix = str((every[0].get("filter") or {}).get("prefix") or "")
    environment = {k: v for k, v in preflight.function_environment(scan, env).items() if k not in LOCAL_OWNED}
    quarantine = environment.get("COSGUARD_QUARANTINE_BUCKET") or None
    state = environment.get("COSGUARD_STATE_BUCKET") or None
    return LocalWiring(region=environment.get("COSGUARD_REGION") or "ap-guangzhou", buckets=buckets,
                       trigger_prefix=prefix, quarantine_bucket=quarantine,
                       extra_buckets=[b for b in (state,) if b and b not in (*buckets, quarantine)],
                       env=environment)
