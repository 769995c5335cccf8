"""`cosguard verify`: prove a deployment works on the real bucket: upload EICAR and a clean file,
wait, and report what happened to each. Exit 0 only when both ended as configured."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional

from ..domain.actions import quarantined_copies
from ..domain.layout import layout_warnings
from ..domain.status import Action
from ..errors import CloudError, NotFoundError
from . import arguments, verify_deploy
from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, runtime, say


def register(commands) -> None:
    p = commands.add_parser("verify", help="upload EICAR and a clean file to a protected bucket and report both",
                            description="End-to-end check of a deployment: uploads the EICAR test file and "
                                        "a clean file under PREFIX, waits for cosguard to act, reports both "
                                        "outcomes, and removes what it left behind (unless --keep).")
    add_settings_arguments(p)
    p.add_argument("--bucket", required=True,
                   help="a bucket the deployment protects (<name>-<appid>, one of COSGUARD_BUCKETS)")
    p.add_argument("--prefix", default=None,
                   help="key prefix inside the scan trigger's filter (default: the first of "
                        "COSGUARD_INCLUDE_PREFIXES + cosguard-verify/, else cosguard-verify/)")
    p.add_argument("--timeout", type=arguments.seconds, default=180.0, metavar="SECONDS", help="seconds to wait (default 180)")
    p.add_argument("--keep", action="store_true", help="leave the test objects in place")
    verify_deploy.add_arguments(p)
    p.set_defaults(run=run)


def _tags(gateway, bucket: str, key: str) -> Optional[Dict[str, str]]:
    try:
        return gateway.get_tags(bucket, key)
    except NotFoundError:
        return None


def _exists(gateway, bucket: str, key: str) -> bool:
    try:
        gateway.head(bucket, key)
        return True
    except NotFoundError:
        return False


def layout_checks(settings, gateway, bucket: str) -> List[str]:
    """Warnings about state or evidence kept where uploaders can write, and unversioned intake."""
    try:
        versioning = {bucket: gateway.versioning_status(bucket)}
    except CloudError:
        versioning = {bucket: "unknown (GetBucketVersioning failed)"}
    return layout_warnings(settings, versioning)


def run(args: argparse.Namespace) -> int:
    from ..local.samples import clean_text, eicar  # sample bytes only: no emulator is started

    rt = runtime(args)
    settings, gateway = rt.settings, rt.gateway
    arguments.served([args.bucket], settings)
    deployment_ok, deployment_checks = verify_deploy.report(args, rt) if args.deployment else (True, None)
    if args.deployment and args.no_upload:
        if args.json:
            print_json({"ok": deployment_ok, "deployment": deployment_checks})
        return EXIT_OK if deployment_ok else EXIT_FINDINGS
    stamp = time.strftime("%Y%m%dT%H%M%S")
    prefix = args.prefix
    if prefix is None:
        prefix = (settings.include_prefixes[0] if settings.include_prefixes else "") + "cosguard-verify/"
    prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    infected_key, clean_key = f"{prefix}{stamp}-eicar.com", f"{prefix}{stamp}-clean.txt"
    gateway.upload(args.bucket, infected_key, eicar())
    gateway.upload(args.bucket, clean_key, clean_text())
    warnings = layout_checks(settings, gateway, args.bucket)
    quarantine_bucket = settings.quarantine_bucket_for(args.bucket)
    quarantined_key = None
    destination = settings.clean_destination
    promoted = (destination.for_source(args.bucket), destination.prefix + clean_key) if destination else None

    def infected_outcome() -> Optional[str]:
        if settings.infected_action is Action.TAG:
            status = (_tags(gateway, args.bucket, infected_key) or {}).get("cosguard-status")
            return "tagged infected" if status == "infected" else None
        if _exists(gateway, args.bucket, infected_key):
            return None
        if settings.infected_action is Action.DELETE:
            return "deleted"
        nonlocal quarantined_key
        quarantined_key = next(iter(quarantined_copies(gateway, settings, args.bucket, infected_key)[1]), None)
        return "quarantined" if quarantined_key else None

    def clean_outcome() -> Optional[str]:
        if promoted:
            return "promoted" if _exists(gateway, *promoted) else None
        status = (_tags(gateway, args.bucket, clean_key) or {}).get("cosguard-status")
        return "tagged clean" if status == "clean" else (f"tagged {status}" if status not in (None, "pending") else None)

    results: Dict[str, Optional[str]] = {"eicar": None, "clean": None}
    started = time.monotonic()
    while time.monotonic() - started < args.timeout and None in results.values():
        try:
            results["eicar"] = results["eicar"] or infected_outcome()
            results["clean"] = results["clean"] or clean_outcome()
        except CloudError:
            pass  # transient: poll again
        if None in results.values():
            time.sleep(1.0)
    elapsed = time.monotonic() - started
    ok = results["eicar"] is not None and results["clean"] in ("tagged clean", "promoted") and deployment_ok
    if not args.keep:
        for bucket, key in ((args.bucket, clean_key), (args.bucket, infected_key),
                            (quarantine_bucket, quarantined_key), promoted or (args.bucket, clean_key)):
            if key is None:
                continue
            try:
                gateway.delete(bucket, key)
            except CloudError:
                pass
    rows = [["EICAR test file", infected_key, results["eicar"] or "no verdict in time"],
            ["clean file", clean_key, results["clean"] or "no verdict in time"]]
    if args.json:
        print_json({"ok": ok, "seconds": round(elapsed, 1), "eicar": results["eicar"], "clean": results["clean"],
                    "keys": [infected_key, clean_key], "deployment": deployment_checks, "warnings": warnings})
    else:
        print_table(["upload", "key", "outcome"], rows)
        print()
        say(f"{'deployment works' if ok else 'DEPLOYMENT CHECK FAILED'} ({elapsed:.1f} s)")
        for warning in warnings:
            say(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FINDINGS
