"""Issue 18, item 4: nothing an uploader names is rendered raw. A key is the uploader's text: in a
WeCom or DingTalk markdown notification it must not render a link, a mention, a colour or a forged
"outcome: clean" line; in an operator's terminal it must not add table rows, clear the screen or
reorder what is read. JSON output keeps the exact key (JSON escapes it)."""
from __future__ import annotations

import re

import pytest

from cosguard.cli import main as cli
from cosguard.local.samples import clean_text, eicar

# Each a key an uploader can PUT, with what it would forge if shown raw.
FORGED_BLOCK = "a.exe\n> outcome: clean\n> All clear, see [details](http://phish.example/login)"
HOSTILE = [
    FORGED_BLOCK,
    "<@all> <font color=\"info\">clean</font>.exe",
    "tick`s` and ``more``.exe",
    "esc\x1b[2J\x1b[Hcosguard: 0 infected.exe",
    "bidi\u202eexe.txt",
]
# CR: CI's XML parser reads it as LF and scans another key, so its verdict is never notified yet
# (issue 18 item 2, another change): it is tried in the terminal, where it would forge a row.
CR_KEY = "row\r\nclean  tagged in place  1.exe"
# Characters that act on a terminal or reorder text rather than being shown.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _upload_all(stack, body: bytes = None, keys=tuple(HOSTILE)):
    for key in keys:
        stack.put(key, body or eicar())
    stack.scan()
    stack.settle()


def _contents(stack, fmt):
    return [n["markdown"]["content"] if fmt == "wecom" else n["markdown"]["text"] for n in stack.sink.received]


@pytest.mark.parametrize("fmt", ["wecom", "dingtalk"])
def test_markdown_notifications_render_no_uploader_markup(stack, fmt):
    s = stack(notify=True, COSGUARD_NOTIFY_FORMAT=fmt)
    _upload_all(s)
    contents = _contents(s, fmt)
    assert len(contents) >= len(HOSTILE)   # every key was reported (quarantined, or its scan failed)
    for text in contents:
        lines = text.split("\n")
        assert lines[0].startswith("**cosguard: ") and all(line.startswith("> ") for line in lines[1:]), text
        assert not RAW_CONTROL.search(text), text
        assert "<" not in text and "](" not in text and "http://" not in text, text
        for line in lines:   # backticks pair up: no key ends its code span early
            assert line.count("`") % 2 == 0, line
        outcomes = [line for line in lines if line.startswith("> outcome: ")]
        assert len(outcomes) == 1 and "clean" not in outcomes[0], text   # no forged outcome line
    everything = "\n".join(contents)
    for shown in ("`a.exe%0A%3E outcome: clean%0A%3E All clear, see %5Bdetails%5D(http%3A//phish.example/login)`",
                  "`%3C@all%3E %3Cfont color=\"info\"%3Eclean%3C/font%3E.exe`",
                  "`tick%60s%60 and %60%60more%60%60.exe`",
                  "`esc%1B%5B2J%1B%5BHcosguard: 0 infected.exe`",
                  "`bidi%E2%80%AEexe.txt`"):
        assert shown in everything, (shown, everything)
    if fmt == "dingtalk":   # the title (the chat list's preview) holds no uploader text at all
        assert {n["markdown"]["title"] for n in s.sink.received} <= {"cosguard: infected", "cosguard: error",
                                                                    "cosguard: alert", "cosguard: stale"}


def test_json_notifications_keep_the_exact_key(stack):
    s = stack(notify=True)
    s.put(FORGED_BLOCK, eicar())
    s.scan()
    s.settle()
    assert [n["key"] for n in s.sink.received] == [FORGED_BLOCK]


def test_a_long_key_is_cut_and_says_how_long_it_was(stack):
    s = stack(notify=True, COSGUARD_NOTIFY_FORMAT="wecom")
    key = "long/" + "k" * 600 + ".exe"
    s.put(key, eicar())
    s.scan()
    s.settle()
    [text] = _contents(s, "wecom")
    assert f"`long/{'k' * 195}` … ({len(key)} characters)" in text


