"""Issue 23: the daily digest names the objects that need a look by their keys, the uploader's
text. In WeCom and DingTalk markdown no key may render a link, a mention, a colour or a forged
figure line; the `json` format keeps the exact keys (JSON escapes them)."""
from __future__ import annotations

import re

import pytest

from cosguard.local.samples import clean_text
from test_hostile_text import FORGED_BLOCK, HOSTILE, RAW_CONTROL


def _overdue_digest(stack, fmt):
    """Every hostile key uploaded, its CI job stuck, COS's clock two minutes on: the reconcile
    timer's digest lists each as overdue (COSGUARD_PENDING_OVERDUE_SECONDS=60)."""
    s = stack(notify=True, COSGUARD_NOTIFY_FORMAT=fmt, COSGUARD_DIGEST_HOUR="0",
              COSGUARD_PENDING_OVERDUE_SECONDS="60")
    s.cloud.ci.faults.stuck_jobs = True
    for key in HOSTILE:
        s.put(key, clean_text())
    s.scan()
    s.cloud.cos.clock_offset = 120   # ages are read on COS's clock: no test sleeps
    report = s.sweep()
    assert report["pending"] == len(HOSTILE) and len(report["overdue"]) == len(HOSTILE)
    [digest] = s.sink.received
    return digest


@pytest.mark.parametrize("fmt", ["wecom", "dingtalk"])
def test_the_markdown_digest_renders_no_uploader_markup(stack, fmt):
    message = _overdue_digest(stack, fmt)
    text = message["markdown"]["content" if fmt == "wecom" else "text"]
    lines = text.split("\n")
    assert lines[0].startswith("**cosguard daily digest — "), text
    assert not RAW_CONTROL.search(text), text
    assert "<" not in text and "](" not in text and "http://" not in text, text
    for line in lines:   # backticks pair up: no key ends its code span early
        assert line.count("`") % 2 == 0, line
    items = [line for line in lines if line.startswith("- overdue: ")]
    assert len(items) == len(HOSTILE), text   # one line per object, whatever its key holds
    figures = [line for line in lines if line.startswith("> ")]
    assert "> pending: 5" in figures and "> overdue: 5" in figures
    # cosguard's own figures only: a label and a number (or an age); no forged "> outcome: clean"
    assert all(re.match(r"^> [a-z0-9 ]+: [0-9][0-9a-z ]*$", line) for line in figures), text
    assert not any(line.startswith("> outcome") for line in lines), text
    for shown in ("`a.exe%0A%3E outcome: clean%0A%3E All clear, see %5Bdetails%5D(http%3A//phish.example/login)`",
                  "`%3C@all%3E %3Cfont color=\"info\"%3Eclean%3C/font%3E.exe`",
                  "`tick%60s%60 and %60%60more%60%60.exe`",
                  "`esc%1B%5B2J%1B%5BHcosguard: 0 infected.exe`",
                  "`bidi%E2%80%AEexe.txt`"):
        assert shown in text, (shown, text)
    if fmt == "dingtalk":   # the title (the chat list's preview) holds no uploader text
        assert message["markdown"]["title"] == "cosguard daily digest"


def test_the_json_digest_keeps_the_exact_keys(stack):
    digest = _overdue_digest(stack, "json")
    assert digest["kind"] == "digest" and digest["figures"]["overdue"] == len(HOSTILE)
    assert sorted(item["key"] for item in digest["attention"]) == sorted(HOSTILE)
    assert FORGED_BLOCK in {item["key"] for item in digest["attention"]}
