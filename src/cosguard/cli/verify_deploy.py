"""`cosguard verify --deployment RECORD`: what can be checked of a live deployment without uploading
anything, from the record deploy/deploy.py wrote: the function URL refuses an unauthenticated POST
(401), the scan trigger's filter is the one deploy/README.md recommends, CI is bound to every intake
bucket (`CIStatus`, doc 460/97481), the ledger's bucket is
unversioned, its location is this deployment's and carries its lifecycle rules, and every function runs the layer version built last (its hash in the version's
description equals layers/build's manifest). SCF is read through the same seam as the deploy
(cli/scf_api.py), so tests run these checks against the local cloud and a fake SCF."""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import CloudError
from .scf_api import UPLOAD_EVENT, ScfApiError, TccliScfApi, cos_filter_of, is_enabled, list_triggers

HASH_MARK = re.compile(r"sha256:([0-9a-f]{64})")
DEFAULT_MANIFEST = Path("layers/build/cosguard-layer.json")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployment", metavar="RECORD",
                        help="deploy/deployed-<stage>.json from deploy/deploy.py: first check the function "
                             "URL, the trigger filter, CI's binding to each intake bucket (CIStatus), the "
                             "ledger's versioning and the layer version")
    parser.add_argument("--layer-manifest", metavar="FILE", default=str(DEFAULT_MANIFEST),
                        help="layers/build.py's manifest of the layer just built (default %(default)s)")
    parser.add_argument("--no-upload", action="store_true",
                        help="with --deployment: only those checks, no EICAR / clean file upload")


def function_url_refuses_anonymous(url: str, post: Optional[Callable[..., Any]] = None) -> Check:
    """The URL is public by design; only a request with the right token may get anything done."""
    import requests
    post = post or requests.post
    name = "function URL refuses an unauthenticated POST"
    try:
        answer = post(url, data=b"<Response><JobsDetail><JobId>verify</JobId></JobsDetail></Response>",
                      headers={"Content-Type": "application/xml"}, timeout=15)
    except requests.RequestException as exc:
        return Check(name, False, f"{url}: {type(exc).__name__}")
    return Check(name, answer.status_code == 401, f"{url} answered {answer.status_code} (expected 401)")


def scan_trigger_filter(api, function: str, settings, bucket: str, prefix: str) -> Check:
    """One enabled upload trigger on the intake bucket (one per intake bucket of the deployment),
    filtered to the intake prefix, which none of cosguard's own writes (quarantine copies, ledger)
    can fall under."""
    name = "scan trigger filter"
    cos = [t for t in list_triggers(api, function) if t.get("Type") == "cos"]
    mine = [t for t in cos if str(t.get("TriggerName", "")).startswith(bucket + ".cos.")]
    if len(mine) != 1:
        bound = ", ".join(str(t.get("TriggerName")) for t in cos) or "no bucket"
        return Check(name, False, f"{function} has {len(mine)} COS triggers on {bucket}, not 1 (bound to {bound})")
    [trigger] = mine
    flt = cos_filter_of(trigger)
    problems = []
    if flt["event"] != UPLOAD_EVENT:
        problems.append(f"event {flt['event']!r}, not {UPLOAD_EVENT}")
    if not is_enabled(trigger):
        problems.append("disabled")
    if not flt["prefix"].strip("/"):
        problems.append("no prefix filter: every key, cosguard's own writes included, is scanned")
    elif flt["prefix"] != prefix:
        problems.append(f"prefix {flt['prefix']!r}, the deployment says {prefix!r}")
    else:
        if settings.quarantine_bucket_for(bucket) == bucket and \
                (settings.quarantine_prefix + prefix).startswith(prefix):
            problems.append(f"quarantine copies ({settings.quarantine_prefix}...) fall under the filter")
        if settings.state_bucket_for(bucket) == bucket and settings.state_prefix.startswith(prefix):
            problems.append(f"the ledger ({settings.state_prefix}) falls under the filter")
    detail = "; ".join(problems) or f"{UPLOAD_EVENT} on {bucket}, prefix {flt['prefix']!r}"
    return Check(name, not problems, detail)


def ci_bound(gateway, bucket: str) -> Check:
    """CI scans only buckets bound to it: `GET /` on the CI host says `CIStatus` on, off or
    unbinding (doc 460/97481); anything but `on` fails every scan of the bucket."""
    from ..infra.ci_binding import ci_status
    status = ci_status(gateway.ci, bucket)
    if status == "on":
        return Check("CI bound to the intake bucket", True, f"{bucket}: CIStatus on")
    return Check("CI bound to the intake bucket", False,
                 f"{bucket}: CIStatus {status!r}, not bound to CI: bind it in the CI console")


