"""JSON log lines with context bound once (request id, bucket, ...) and secrets masked.

Every line names a constant `event` (docs/logs.md lists them with their level and fields) and
carries the variable parts as fields: `{"event": "verdict", "outcome": "infected", ...}`, so a CLS
query or metric filter matches keys, never text. `message` repeats the event name in words.

`bind(request_id=...)` sets fields for the current invocation (contextvars, so pool threads started
with `contextvars.copy_context()` inherit them); every line the `cosguard` loggers write is one JSON
object. Registered secrets and Authorization headers are replaced by `***` wherever they appear.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
from typing import Any, Dict, Iterable, Iterator, List

_context: contextvars.ContextVar[Dict[str, Any]] = contextvars.ContextVar("cosguard_log_context", default={})
_secrets: List[str] = []
_AUTH_RE = re.compile(r"q-sign-algorithm=sha1&[^\s\"',}]*")
_TOKEN_RE = re.compile(r"([?&]token=)[^&\s\"']+")
OTHER_EVENT = "log"   # the event of a line not written through `event(...)`


def register_secrets(values: Iterable[str]) -> None:
    """Values that must never appear in a log line (keys, tokens)."""
    for value in values:
        if value and len(value) >= 4 and value not in _secrets:
            _secrets.append(value)


def scrub(text: str) -> str:
    """`text` with registered secrets, COS Authorization values and URL tokens masked."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    text = _AUTH_RE.sub("***", text)
    return _TOKEN_RE.sub(r"\1***", text)


def bind(**fields: Any) -> contextvars.Token:
    """Add fields to every line logged in this context; returns a token for `unbind`."""
    return _context.set({**_context.get(), **fields})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, event, message, bound context, then the fields of
    `event(...)`. A line logged another way (a stray `logger.warning`) gets the event `log`."""

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None) or OTHER_EVENT,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        line.update(getattr(record, "fields", {}) or {})
        line["event"] = getattr(record, "event", None) or OTHER_EVENT   # no field overrides it
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, ensure_ascii=False, default=str))


class _SysStreamHandler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` / `sys.stderr` is at emit time (SCF collects stdout; the CLI
    keeps stdout for its own output; tests swap both)."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(getattr(sys, target))

    @property
    def stream(self) -> Any:
        return getattr(sys, self.target)

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(level: str = "INFO", target: str = "stdout") -> None:
    """Route the `cosguard` loggers to one JSON handler on `target` (stdout or stderr)."""
    logger = logging.getLogger("cosguard")
    logger.setLevel(level)
    logger.propagate = False
    for handler in [h for h in logger.handlers if getattr(h, "_cosguard", False)]:
        if handler.target == target:  # type: ignore[attr-defined]
            break
        logger.removeHandler(handler)
    else:
        handler = _SysStreamHandler(target)
        handler.setFormatter(JsonFormatter())
        handler._cosguard = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    # The SDK logs request URLs and headers at INFO, and every error answer's raw XML at ERROR, the
    # expected ones too (a claim's 404 and 409). Every SDK error reaches cosguard as an exception,
    # translated at the gateway and logged once, in JSON, where it matters: keep the SDK quiet.
    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("cosguard") else f"cosguard.{name}")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, *, exc_info: bool = False,
          **fields: Any) -> None:
    """Log one line of the event `name`, a constant snake_case word documented in docs/logs.md
    (tests/unit/test_log_events.py holds every call to both); `fields` become top-level JSON keys."""
    logger.log(level, name.replace("_", " "), exc_info=exc_info, extra={"event": name, "fields": fields})
