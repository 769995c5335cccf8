"""What the Ledger (ledger.py) gives the mixins it is built from (claims.py, losses.py,
open_jobs.py): where it lives and its sealed reads and writes, declared once for type checks."""
from __future__ import annotations

from typing import Any, Callable, Dict


class LedgerParts:
    """Declarations only: the Ledger supplies each of these."""

    bucket: str
    prefix: str
    gateway: Any
    clock: Callable[[], float]
    _key: Callable[[str, str], str]
    _write: Callable[..., None]
    _read: Callable[[str], Dict[str, Any]]
