"""`cosguard probe`: answer, on a live deployment, what Tencent leaves undocumented (bulk/probe.py),
and print one row per question: the observed answer, the setting or code branch it selects, and
whether the deployment fits it. docs/probe.md explains each row."""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional

from . import arguments
from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, runtime, say

DESCRIPTION = (
    "Run once after deploying: uploads a few scratch objects under <intake prefix>cosguard-probe/<run>/, "
    "switches the functions' probe mode on for that prefix only (a sealed marker in the state bucket), "
    "observes COS's trigger events, CI's callbacks and jobs, and COS's answers, removes everything it "
    "wrote, and reports each answer with what it means for this deployment. Needs, beyond the "
    "deployment's own permissions, those listed before it starts (questions without them are skipped).")


def register(commands) -> None:
    p = commands.add_parser("probe", help="observe Tencent's undocumented behaviour on this deployment and report",
                            description=DESCRIPTION)
    add_settings_arguments(p)
    p.add_argument("--bucket", default=None,
                   help="the intake bucket for scratch objects (default: the first of COSGUARD_BUCKETS)")
    p.add_argument("--prefix", default=None,
                   help="a key prefix inside the scan trigger's filter for the scratch objects (default: the "
                        "first of COSGUARD_INCLUDE_PREFIXES, else none); cosguard-probe/<run>/ is added")
    p.add_argument("--unbound-bucket", default="", metavar="BUCKET",
                   help="a bucket not bound to CI: observe CI's error for it (nothing is written there)")
    p.add_argument("--timeout", type=arguments.seconds, default=180.0, metavar="SECONDS",
                   help="stop waiting after this many seconds (default 180)")
    p.add_argument("--retry-wait", type=arguments.seconds, default=60.0, metavar="SECONDS",
                   help="how long to wait for CI to re-send a callback answered with an error (default 60)")
    p.set_defaults(run=run)


def needs_lines() -> List[List[str]]:
    from ..bulk.probe import NEEDS
    return [[permission, why, skipped] for permission, why, skipped in NEEDS]


def run(args: argparse.Namespace, **hooks: Any) -> int:
    """`hooks`: ProbeOptions fields a test sets (the emulator's clock for `pause`, its idle for `quiet`)."""
    from ..bulk.probe import Probe, ProbeOptions
    from ..bulk.probe_answers import rows

    rt = runtime(args)
    settings = rt.settings
    if args.bucket:
        arguments.served([args.bucket], settings)
    options = ProbeOptions(timeout=args.timeout, bucket=args.bucket or "", prefix=args.prefix,
                           unbound_bucket=args.unbound_bucket,
                           retry_wait=args.retry_wait, **hooks)
    probe = Probe(settings, rt.gateway, rt.sealer, options)
    if not args.json:
        say(f"cosguard probe: run {probe.run.run}, scratch objects under {probe.run.bucket}/{probe.run.prefix} "
            f"and {probe.run.state_bucket}/{probe.run.records}")
        say("permissions needed beyond the deployment's (without one, the questions named are skipped):")
        for permission, why, skipped in needs_lines():
            say(f"  {permission}: {why} (else skipped: {skipped})")
        print()
    observations = probe.run_all()
    found = rows(observations)
    mismatched = [r for r in found if r.matches == "NO"]
    if args.json:
        document: Dict[str, Optional[object]] = {
            "run": probe.run.run, "bucket": probe.run.bucket, "prefix": probe.run.prefix,
            "needs": [dict(zip(("permission", "for", "skipped_without"), n)) for n in needs_lines()],
            "questions": [r.as_dict() for r in found], "elapsed_seconds": observations.elapsed,
            "timed_out": observations.timed_out, "cleanup_problems": observations.cleanup,
            "ok": not mismatched and not observations.cleanup}
        print_json(document)
    else:
        print_table(["id", "fits", "observed"], [[r.id, r.matches, r.observed] for r in found])
        print()
        for r in found:   # what each answer selects in cosguard, and what to do about it
            say(f"{r.id}: {r.advice}" + (f" [{r.selects}]" if r.selects != "-" else ""))
        print()
        say(f"{len(found)} questions, {sum(r.matches == 'skipped' for r in found)} skipped, "
            f"{len(mismatched)} needing a change; {observations.elapsed} s"
            + ("; timed out waiting" if observations.timed_out else ""))
        for problem in observations.cleanup:
            say(f"cleanup: could not remove {problem}")
    return EXIT_FINDINGS if mismatched or observations.cleanup else EXIT_OK
