"""The `cosguard` command: the local cloud, the demo and operations, one subcommand each.

Exit codes: 0 ok, 1 findings or failures, 2 usage or configuration errors, 3 COS or CI could not be
reached or refused, 4 an internal error (a bug), 130 interrupted (docs/operations.md).
"""
from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, Dict, List, Optional, Tuple

from .common import logging_kept, say
from .failures import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, explain

EXIT_FINDINGS = 1

# Accepted before or after the subcommand (`cosguard --debug status` and `cosguard status --debug`).
GLOBAL_OPTIONS: Tuple[Tuple[Tuple[str, ...], Dict[str, Any]], ...] = (
    (("--debug",), dict(action="store_true", help="on an error, show the traceback too; the JSON log "
                                                  "lines (stderr) at DEBUG")),
    (("--wide",), dict(action="store_true", help="tables show every cell whole (by default they fit "
                                                 "100 columns: long keys are shortened in the middle)")),
)


def _add_globals(parser: argparse.ArgumentParser, top: bool) -> None:
    for names, options in GLOBAL_OPTIONS:
        parser.add_argument(*names, **dict(options, default=False if top else argparse.SUPPRESS))
    for action in parser._actions:  # every subcommand (and `ledger forget`) takes them too
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_globals(sub, top=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosguard", description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1].strip())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import backfill, demo, ledger, local, ops, rescan, reseal, verify
    for module in (demo, local, ops, ledger, verify, backfill, rescan, reseal):
        module.register(commands)
    _add_globals(parser, top=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from ..ui import table
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    table.set_width(None if args.wide else table.DEFAULT_WIDTH)
    name = " ".join(filter(None, ["cosguard", args.command, getattr(args, "ledger_action", None)]))
    try:
        with logging_kept():
            return int(args.run(args) or EXIT_OK)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error ends as one line (and the traceback with --debug)
        if args.debug:
            traceback.print_exc(file=sys.stderr)
        failure = explain(exc, getattr(args, "settings", None), getattr(args, "env_file", None))
        say(f"{name}: {failure.message}", file=sys.stderr)
        return failure.exit_code
