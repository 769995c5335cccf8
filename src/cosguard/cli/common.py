"""What every operations command shares: the deployment's settings (from the environment and/or an
env file, exactly the variables the functions use), JSON or table output, exit codes, and quiet
logs (the command's output says what happened; the functions' JSON log lines only with --debug)."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from typing import Any, Dict, Iterable, Iterator, Sequence

from ..errors import ConfigError
from .failures import EXIT_CLOUD, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE  # noqa: F401 - the commands' exit codes

SILENT = logging.CRITICAL + 10  # above every level: no log line reaches the terminal


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", metavar="FILE",
                        help="KEY=VALUE lines with the deployment's COSGUARD_* / TENCENTCLOUD_* variables "
                             "(the environment wins over the file)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def read_env_file(path: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as exc:
        raise ConfigError([f"--env-file {path}: {exc.strerror}"]) from exc
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ConfigError([f"--env-file {path}:{number}: expected KEY=VALUE"])
        values[name.strip().removeprefix("export ").strip()] = value.strip().strip('"').strip("'")
    return values


def environment(args: argparse.Namespace) -> Dict[str, str]:
    env = read_env_file(args.env_file) if getattr(args, "env_file", None) else {}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("COSGUARD_", "TENCENTCLOUD_"))})
    return env


def runtime(args: argparse.Namespace):
    """The same Runtime the functions build, for this operator's shell. ConfigError if incomplete."""
    from ..runtime import Runtime
    rt = Runtime.from_env(environment(args), require_callback_url=False)
    args.settings = rt.settings  # for the one-line error (cli/failures.py): endpoints, region
    configure_logs(args)
    return rt


def reachable(rt, ledgers) -> None:
    """One listing of each ledger before the work: an endpoint down, keys refused or
    a bucket missing stop the command here as one line (cli/failures.py), instead of as a report
    every row of which says the same thing."""
    for ledger in ledgers:
        next(iter(rt.gateway.list(ledger.bucket, ledger.prefix, page_size=1)), None)


def configure_logs(args: argparse.Namespace, level: str = "") -> None:
    """The JSON log lines, on stderr (stdout is the command's own output): none unless --debug
    (DEBUG) or `level` (a command's own --verbose) asks for them."""
    from ..infra import logs
    chosen = "DEBUG" if getattr(args, "debug", False) else level
    logs.configure(chosen or "CRITICAL", target="stderr")
    if not chosen:
        logging.getLogger("cosguard").setLevel(SILENT)


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """The `cosguard` loggers as they were before the command (one process may run several:
    tests, or an embedding program)."""
    logger = logging.getLogger("cosguard")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def print_json(document: Any, out=None) -> None:
    """Keys sorted: the same document prints the same way every run (a diff or a script can rely on it)."""
    out = out or sys.stdout
    out.write(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")


def say(text: str, file=None) -> None:
    """One line for a person (stdout, or `file`): control and bidi characters written out (text.py),
    so a key cannot add lines, move the cursor or reorder what is read."""
    from ..infra.text import terminal_safe
    print(terminal_safe(text), file=file or sys.stdout)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out=None) -> None:
    """Columns aligned by display width (CJK-safe), fitting 100 columns unless --wide (long cells
    shortened in the middle); empty cells show as `-`; every cell terminal-safe."""
    from ..ui.table import render_table
    (out or sys.stdout).write(render_table(headers, rows) + "\n")
