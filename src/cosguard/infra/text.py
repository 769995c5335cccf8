"""Uploader-named text (keys, CI's virus names and messages) made safe to show a person.

A key is the uploader's: it may hold CR/LF (a fake table row or log line), ESC (terminal control:
clear the screen, draw a fake summary), bidi overrides that reorder what is read (U+202E), or
markdown (links, `<@all>` mentions, `<font>`) that a chat robot would render. Every place that
shows such text to a person goes through one of these; JSON output does not (JSON escapes).
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import unquote

# Characters that change what a terminal or a chat client shows rather than being shown: C0 and C1
# controls, DEL, the bidi embeddings/overrides/isolates and marks, and the Unicode line separators.
_INVISIBLE = frozenset(list(range(0x20)) + list(range(0x7F, 0xA0)) + list(range(0x202A, 0x202F))
                       + list(range(0x2066, 0x206A)) + [0x200E, 0x200F, 0x061C, 0x2028, 0x2029])
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What WeCom's and DingTalk's markdown act on inside a line (links, emphasis, code, HTML-like tags
# such as <font> and <@userid>, entities, escapes), and `%`, so the encoding stays unambiguous.
_MARKDOWN = frozenset("`*[]<>\\&%")
KEY_CHARS = 200     # a notification shows at most this much of a key, encoded (COS allows 850 bytes)
TEXT_CHARS = 400    # and of any other uploader- or CI-written text


def terminal_safe(text: object) -> str:
    """`text` with every control and bidi character written out (`\\n`, `\\x1b`, `\\u202e`):
    one printed line stays one line, and nothing in it moves the cursor or reorders the text."""
    value = str(text)
    if not any(ord(char) in _INVISIBLE for char in value):
        return value
    return "".join(_SHORT.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
                   if ord(char) in _INVISIBLE else char for char in value)


def markdown_safe(text: object, limit: int = TEXT_CHARS) -> str:
    """`text` for a chat robot's markdown: control, bidi and markdown characters percent-encoded
    (UTF-8, as in a URL: `%0A`, `%60`, `%E2%80%AE`), at most `limit` characters once encoded
    (a robot message is bounded: WeCom takes 4096 bytes)."""
    value = str(text)
    shown = _encoded(value, limit)
    return shown + _cut(value, shown)


def markdown_code(text: Optional[object], limit: int = KEY_CHARS) -> str:
    """`text` as inline code (a key, a virus name): encoded as markdown_safe, so no backtick inside
    can end the span, and nothing in it renders even where a client ignores code spans."""
    if text is None or text == "":
        return "-"
    value = str(text)
    shown = _encoded(value, limit)
    return f"`{shown}`" + _cut(value, shown)


def _encoded(value: str, limit: int) -> str:
    """Percent-encoded as above, whole characters up to `limit` encoded characters; `://` too, so
    a client's auto-linking finds no URL to link."""
    pieces, size = [], 0
    for index, char in enumerate(value):
        piece = "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) \
            if ord(char) in _INVISIBLE or char in _MARKDOWN else char
        if char == ":" and value.startswith("//", index + 1):
            piece = "%3A"
        if size + len(piece) > limit:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def _cut(value: str, shown: str) -> str:
    """Says how long `value` was when `shown` is not all of it."""
    return "" if unquote(shown) == value else f" … ({len(value)} characters)"
