"""`cosguard local`: the local cloud and cosguard deployed on it, in the foreground, until Ctrl-C
or SIGTERM. Upload to the bucket with any COS client and watch quarantine happen."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from . import arguments
from .common import say


def register(commands) -> None:
    p = commands.add_parser("local", help="run local COS + CI + cosguard's functions on loopback",
                            description="Start local COS, CI and the SCF runtime with cosguard deployed, "
                                        "in the foreground; print one JSON ready line with endpoints, keys, "
                                        "the callback URL, which keys the upload trigger watches (`watches`) "
                                        "and the env file. The trigger watches every key in the protected "
                                        "buckets unless --watch-prefix narrows it. Other commands "
                                        "(status, reconcile, backfill, restore, verify) reach this cloud "
                                        "with --env-file FILE.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cos-port", type=arguments.port, default=0, metavar="PORT",
                   help="1-65535, or 0: pick a free port (default)")
    p.add_argument("--ci-port", type=arguments.port, default=0, metavar="PORT",
                   help="1-65535, or 0: pick a free port (default)")
    p.add_argument("--region", default="ap-guangzhou")
    p.add_argument("--bucket", action="append", default=[], metavar="NAME-APPID",
                   help="bucket to create and protect (repeatable; default intake-1250000000)")
    p.add_argument("--quarantine-bucket", default="quarantine-1250000000", metavar="NAME-APPID")
    p.add_argument("--callback-port", type=arguments.port, default=0, metavar="PORT",
                   help="the callback function's URL port (0 picks a free one: default)")
    p.add_argument("--function-logs", metavar="FILE", help="append the functions' JSON logs here "
                   "(default: stderr)")
    p.add_argument("--scan-delay", type=arguments.seconds_or_zero, default=0.2, metavar="SECONDS",
                   help="seconds a scan takes (default 0.2)")
    # Switches for what Tencent does not document (docs/tencent-facts.md): each default is the answer
    # worse for cosguard, each also read from its COSGUARD_LOCAL_* variable when the option is absent.
    p.add_argument("--callback-format", choices=("xml", "json"), default=None,
                   help="the local CI's callback body (default xml; COSGUARD_LOCAL_CALLBACK_FORMAT)")
    p.add_argument("--callback-signed", choices=("off", "on"), default=None,
                   help="on: the local CI signs its callbacks with an Authorization header as COS signs "
                        "requests (default off; COSGUARD_LOCAL_CALLBACK_SIGNED=1)")
    p.add_argument("--callback-retries", type=arguments.count, default=None, metavar="N",
                   help="times the local CI tries a failed callback again (default 0: one attempt only; "
                        "COSGUARD_LOCAL_CALLBACK_RETRIES)")
    p.add_argument("--event-key", choices=("url", "literal"), default=None,
                   help="the trigger event's cosObject.key percent-encoded or as stored "
                        "(default url; COSGUARD_LOCAL_EVENT_KEY)")
    p.add_argument("--event-vid", choices=("empty", "set"), default=None,
                   help="the trigger event's cosObject.vid on a versioned bucket: empty or the version id "
                        "(default empty; COSGUARD_LOCAL_EVENT_VID)")
    p.add_argument("--multipart-last-modified", choices=("initiation", "completion"), default=None,
                   help="which time a completed multipart object's Last-Modified reports "
                        "(default initiation; COSGUARD_LOCAL_MULTIPART_LAST_MODIFIED)")
    p.add_argument("--append-events", choices=("off", "on"), default=None,
                   help="whether an APPEND fires cos:ObjectCreated:Append (default off; "
                        "COSGUARD_LOCAL_APPEND_EVENTS=1)")
    p.add_argument("--delete-if-match", choices=("ignore", "honour"), default=None,
                   help="whether local COS honours a DELETE's If-Match: COS documents none (doc 436/7743), "
                        "so the default is ignore (or honour with COSGUARD_LOCAL_DELETE_IF_MATCH=1)")
    p.add_argument("--watch-prefix", default="", metavar="PREFIX",
                   help="the upload trigger fires only for keys under PREFIX, and COSGUARD_INCLUDE_PREFIXES "
                        "is set to it, as the production deployment does (default: every key)")
    p.add_argument("--env-file", metavar="FILE",
                   help="write the functions' environment (COSGUARD_* endpoints, buckets, callback URL and "
                        "token, keys) to FILE (mode 600) for `cosguard status/reconcile/backfill/restore/"
                        "verify --env-file FILE`; removed when this stops")
    p.add_argument("--signatures", action="append", default=[], metavar="FILE",
                   help="ClamAV .hdb/.hsb hash signature file (repeatable)")
    p.add_argument("--description", metavar="DIR",
                   help="wire buckets, trigger prefix and environment from the deployment description in "
                        "DIR (serverless.yml + DIR/.env), as deploy/deploy.py deploys it; replaces --bucket, "
                        "--quarantine-bucket and --region")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..infra.config import BUCKET_RE
    from ..local.deployment import LocalDeployment
    from ..local.stack import DEFAULT_BUCKET

    buckets = args.bucket or [DEFAULT_BUCKET]
    bad = [b for b in buckets + [args.quarantine_bucket] if not BUCKET_RE.match(b)]
    if bad:
        say(f"cosguard local: not a bucket of the form <name>-<appid>: {', '.join(bad)}", file=sys.stderr)
        return 2
    log_stream = open(args.function_logs, "a", encoding="utf-8") if args.function_logs else sys.stderr
    common = dict(host=args.host, cos_port=args.cos_port, ci_port=args.ci_port,
                  callback_port=args.callback_port, scan_delay=args.scan_delay,
                  callback_format=args.callback_format, signature_files=args.signatures, log_stream=log_stream,
                  delete_honours_if_match=_flag(args.delete_if_match, "honour"),
                  callback_signed=_flag(args.callback_signed, "on"), callback_retries=args.callback_retries,
                  event_key_encoding=args.event_key, event_vid=args.event_vid,
                  multipart_last_modified=args.multipart_last_modified,
                  append_events=_flag(args.append_events, "on"))
    if args.description:
        from ..local.description import DescriptionError
        if args.watch_prefix:
            say("cosguard local: --watch-prefix and --description exclude each other (the description's "
                  "trigger filter is the watched prefix)", file=sys.stderr)
            return 2
        try:
            cloud = LocalDeployment.from_description(args.description, **common)
        except DescriptionError as exc:
            say(f"cosguard local: {exc}", file=sys.stderr)
            return 2
    else:
        cloud = LocalDeployment(buckets, quarantine_bucket=args.quarantine_bucket, region=args.region,
                                watch_prefix=args.watch_prefix, **common)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    cloud.start()
    try:
        info = cloud.info()
        if args.env_file:
            cloud.write_env_file(args.env_file)
            info["env_file"] = os.path.abspath(args.env_file)
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cloud.stop()
        if args.env_file:
            _remove(args.env_file)
    say("cosguard local: stopped", file=sys.stderr)
    return 0


def _flag(choice, on: str):
    return None if choice is None else choice == on


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