def _human(s, tmp_path, capsys, *argv):
    """`cosguard <argv>` as a person runs it, without --json: (exit code, stdout, stderr)."""
    path = tmp_path / "cosguard.env"
    path.write_text("\n".join(f"{k}={v}" for k, v in s.env.items()) + "\n")
    capsys.readouterr()
    code = cli(list(argv) + ["--env-file", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _section(out: str, title: str):
    """The rows of the table printed under `title` (header and rule dropped)."""
    lines = out.split("\n")
    start = lines.index(title) + 3
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_status_prints_one_line_per_row_and_no_terminal_control(stack, tmp_path, capsys):
    s = stack()
    _upload_all(s, keys=HOSTILE + [CR_KEY])
    code, out, err = _human(s, tmp_path, capsys, "status", "--recent", "20", "--wide")  # whole cells
    for text in (out, err):
        assert not RAW_CONTROL.search(text), text
    _, document, _ = s.cli(capsys, tmp_path, "status", "--recent", "20")   # JSON: the exact keys
    infected = {i["key"] for i in document["recent_infections"]}
    assert {k for k in HOSTILE if s.quarantined(k)} <= infected and "bidi\u202eexe.txt" in infected
    assert len(infected) >= 3     # the keys CI could read were handled as infections
    rows = _section(out, "recent infections:")
    assert len(rows) == len(infected), rows   # one line per row, whatever the keys hold
    assert any("bidi\\u202eexe.txt" in row for row in rows)
    assert not any(line.startswith(("> outcome", "clean  tagged")) for line in out.split("\n"))


def test_status_lists_objects_left_without_room_for_their_status_tag(stack, tmp_path, capsys):
    s = stack()
    tags = "&".join(f"t{i}=v" for i in range(10))
    s.put("full\u202etxt.exe", clean_text(), Tagging=tags)
    s.scan()
    s.settle()
    code, out, err = _human(s, tmp_path, capsys, "status", "--wide")   # whole cells
    [row] = _section(out, "no room for cosguard-status among the object's tags (COS allows 10):")
    assert "full\\u202etxt.exe" in row and "left untagged" in row and not RAW_CONTROL.search(out)
    _, document, _ = s.cli(capsys, tmp_path, "status")
    [entry] = document["status_tag_not_fitted"]
    assert entry["key"] == "full\u202etxt.exe" and entry["status"] == "clean"


def test_backfill_prints_no_terminal_control(stack, tmp_path, capsys):
    s = stack()
    for key in HOSTILE + [CR_KEY]:
        s.put(key, clean_text())
    s.take_events()   # already in the bucket before cosguard watched it: found by the backfill
    code, out, err = _human(s, tmp_path, capsys, "backfill", "--bucket", s.intake, "--progress",
                            "--prefix", "\x1b[2J")
    for text in (out, err):
        assert not RAW_CONTROL.search(text), text
    for line in out.split("\n") + err.split("\n"):
        assert not line.startswith(("clean  tagged", "> outcome")), line
    assert "\\x1b[2J" in err    # the operator's own odd prefix is shown, written out
    code, out, err = _human(s, tmp_path, capsys, "backfill", "--bucket", s.intake)
    for text in (out, err):
        assert not RAW_CONTROL.search(text), text
    failed = int(re.search(r"^error +(\d+)$", out, re.M).group(1)) if re.search(r"^error ", out, re.M) else 0
    if failed:   # keys whose submission failed are listed by name: one line each
        lines = out.split("\n")
        header = next(i for i, line in enumerate(lines) if line.startswith("key "))
        rows = [line for line in lines[header + 2:] if line]
        assert len(rows) == failed, rows
        assert any(row.startswith("esc\\x1b[2J\\x1b[Hcosguard") for row in rows), rows
