"""`cosguard reseal`: after rotating COSGUARD_CALLBACK_TOKEN, seal what a previous token sealed
(bulk/reseal.py; the runbook is docs/rotation.md)."""
from __future__ import annotations

import argparse
import sys

from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, reachable, runtime, say


def register(commands) -> None:
    p = commands.add_parser("reseal", help="re-seal under the current token what a previous one sealed",
                            description="After a rotation (COSGUARD_CALLBACK_TOKEN new, the old one in "
                                        "COSGUARD_CALLBACK_TOKEN_PREVIOUS): rewrite ledger documents, quarantine "
                                        "manifests and release/promotion markers sealed by a previous token, "
                                        "and ledger documents of an older format. Exit 1 on errors or forged "
                                        "documents. See docs/rotation.md.")
    add_settings_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="count what would be resealed, change nothing")
    p.set_defaults(run=run_reseal)


def run_reseal(args: argparse.Namespace) -> int:
    from ..bulk.reseal import reseal

    rt = runtime(args)
    reachable(rt, rt.sweeper.ledgers())
    report = reseal(rt.settings, rt.gateway, rt.sealer, rt.sweeper.ledgers(), dry_run=args.dry_run)
    if args.json:
        print_json(report.as_dict())
    else:
        verb = "would reseal" if report.dry_run else "resealed"
        rows = [[verb, name, count] for name, count in sorted(report.resealed.items())]
        rows += [["already current", "-", report.current]]
        rows += [["left in flight", name, count] for name, count in sorted(report.in_flight.items())]
        rows += [["forged (ignored)", "-", report.forged]]
        print_table(["reseal", "what", "count"], rows)
        say(f"current key id: {report.key_id}")
    for line in report.errors:
        say(f"cosguard reseal: {line}", file=sys.stderr)
    if report.in_flight:
        say("cosguard reseal: " + ", ".join(f"{n} {k}/" for k, n in sorted(report.in_flight.items()))
            + " documents are still sealed by a previous token; their own flow re-seals them: keep "
              "COSGUARD_CALLBACK_TOKEN_PREVIOUS until a dry run shows none", file=sys.stderr)
    return EXIT_FINDINGS if report.problems else EXIT_OK
