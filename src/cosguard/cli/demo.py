"""`cosguard demo`: see the whole flow work on this machine, no Tencent account needed."""
from __future__ import annotations

import argparse
import os

from . import arguments


def register(commands) -> None:
    p = commands.add_parser("demo", help="run the whole flow on the local cloud and show the outcomes",
                            description="Start the local cloud with cosguard deployed, upload clean, "
                                        "infected, oversized and tricky objects, and print what happened "
                                        "to each. Exits 0 only when every outcome is the expected one.")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--timeout", type=arguments.seconds, default=60.0, metavar="SECONDS", help="seconds to wait for verdicts (default 60)")
    p.add_argument("--keep-logs", action="store_true",
                   help="keep the functions' JSON logs in a temporary file and print its name (with "
                        "--json: the `function_logs` field) (default: removed when the demo ends)")
    p.add_argument("--report", metavar="FILE",
                   help="write the operator report of the demo's uploads here (`cosguard report --html`; "
                        "default: a new cosguard-demo-report-*.html in the temporary directory)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from ..local.demo import run_demo
    from .report import report_for

    def report(env):
        path = args.report
        if not path:
            descriptor, path = tempfile.mkstemp(prefix="cosguard-demo-report-", suffix=".html")
            os.close(descriptor)
        report_for(env, path, since_days=1)
        return os.path.abspath(path)
    return run_demo(as_json=args.json, timeout=args.timeout, keep_logs=args.keep_logs, report=report)
