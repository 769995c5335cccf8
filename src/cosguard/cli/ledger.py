"""`cosguard ledger forget KEY`: the exit by hand from any ledger state (docs/ledger-states.md);
`cosguard ledger ack ID`: a possible write loss a human has dealt with leaves the report.

The sweep drops a failure on its own once the object is gone or overwritten, and submits a refused
one again when its backoff is over; this is for an operator who has decided otherwise (e.g. an
object that will never be scannable and that they have dealt with themselves)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Tuple

from ..errors import CloudError
from ..infra.logs import event, get_logger
from .common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    add_settings_arguments,
    print_json,
    print_table,
    reachable,
    runtime,
    say,
)

log = get_logger("cosguard.cli.ledger")


def register(commands) -> None:
    p = commands.add_parser("ledger", help="repair the ledger by hand (forget one upload's stuck failure, "
                                           "acknowledge a possible write loss)",
                            description="Repair cosguard's ledger by hand.")
    actions = p.add_subparsers(dest="ledger_action", metavar="ACTION")
    f = actions.add_parser("forget", help="forget one key's failed submissions and claims",
                           description="Remove from the ledger what keeps KEY's uploads open: retry entries "
                                       "(failed, refused or held submissions), failed claims, claims whose "
                                       "holder died, and documents there that cosguard cannot read. An open "
                                       "job or a live claim is kept unless --force. Says what it removed; "
                                       "exit 1 when nothing was.")
    add_settings_arguments(f)
    f.add_argument("key", help="the object key, exactly")
    f.add_argument("--bucket",
                   help="the intake bucket (<name>-<appid>; default: the only one COSGUARD_BUCKETS names)")
    f.add_argument("--force", action="store_true",
                   help="also forget an open job or a live claim (its verdict is then ignored)")
    f.set_defaults(run=run_forget)
    a = actions.add_parser("ack", help="acknowledge a possible write loss (it leaves the report and status)",
                           description="Delete the ledger's record of one possible overwrite-race loss once "
                                       "you have checked the key (and had it uploaded again if it was lost): "
                                       "`cosguard report` and `cosguard status` no longer list it. ID is the "
                                       "one they show. A document at that name that cosguard did not seal is "
                                       "deleted too. Exit 1 when there is no such record.")
    add_settings_arguments(a)
    a.add_argument("id", metavar="ID", help="the loss's id, as the report shows it (40 hex digits)")
    a.add_argument("--bucket",
                   help="the intake bucket (<name>-<appid>; default: the only one COSGUARD_BUCKETS names)")
    a.set_defaults(run=run_ack)
    p.set_defaults(run=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _fail(args: argparse.Namespace, message: str, code: int, action: str = "forget") -> int:
    if args.json:
        print_json({"forgotten" if action == "forget" else "acknowledged": False, "reason": message})
    say(f"cosguard ledger {action}: {message}", file=sys.stderr)
    return code


def _bucket(rt, args: argparse.Namespace) -> Tuple[Optional[str], str]:
    """The intake bucket named (or the only one served), else None and why."""
    buckets = rt.settings.buckets
    bucket = args.bucket or (buckets[0] if len(buckets) == 1 else None)
    if bucket is None:
        return None, f"--bucket is required: this deployment serves {len(buckets)} buckets ({', '.join(buckets)})"
    if not rt.settings.serves(bucket):
        return None, f"{bucket} is not a bucket this deployment serves (COSGUARD_BUCKETS: {', '.join(buckets)})"
    return bucket, ""


def run_forget(args: argparse.Namespace) -> int:
    rt = runtime(args)
    bucket, problem = _bucket(rt, args)
    if bucket is None:
        return _fail(args, problem, EXIT_USAGE)
    if not args.key:
        return _fail(args, "KEY is empty", EXIT_USAGE)
    ledger = rt.scanner.ledger(bucket)
    reachable(rt, [ledger])
    try:
        removed, kept = ledger.forget_upload(bucket, args.key, force=args.force)
    except CloudError as exc:
        return _fail(args, f"the ledger {ledger.bucket}/{ledger.prefix} could not be read or changed: "
                           f"{exc.code or type(exc).__name__}: {exc}", EXIT_FINDINGS)
    for document in removed:
        event(log, "ledger_document_forgotten", logging.WARNING, bucket=bucket, key=args.key, **document)
    if args.json:
        print_json({"forgotten": bool(removed), "bucket": bucket, "key": args.key, "removed": removed, "kept": kept})
    else:
        if removed:
            print_table(["removed", "state", "job or reason"],
                        [[d["document"], d["state"], d.get("job_id") or d.get("reason") or "-"] for d in removed])
        for document in kept:
            say(f"kept {document['document']} ({document['why']})")
    if not removed:
        message = (f"nothing removed for {bucket}/{args.key}: only an open job or a live claim is on record"
                   if kept else f"nothing on record for {bucket}/{args.key}")
        say(f"cosguard ledger forget: {message}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK


def run_ack(args: argparse.Namespace) -> int:
    from ..domain.losses import ID_PATTERN
    rt = runtime(args)
    bucket, problem = _bucket(rt, args)
    if bucket is None:
        return _fail(args, problem, EXIT_USAGE, "ack")
    if not ID_PATTERN.match(args.id):
        return _fail(args, f"{args.id!r} is not a loss id (40 hex digits, as `cosguard report` shows it)",
                     EXIT_USAGE, "ack")
    ledger = rt.scanner.ledger(bucket)
    reachable(rt, [ledger])
    try:
        found = ledger.acknowledge_loss(bucket, args.id)
    except CloudError as exc:
        return _fail(args, f"the ledger {ledger.bucket}/{ledger.prefix} could not be read or changed: "
                           f"{exc.code or type(exc).__name__}: {exc}", EXIT_FINDINGS, "ack")
    if found is None:
        return _fail(args, f"no possible write loss {args.id} on record for {bucket} (acknowledged already?)",
                     EXIT_FINDINGS, "ack")
    event(log, "possible_loss_acknowledged", logging.WARNING, bucket=bucket, key=found.get("key"),
          loss_id=args.id, document=found["document"], state=found["state"])
    if args.json:
        print_json({"acknowledged": True, "bucket": bucket, "id": args.id, "key": found.get("key"),
                    "state": found["state"], "document": found["document"]})
    else:
        print_table(["acknowledged", "bucket", "key", "state"],
                    [[args.id, bucket, found.get("key") or "-", found["state"]]])
    return EXIT_OK
