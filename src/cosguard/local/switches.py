"""The local cloud's switches for what Tencent does not document (docs/tencent-facts.md): each has
a default, the answer worse for cosguard, and can be set by a constructor argument, by its
`COSGUARD_LOCAL_*` variable in the environment (read when the constructor is given None), and on
a running instance. The names and positions here are the one list `cosguard local` offers."""
from __future__ import annotations

import os
from typing import Optional, Sequence

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def env_flag(variable: str, given: Optional[bool], default: bool) -> bool:
    """`given` when not None; else the environment's `variable` (1/0, on/off...); else `default`."""
    if given is not None:
        return bool(given)
    raw = os.environ.get(variable, "").strip().lower()
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    if raw:
        raise ValueError(f"{variable} must be 1 or 0 (on/off), not {raw!r}")
    return default


def env_choice(variable: str, given: Optional[str], choices: Sequence[str], default: str) -> str:
    """`given` when not None; else the environment's `variable`; else `default`; one of `choices`."""
    value = given if given is not None else (os.environ.get(variable, "").strip().lower() or default)
    if value not in choices:
        raise ValueError(f"{variable[len('COSGUARD_LOCAL_'):].lower()} must be one of "
                         f"{', '.join(choices)}, not {value!r}")
    return value


def env_count(variable: str, given: Optional[int], default: int) -> int:
    """A non-negative whole number: `given`, the environment's `variable`, or `default`."""
    value: object = given
    if value is None:
        raw = os.environ.get(variable, "").strip()
        value = int(raw) if raw.isdigit() else (default if not raw else raw)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{variable[len('COSGUARD_LOCAL_'):].lower()} must be a whole number >= 0, "
                         f"not {value!r}")
    return value
