"""`cosguard reconcile` and `cosguard status`: the ledger, read and acted on from an operator's shell."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Dict, Tuple

from ..domain.open_work import tally_open_work
from ..domain.rescans import RescanIndex
from ..domain.restore import Restorer, copy_state
from ..domain.status import handled_as, tag_status
from ..errors import CloudError
from . import arguments
from .common import EXIT_FINDINGS, EXIT_OK, add_settings_arguments, print_json, print_table, reachable, runtime, say
from .failures import UsageError


def register(commands) -> None:
    p = commands.add_parser("reconcile", help="apply lost verdicts, resubmit failed submissions, report overdue jobs",
                            description="One sweep of the ledger, as functions/reconcile_pending runs on its "
                                        "timer. Exit 1 when jobs are overdue or failures need a human.")
    add_settings_arguments(p)
    p.add_argument("--bucket", action="append", default=[], help="only these served buckets (repeatable)")
    p.add_argument("--no-resubmit", action="store_true", help="do not resubmit failed submissions")
    p.add_argument("--time-limit", type=arguments.seconds, metavar="SECONDS",
                   help="stop dispatching before this many seconds, as the timer's invocation does, and "
                        "leave the rest to the next sweep, which resumes there (default: no limit)")
    p.set_defaults(run=run_reconcile)

    s = commands.add_parser("status", help="counts per status, oldest pending job, recent infections",
                            description="Read the ledger and summarise. Exit 1 when jobs are overdue.")
    add_settings_arguments(s)
    s.add_argument("--recent", type=arguments.count, default=10, metavar="N", help="how many recent infections to list (default 10)")
    s.add_argument("--since", type=arguments.days, default=7, metavar="DAYS",
                   help="count jobs closed in the last DAYS days (default 7): read from the ledger's time "
                        "index by listing, whatever the ledger's size")
    s.set_defaults(run=run_status)
    r = commands.add_parser("restore", help="put a quarantined object back where it came from",
                            description="Restore a quarantined object (named by its quarantined key, its "
                                        "original key or its job id) to its original bucket and key, tagged "
                                        "cosguard-status=released. Refuses when the original location "
                                        "is occupied, unless --force.")
    add_settings_arguments(r)
    r.add_argument("target", help="quarantined key (with or without the quarantine prefix), original key, "
                                   "or job id")
    r.add_argument("--bucket", help="the quarantine bucket (default: COSGUARD_QUARANTINE_BUCKET)")
    r.add_argument("--force", action="store_true", help="replace an object at the original location")
    r.set_defaults(run=run_restore)


def run_restore(args: argparse.Namespace) -> int:
    from ..domain.restore import Restorer, RestoreRefused

    rt = runtime(args)
    quarantines = sorted({rt.settings.quarantine_bucket_for(b) for b in rt.settings.buckets})
    if args.bucket and args.bucket not in quarantines:
        raise UsageError(f"--bucket {args.bucket}: not a quarantine bucket of this deployment "
                         f"({', '.join(quarantines)})")
    restorer = Restorer(rt.settings, rt.gateway, rt.scanner.ledger)
    try:
        done = restorer.restore(args.target, force=args.force, quarantine_bucket=args.bucket)
    except RestoreRefused as exc:
        if args.json:
            print_json({"restored": False, "reason": str(exc)})
        else:
            say(f"cosguard restore: refused: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    if args.json:
        print_json({"restored": True, "from": done.source, "to": done.destination, "job_id": done.job_id,
                    "overwrote": done.overwrote, "metadata_not_restored": done.metadata_not_restored})
    else:
        # one restore, one value a line: the two locations get the width a row of five would split
        print_table(["restored", "where"], [["from", done.source], ["to", done.destination], ["job", done.job_id],
                                            ["status", "released"],
                                            ["replaced an object", "yes" if done.overwrote else "no"]])
    if done.metadata_not_restored:
        say("cosguard restore: the upload's metadata " + ", ".join(done.metadata_not_restored)
              + " did not fit beside the quarantine manifest (COS allows 2 KB) and cannot be restored",
              file=sys.stderr)
    return EXIT_OK


def run_reconcile(args: argparse.Namespace) -> int:
    from ..infra.retry import Deadline, within

    rt = runtime(args)
    arguments.served(args.bucket, rt.settings)
    reachable(rt, rt.sweeper.ledgers(args.bucket or None))
    # with --time-limit, what an invocation's deadline does: retries and dispatch stop before it
    with within(Deadline(args.time_limit) if args.time_limit else Deadline()):
        report = rt.sweeper.sweep(args.bucket or None, resubmit=not args.no_resubmit)
    if args.json:
        print_json(report.as_dict())
        return EXIT_FINDINGS if report.problems else EXIT_OK
    rows = [["verdict applied", outcome, count] for outcome, count in sorted(report.applied.items())]
    rows += [["resubmitted", outcome, count] for outcome, count in sorted(report.resubmitted.items())]
    rows += [["still pending", "overdue" if report.overdue else "-", report.pending],
             ["needs a human", "-", len(report.unresolved)]]
    rows += [["looked at", f"{kind}/", count] for kind, count in sorted(report.visited.items())]
    print_table(["sweep", "outcome", "jobs"], rows)
    for place in report.progress:
        if place["resumed_from"]:
            say(f"resumed: {place['ledger']}{place['listing']}/ from after {place['resumed_from']}, "
                "where the last sweep stopped")
    for place in report.progress:
        if not place["complete"]:
            where = f"after {place['stopped_at']}" if place["stopped_at"] else "where the last sweep stopped"
            say(f"partial: the time limit came first in {place['ledger']}{place['listing']}/ after "
                f"{place['visited']} entries; the next sweep resumes {where}")
    if report.overdue:
        print()
        say("overdue jobs:")
        print_table(["job", "bucket", "key", "age (s)", "state"],
                    [[o["job_id"], o["bucket"], o["key"], o["age_seconds"], o["state"]] for o in report.overdue])
    if report.unauthenticated:
        print()
        say(f"unauthenticated documents ignored ({len(report.unauthenticated)}): "
              + ", ".join(report.unauthenticated[:10]))
    if report.dropped:
        print()
        say("failures dropped (nothing left to scan):")
        print_table(["bucket", "key", "was", "why"],
                    [[d["bucket"], d["key"], d["state"], d["why"]] for d in report.dropped])
    if report.unresolved:
        print()
        say("needs a human:")
        print_table(["bucket", "key", "reason"], [[u["bucket"], u["key"], u["reason"]] for u in report.unresolved])
    print()
    say(f"sweep took {report.seconds:.2f} s")
    return EXIT_FINDINGS if report.problems else EXIT_OK


def now_at(settings, entry, gateway=None) -> str:
    """Where the scanned object is now, as far as the ledger knows; with a `gateway`, a quarantined
    copy that is gone or holds other bytes says so (one HEAD)."""
    if entry.outcome == "quarantined":
        copy = Restorer.recorded_copy(entry, settings)
        state = copy_state(gateway, settings, entry) if gateway is not None else "intact"
        return f"{copy['bucket']}/{copy['key']}" + ("" if state == "intact" else f" ({state} there)")
    if entry.outcome == "promoted" and entry.manifest.get("promoted_to"):
        return str(entry.manifest["promoted_to"])
    if entry.outcome == "promoted" and settings.clean_destination:
        destination = settings.clean_destination
        return f"{destination.for_source(entry.bucket)}/{destination.prefix}{entry.key}"
    if entry.outcome in ("deleted", "gone"):
        return "(deleted)"
    return f"{entry.bucket}/{entry.key}"


def run_status(args: argparse.Namespace) -> int:
    rt = runtime(args)
    reachable(rt, rt.sweeper.ledgers())
    now = time.time()
    counts: Dict[str, int] = {}
    handled: Dict[Tuple[str, str], int] = {}
    oldest, oldest_age = None, 0.0
    infections = []
    unreadable = []
    fallbacks = []
    no_room = []
    after_days = rt.settings.rescan_after_days
    rescans: Dict[str, Any] = {"after_days": after_days, "backlog": None, "found": {}}
    for ledger in rt.sweeper.ledgers():
        try:
            if after_days is not None:   # writes due for a scheduled rescan: a LIST of the rescan index
                due = RescanIndex(ledger).count_due(now - after_days * 86400)
                rescans["backlog"] = (rescans["backlog"] or 0) + due
            open_work = tally_open_work(ledger, now)
            for (status, how), count in open_work.rows.items():
                counts[status] = counts.get(status, 0) + count
                handled[(status, how)] = handled.get((status, how), 0) + count
            if open_work.oldest is not None and (oldest is None or open_work.oldest_age > oldest_age):
                oldest, oldest_age = open_work.oldest, open_work.oldest_age
            closed = list(ledger.history.since(args.since * 86400, now))
            for item in closed:
                if item.rescan:   # what rescans found (their verdicts: history.py's `rescan` mark)
                    rescans["found"][item.outcome] = rescans["found"].get(item.outcome, 0) + 1
                status = tag_status(item.outcome)
                counts[status] = counts.get(status, 0) + 1
                how = handled_as(item.outcome)
                if item.no_room:
                    how = f"{item.no_room_action} (no room for the status tag)"
                if item.fallback:
                    how = f"{how} (the copy was refused)"
                handled[(status, how)] = handled.get((status, how), 0) + 1
            # The closed records are read only for the rows printed: --recent of each list.
            newest = sorted(closed, key=lambda c: (c.day, c.time), reverse=True)
            for item in [c for c in newest if tag_status(c.outcome) == "infected"][: args.recent]:
                entry = ledger.get_job(item.job_id)
                if entry is not None:
                    infections.append(entry)
            for item in [c for c in newest if c.no_room or c.fallback][: args.recent]:
                entry = ledger.get_job(item.job_id)
                manifest = entry.manifest if entry is not None and isinstance(entry.manifest, dict) else {}
                limit, fallback = manifest.get("tag_limit"), manifest.get("fallback")
                if isinstance(limit, dict):  # no room for the status tag (domain/dispositions.py)
                    no_room.append({"job_id": entry.job_id, "bucket": entry.bucket, "key": entry.key,
                                    "status": tag_status(item.outcome), "action": limit.get("action"),
                                    "reason": limit.get("reason")})
                if isinstance(fallback, dict):  # the copy was refused for good (domain/fallback.py)
                    fallbacks.append({"job_id": entry.job_id, "bucket": entry.bucket, "key": entry.key,
                                      "action": fallback.get("action"), "reason": fallback.get("reason")})
        except CloudError as exc:  # this ledger's counts are partial; the others are still read
            unreadable.append({"bucket": ledger.bucket, "prefix": ledger.prefix,
                               "reason": f"{exc.code or type(exc).__name__}: {exc}"})
    unauthenticated = rt.scanner.sealer.take_rejected()
    if unauthenticated:
        counts["unauthenticated documents"] = len(unauthenticated)
    infections.sort(key=lambda e: e.closed_at or 0, reverse=True)
    oldest_age = int(oldest_age)  # whole seconds (shown only with `oldest`)
    overdue = oldest is not None and oldest_age > rt.settings.pending_overdue_seconds
    document = {
        "counts": counts,
        "handled": [{"status": status, "handled": how, "count": count}
                    for (status, how), count in sorted(handled.items())],
        "oldest_pending": {"job_id": oldest.job_id, "bucket": oldest.bucket, "key": oldest.key,
                           "age_seconds": oldest_age} if oldest else None,
        "unauthenticated": unauthenticated[:20],
        "unreadable_ledgers": unreadable,
        "fallbacks": fallbacks,
        "status_tag_not_fitted": no_room,
        "rescans": rescans,
        "recent_infections": [{"job_id": e.job_id, "bucket": e.bucket, "key": e.key, "status": "infected",
                               "outcome": e.outcome, "now_at": now_at(rt.settings, e, rt.gateway),
                               "viruses": sorted({f.get("virus", "") for f in e.manifest.get("findings", [])}),
                               "closed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.closed_at or 0))}
                              for e in infections[: args.recent]],
    }
    if args.json:
        print_json(document)
    else:
        print_table(["status", "handled", "objects"], [[r["status"], r["handled"], r["count"]]
                                                      for r in document["handled"]])
        print()
        say(f"oldest pending: {oldest.key} ({oldest.job_id}), {oldest_age} s" if oldest else "oldest pending: none")
        found = ", ".join(f"{n} {outcome}" for outcome, n in sorted(rescans["found"].items())) or "nothing"
        backlog = "scheduled rescans off" if after_days is None else \
            f"{rescans['backlog']} write(s) due (clean verdicts older than {after_days:g} days)"
        say(f"rescans: {backlog}; found by rescans in the last {args.since} days: {found}")
        if fallbacks:
            print()
            say("copies refused by COS (the verdict fell back):")
            print_table(["job", "bucket", "key", "done instead", "why"],
                        [[f["job_id"], f["bucket"], f["key"], f["action"], f["reason"]] for f in fallbacks])
        if no_room:
            print()
            say("no room for cosguard-status among the object's tags (COS allows 10):")
            print_table(["job", "bucket", "key", "status", "done instead"],
                        [[n["job_id"], n["bucket"], n["key"], n["status"], n["action"]] for n in no_room])
        if document["recent_infections"]:
            print()
            say("recent infections:")
            # every row is `infected` (the JSON says so): the table spends its 100 columns on where
            print_table(["closed (UTC)", "bucket", "key", "now at", "viruses"],
                        [[i["closed_at"][:16].replace("T", " "), i["bucket"], i["key"], i["now_at"],
                          ", ".join(i["viruses"])] for i in document["recent_infections"]])
    if unauthenticated:
        say(f"cosguard status: {len(unauthenticated)} ledger documents carry no valid seal or cannot be read, "
              "and were ignored (written by someone else?): " + ", ".join(unauthenticated[:5]), file=sys.stderr)
    for problem in unreadable:
        say(f"cosguard status: the ledger {problem['bucket']}/{problem['prefix']} was not fully read "
              f"(counts are partial): {problem['reason']}", file=sys.stderr)
    return EXIT_FINDINGS if overdue or unauthenticated or unreadable else EXIT_OK
