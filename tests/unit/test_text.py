"""infra/text.py: every control and bidi character written out for terminals; markdown that cannot
render and still reads back exactly."""
from urllib.parse import unquote

import pytest

from cosguard.infra.text import markdown_code, markdown_safe, terminal_safe
from cosguard.ui.table import render_table

INVISIBLE = ["\x00", "\x07", "\x1b", "\r", "\n", "\t", "\x7f", "\x85", "\x9b", "\u202a", "\u202e", "\u2066",
             "\u2069", "\u200e", "\u200f", "\u061c", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", INVISIBLE)
def test_terminal_safe_writes_out_each_control_and_bidi_character(char):
    shown = terminal_safe(f"a{char}b")
    assert char not in shown and shown.startswith("a\\") and shown.endswith("b")


def test_ordinary_text_is_unchanged_and_tables_stay_one_line_per_row():
    assert terminal_safe("报告 2024 (1).pdf") == "报告 2024 (1).pdf"
    table = render_table(["key"], [["a\r\nfake  row"], ["b\x1b[2J"]])
    assert table.split("\n")[2:] == ["a\\r\\nfake  row", "b\\x1b[2J"]


@pytest.mark.parametrize("key", ["a\n> outcome: clean", "[x](http://y)", "<@all>", "<font color=red>x</font>",
                                 "`tick`", "100%25 real", "esc\x1b[2J", "bidi\u202eexe.txt", "中文 key.exe"])
def test_markdown_code_cannot_render_and_reads_back_exactly(key):
    shown = markdown_code(key)
    assert shown.startswith("`") and shown.endswith("`") and shown.count("`") == 2
    assert not any(c in shown[1:-1] for c in "<>[]*\\\n\r\x1b\u202e") and "://" not in shown
    assert unquote(shown[1:-1]) == key


def test_long_text_is_cut_and_says_how_long_it_was():
    assert markdown_code("k" * 250) == f"`{'k' * 200}` … (250 characters)"
    assert markdown_safe("x" * 600).endswith("… (600 characters)")
    shown = markdown_code("\u202e" * 100)   # capped once encoded: a robot message is bounded
    assert shown == "`" + "%E2%80%AE" * 22 + "` … (100 characters)"
