"""Every `cosguard <subcommand>` the docs show still exists, with the options they show.

The docs are README.md, docs/*.md and deploy/README.md. A command is found in fenced code blocks and
in inline code; an options table is the table after `<!-- options: SUBCOMMAND -->` (its first
column). Each subcommand's `--help` must parse, and each `--option` shown must be in it, so a renamed
or removed option fails here instead of in a user's shell."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from cosguard import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
COMMAND = re.compile(r"(?<![\w./-])cosguard[ \t]+([a-z][a-z0-9-]*)")
GROUPS = {"ledger"}   # subcommands whose next word is an action of theirs: `cosguard ledger forget`
ACTION = re.compile(r"[ \t]+([a-z][a-z0-9-]*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
OPTIONS_TABLE = re.compile(r"<!-- options: ([a-z][a-z0-9-]*) -->\n+((?:\|[^\n]*\n)+)")
SHELL_END = re.compile(r"\s#|[;&|>()]")  # where a command in a shell line stops
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")  # a shell word in quotes is an argument, not a command

Shown = Dict[str, Set[str]]  # subcommand -> options shown with it


def _commands(text: str, shown: Shown, shell: bool) -> None:
    for match in COMMAND.finditer(text):
        rest = text[match.end():]
        name = match.group(1)
        action = ACTION.match(rest) if name in GROUPS else None
        if action:
            name, rest = f"{name} {action.group(1)}", rest[action.end():]
        following = COMMAND.search(rest)
        rest = rest[:following.start()] if following else rest
        if shell:
            end = SHELL_END.search(rest)
            rest = rest[:end.start()] if end else rest
        shown.setdefault(name, set()).update(OPTION.findall(rest))


def commands_shown(markdown: str) -> Shown:
    """What one markdown document shows: every `cosguard <subcommand>` and the options with it."""
    shown: Shown = {}
    for table in OPTIONS_TABLE.finditer(markdown):
        rows = table.group(2).splitlines()[2:]  # below the header and its |---| line
        shown.setdefault(table.group(1), set()).update(
            option for row in rows for option in OPTION.findall(row.split("|")[1]))
    for block in FENCE.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():  # a continued shell line is one command
            _commands(QUOTED.sub('""', line), shown, shell=True)
    prose = FENCE.sub("", markdown)
    for span in INLINE.finditer(prose):
        _commands(span.group(2).replace("\n", " "), shown, shell=False)
    return shown


def help_of(subcommand: str) -> Tuple[int, str]:
    """`cosguard SUBCOMMAND --help`, run in-process: its exit code and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = cli.main([*subcommand.split(), "--help"])
        except SystemExit as exit:
            code = exit.code
    return code, out.getvalue()


def undocumented(shown: Shown) -> List[str]:
    """Each subcommand that does not exist and each option its --help does not list."""
    problems = []
    for subcommand, options in sorted(shown.items()):
        code, text = help_of(subcommand)
        if code != 0:
            problems.append(f"cosguard {subcommand} --help exits {code}: {text.strip()[-300:]}")
            continue
        listed = set(OPTION.findall(text))
        problems += [f"cosguard {subcommand}: no option {option}" for option in sorted(options - listed)]
    return problems


def all_shown() -> Shown:
    shown: Shown = {}
    for path in DOCS:
        for subcommand, options in commands_shown(path.read_text(encoding="utf-8")).items():
            shown.setdefault(subcommand, set()).update(options)
    return shown


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")  # argparse wraps at the terminal's width: one option, one line


def test_every_command_and_option_the_docs_show_exists():
    shown = all_shown()
    # the finder itself: every subcommand is shown somewhere, with options from code blocks and tables
    assert {"demo", "local", "status", "reconcile", "restore", "verify", "backfill"} <= set(shown), shown
    assert {"--env-file", "--watch-prefix", "--description", "--delete-if-match"} <= shown["local"]
    assert {"--dry-run", "--checkpoint", "--resume", "--fan-out", "--price-per-1000"} <= shown["backfill"]
    assert undocumented(shown) == []


def test_a_made_up_option_or_command_is_reported():
    shown = commands_shown(
        "```bash\ncosguard status --env-file x --made-up-flag  # --not-this-comment\n"
        "tccli scf PublishLayerVersion --Description \"cosguard layer sha256:...\"\n"
        "cosguard backfill --bucket b \\\n    --resumee > out.json\n```\n"
        "Run `cosguard restore KEY --forse`, or `cosguard scrub`.\n\n"
        "<!-- options: local -->\n| option | meaning |\n|---|---|\n| `--cos-port`, `--cos-prot` | ports |\n")
    assert shown == {"status": {"--env-file", "--made-up-flag"}, "backfill": {"--bucket", "--resumee"},
                     "restore": {"--forse"}, "scrub": set(), "local": {"--cos-port", "--cos-prot"}}
    problems = undocumented(shown)
    assert [p for p in problems if not p.startswith("cosguard scrub --help exits 2")] == [
        "cosguard backfill: no option --resumee", "cosguard local: no option --cos-prot",
        "cosguard restore: no option --forse", "cosguard status: no option --made-up-flag"]
    assert any(p.startswith("cosguard scrub --help exits 2") for p in problems)


def test_the_readmes_links_reach_files_that_exist():
    for readme in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8"))
        assert targets, readme
        missing = [t for t in targets if "://" not in t and not (readme.parent / t).exists()]
        assert missing == [], f"{readme.relative_to(ROOT)} links to missing files: {missing}"
