"""What people read: tables aligned by display width, progress that never runs together."""
from __future__ import annotations

import io

from cosguard.ui.progress import Progress
from cosguard.ui.table import display_width, render_table


def test_tables_align_wide_characters():
    text = render_table(["key", "status"], [["季度报告.txt", "clean"], ["a.txt", "infected"], ["x", None]])
    lines = text.splitlines()
    assert lines[0].startswith("key")
    starts = {display_width(line[: line.index(word)]) for line, word in
              zip(lines[2:], ["clean", "infected", "-"])}
    assert starts == {len("季度报告.txt") + 4 + 2}   # 4 wide characters take 2 cells each
    assert display_width("季度 报告") == 9 and display_width("e\u0301") == 1


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_in_a_pipe_is_one_whole_line_per_update():
    stream = io.StringIO()
    progress = Progress(stream, interval=0.0)
    progress.interval = 0.0
    for done in range(4):
        progress.update(f"verdicts: {done}/3", done, 3)
    progress.update("verdicts: 3/3", 3, 3)          # unchanged: not repeated
    progress.close()
    assert stream.getvalue().splitlines() == [f"verdicts: {n}/3" for n in range(4)]
    assert "\r" not in stream.getvalue()


def test_progress_on_a_terminal_redraws_one_line_with_a_bar():
    stream = Terminal()
    progress = Progress(stream, interval=0.0)
    progress.update("verdicts: 1/2", 1, 2)
    progress.message("uploaded x")
    progress.update("verdicts: 2/2", 2, 2)
    progress.close()
    out = stream.getvalue()
    assert out.count("\r\x1b[K") >= 2 and out.endswith("\n")
    assert "[" + "#" * 12 + "." * 12 + "]  50% verdicts: 1/2" in out
    assert "uploaded x\n" in out and "100% verdicts: 2/2" in out


def test_a_table_with_a_long_key_fits_100_columns_keeping_both_ends_of_the_key():
    from cosguard.ui.table import render_table, shorten
    key = "uploads/" + "季度报告/" * 30 + "report-final.pdf"
    text = render_table(["job", "key", "status"], [["ss0123456789abcdef", key, "infected"]], width=100)
    lines = text.splitlines()
    assert max(display_width(line) for line in lines) <= 100
    assert lines[2].startswith("ss0123456789abcdef  uploads/") and "…" in lines[2]
    assert "report-final.pdf" in lines[2] and lines[2].rstrip().endswith("infected")   # short cells stay whole
    assert key in render_table(["job", "key"], [["j", key]], width=None)                 # --wide
    assert display_width(shorten("季度报告季度报告", 7)) <= 7 and shorten("short", 7) == "short"
