"""Argument types that refuse what cannot be meant (argparse turns their error into one usage line
and exit 2): a port outside 0-65535, a negative duration, a bucket the deployment does not serve."""
from __future__ import annotations

import argparse
from typing import Callable, Iterable

from .failures import UsageError

MAX_PORT = 65535


def port(raw: str) -> int:
    """1-65535, or 0: pick a free one."""
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to {MAX_PORT} (or 0: pick a free one), got {raw!r}")
    return value


def _number(kind: Callable[[str], float], allow_zero: bool, what: str) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")) \
                or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"expected {what}, got {raw!r}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


seconds = _number(float, False, "a positive number of seconds")
seconds_or_zero = _number(float, True, "a number of seconds, 0 or more")
days = _number(float, False, "a positive number of days")
count = _number(int, True, "a whole number, 0 or more")
non_negative = _number(float, True, "a number, 0 or more")


def served(buckets: Iterable[str], settings, option: str = "--bucket") -> None:
    """UsageError (exit 2, one line) for a bucket COSGUARD_BUCKETS does not name."""
    unknown = [b for b in buckets if not settings.serves(b)]
    if unknown:
        raise UsageError(f"{option} {', '.join(unknown)}: not a bucket this deployment serves "
                         f"(COSGUARD_BUCKETS: {', '.join(settings.buckets)})")
