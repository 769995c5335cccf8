"""`cosguard reconcile` and `cosguard status`: the ledger, read and acted on from an operator's shell."""
from __future__ import annotations

import argparse
import sys
import time

from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, runtime


def register(commands) -> None:
    p = commands.add_parser("reconcile", help="apply lost verdicts, resubmit failed submissions, report overdue jobs",
                            description="One sweep of the ledger, as functions/reconcile_pending runs on its "
                                        "timer. Exit 1 when jobs are overdue or failures need a human.")
    add_settings_arguments(p)
    p.add_argument("--bucket", action="append", default=[], help="only these served buckets (repeatable)")
    p.add_argument("--no-resubmit", action="store_true", help="do not resubmit failed submissions")
    p.set_defaults(run=run_reconcile)

    s = commands.add_parser("status", help="counts per status, oldest pending job, recent infections",
                            description="Read the ledger and summarise. Exit 1 when jobs are overdue.")
    add_settings_arguments(s)
    s.add_argument("--recent", type=int, default=10, help="how many recent infections to list (default 10)")
    s.set_defaults(run=run_status)


    r = commands.add_parser("restore", help="put a quarantined object back where it came from",
                            description="Restore a quarantined object (named by its quarantined key or "
                                        "its job id) to its original bucket and key, tagged "
                                        "cosguard-status=released. Refuses when the original location "
                                        "is occupied, unless --force.")
    add_settings_arguments(r)
    r.add_argument("target", help="quarantined key (with or without the quarantine prefix) or job id")
    r.add_argument("--bucket", help="the quarantine bucket (default: COSGUARD_QUARANTINE_BUCKET)")
    r.add_argument("--force", action="store_true", help="replace an object at the original location")
    r.set_defaults(run=run_restore)


def run_restore(args: argparse.Namespace) -> int:
    from ..domain.restore import Restorer, RestoreRefused

    rt = runtime(args)
    restorer = Restorer(rt.settings, rt.gateway, rt.scanner.ledger)
    try:
        done = restorer.restore(args.target, force=args.force, quarantine_bucket=args.bucket)
    except RestoreRefused as exc:
        if args.json:
            print_json({"restored": False, "reason": str(exc)})
        else:
            print(f"cosguard restore: refused: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    if args.json:
        print_json({"restored": True, "from": done.source, "to": done.destination, "job_id": done.job_id,
                    "overwrote": done.overwrote})
    else:
        print(f"restored {done.source} -> {done.destination} (tagged released"
              + (", replaced the object that was there)" if done.overwrote else ")"))
    return EXIT_OK


def run_reconcile(args: argparse.Namespace) -> int:
    report = runtime(args).sweeper.sweep(args.bucket or None, resubmit=not args.no_resubmit)
    if args.json:
        print_json(report.as_dict())
    else:
        print(f"applied: {report.applied or 'none'}; still pending: {report.pending}; "
              f"resubmitted: {report.resubmitted or 'none'}; {report.seconds:.2f} s")
        if report.overdue:
            print("\noverdue jobs:")
            print_table(["job", "bucket", "key", "age (s)", "state"],
                        [[o["job_id"], o["bucket"], o["key"], o["age_seconds"], o["state"]] for o in report.overdue])
        if report.unauthenticated:
            print(f"\nunauthenticated documents ignored ({len(report.unauthenticated)}): "
                  + ", ".join(report.unauthenticated[:10]))
        if report.unresolved:
            print("\nneeds a human:")
            print_table(["bucket", "key", "reason"], [[u["bucket"], u["key"], u["reason"]] for u in report.unresolved])
    return EXIT_FINDINGS if report.problems else EXIT_OK


def run_status(args: argparse.Namespace) -> int:
    from ..domain.restore import Restorer

    rt = runtime(args)
    now = time.time()
    counts = {}
    oldest = None
    infections = []
    for ledger in rt.sweeper.ledgers():
        for entry in ledger.open_jobs():
            counts["pending"] = counts.get("pending", 0) + 1
            oldest = entry if oldest is None or entry.submitted_at < oldest.submitted_at else oldest
        for entry in ledger.closed_jobs():
            counts[entry.outcome or "unknown"] = counts.get(entry.outcome or "unknown", 0) + 1
            if entry.outcome in ("quarantined", "deleted", "infected"):
                infections.append(entry)
        for doc in ledger.retries():
            name = "submission failed" + ("" if doc.get("retryable") else " (permanent)")
            counts[name] = counts.get(name, 0) + 1
    unauthenticated = rt.scanner.sealer.take_rejected()
    if unauthenticated:
        counts["unauthenticated documents"] = len(unauthenticated)
    infections.sort(key=lambda e: e.closed_at or 0, reverse=True)
    oldest_age = int(now - oldest.submitted_at) if oldest else None
    overdue = oldest is not None and now - oldest.submitted_at > rt.settings.pending_overdue_seconds
    document = {
        "counts": counts,
        "oldest_pending": {"job_id": oldest.job_id, "bucket": oldest.bucket, "key": oldest.key,
                           "age_seconds": oldest_age} if oldest else None,
        "unauthenticated": unauthenticated[:20],
        "recent_infections": [{"job_id": e.job_id, "bucket": e.bucket, "key": e.key, "outcome": e.outcome,
                               "viruses": sorted({f.get("virus", "") for f in e.manifest.get("findings", [])}),
                               "quarantined": "/".join(Restorer.recorded_copy(e, rt.settings)[k] for k in ("bucket", "key"))
                               if e.outcome == "quarantined" else None,
                               "closed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.closed_at or 0))}
                              for e in infections[: args.recent]],
    }
    if args.json:
        print_json(document)
    else:
        print_table(["status", "count"], sorted(counts.items()))
        print()
        print(f"oldest pending: {oldest.key} ({oldest.job_id}), {oldest_age} s" if oldest else "oldest pending: none")
        if document["recent_infections"]:
            print()
            print_table(["closed at", "bucket", "key", "outcome", "viruses", "quarantined at"],
                        [[i["closed_at"], i["bucket"], i["key"], i["outcome"], ", ".join(i["viruses"]), i["quarantined"]]
                         for i in document["recent_infections"]])
    if unauthenticated:
        print(f"cosguard status: {len(unauthenticated)} ledger documents carry no valid seal and were "
              "ignored (written by someone else?): " + ", ".join(unauthenticated[:5]), file=sys.stderr)
    return EXIT_FINDINGS if overdue or unauthenticated else EXIT_OK