def ledger_unversioned(gateway, settings, bucket: str) -> Check:
    """The ledger's conditional writes rely on x-cos-forbid-overwrite, which COS ignores on a bucket
    whose versioning is enabled or suspended (doc 436/7742): it must never have had versioning."""
    ledger = settings.state_bucket_for(bucket)
    status = gateway.versioning_status(ledger)
    return Check("ledger bucket unversioned", status not in ("enabled", "suspended"),
                 f"{ledger}: versioning {status or 'never enabled'}")


def state_location_owned(gateway, settings) -> Check:
    """The state location is claimed by this deployment (domain/owner.py), never shared."""
    from ..domain.owner import check_state_location
    from ..domain.seal import sealer_for
    problems = check_state_location(gateway, sealer_for(settings), settings)
    return Check("state location is this deployment's", not problems,
                 "; ".join(problems) or f"{settings.state_prefix} owned by {settings.deployment}")


def retention_rules(gateway, settings) -> Check:
    """The ledger's lifecycle rules match COSGUARD_RETAIN_*_DAYS (docs/retention.md)."""
    from ..domain.retention import missing_rules
    problems = missing_rules(gateway, settings)
    return Check("ledger lifecycle rules", not problems, "; ".join(problems) or "as configured")


def layer_is_this_build(api, functions: Mapping[str, str], built_sha256: Optional[str]) -> Check:
    """Every function uses one layer version, and it carries the hash of the zip built last."""
    name = "functions run the layer just built"
    if not built_sha256:
        return Check(name, False, "no layer manifest: run python layers/build.py")
    used = {}
    for function in functions.values():
        layers = api.call("GetFunction", {"FunctionName": function}).get("Layers") or []
        used[function] = [(lv.get("LayerName"), int(lv.get("LayerVersion") or 0)) for lv in layers]
    versions = {v for layers in used.values() for v in layers}
    if len(versions) != 1 or any(len(v) != 1 for v in used.values()):
        return Check(name, False, f"functions use {used}")
    [(layer, version)] = versions
    description = str(api.call("GetLayerVersion", {"LayerName": layer, "LayerVersion": version})
                      .get("Description") or "")
    found = HASH_MARK.search(description)
    if not found:
        return Check(name, False, f"{layer} v{version} records no build hash (not deployed by deploy/deploy.py)")
    ok = found.group(1) == built_sha256
    return Check(name, ok, f"{layer} v{version} holds sha256 {found.group(1)[:12]}..., "
                           f"the build is {built_sha256[:12]}...")


def run_checks(args: argparse.Namespace, rt, api=None, post=None) -> List[Check]:
    record: Dict[str, Any] = json.loads(Path(args.deployment).read_text("utf-8"))
    api = api or TccliScfApi(record["region"])
    buckets = [b.strip() for b in str(record.get("intake_bucket") or args.bucket or "").split(",") if b.strip()]
    manifest = Path(args.layer_manifest)
    built = json.loads(manifest.read_text("utf-8")).get("sha256") if manifest.is_file() else None
    checks: List[Check] = [function_url_refuses_anonymous(record["callback_url"], post)]
    per_bucket: List[Tuple[str, Callable[[], Check]]] = [(label, run) for bucket in buckets for label, run in (
        ("scan trigger filter", lambda b=bucket: scan_trigger_filter(
            api, record["functions"]["scan-on-upload"], rt.settings, b, record.get("intake_prefix") or "")),
        ("CI bound to the intake bucket", lambda b=bucket: ci_bound(rt.gateway, b)),
        ("ledger bucket unversioned", lambda b=bucket: ledger_unversioned(rt.gateway, rt.settings, b)))]
    for label, run in (*per_bucket,
                       ("state location is this deployment's",
                        lambda: state_location_owned(rt.gateway, rt.settings)),
                       ("ledger lifecycle rules", lambda: retention_rules(rt.gateway, rt.settings)),
                       ("functions run the layer just built", lambda: layer_is_this_build(
                           api, record["functions"], built))):
        try:
            checks.append(run())
        except (ScfApiError, CloudError) as exc:
            checks.append(Check(label, False, f"could not read: {exc}"))
    return checks


def report(args: argparse.Namespace, rt) -> tuple:
    """Run the checks; print them as a table unless --json. (all passed, the checks as dicts)."""
    from .common import print_table
    checks = run_checks(args, rt)
    if not args.json:
        print_table(["deployment check", "ok", "detail"],
                    [[c.name, "yes" if c.ok else "NO", c.detail] for c in checks])
        print()
    return all(c.ok for c in checks), [vars(c) for c in checks]
