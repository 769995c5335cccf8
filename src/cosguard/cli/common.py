"""What every operations command shares: the deployment's settings (from the environment and/or an
env file, exactly the variables the functions use), JSON or table output, exit codes."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Iterable, Sequence

from ..errors import ConfigError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


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
    from ..infra import logs
    from ..runtime import Runtime
    rt = Runtime.from_env(environment(args), require_callback_url=False)
    logs.configure(rt.settings.log_level, target="stderr")  # stdout is the command's own output
    return rt


def print_json(document: Any, out=None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")


def say(text: str, file=None) -> None:
    """One line for a person (stdout, or `file`): control and bidi characters written out (text.py),
    so a key cannot add lines, move the cursor or reorder what is read."""
    from ..infra.text import terminal_safe
    print(terminal_safe(text), file=file or sys.stdout)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out=None) -> None:
    """Columns aligned by display width (CJK-safe); empty cells show as `-`; every cell terminal-safe."""
    from ..ui.table import render_table
    (out or sys.stdout).write(render_table(headers, rows) + "\n")
