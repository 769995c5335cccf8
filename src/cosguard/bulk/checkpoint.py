"""Backfill checkpoints: where a run stopped, written atomically, so an interrupted run resumes."""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from ..errors import CosguardError

CHECKPOINT_FORMAT = 1


class BackfillError(CosguardError):
    """A backfill that cannot start: bad checkpoint, bucket not served, bad options."""


def read_checkpoint(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BackfillError(f"checkpoint {path}: {exc}") from exc
    if doc.get("format") != CHECKPOINT_FORMAT:
        raise BackfillError(f"checkpoint {path}: not a cosguard backfill checkpoint")
    return doc


def write_checkpoint(path: str, doc: Dict[str, Any]) -> None:
    """Atomically: an interruption mid-write leaves the previous checkpoint intact."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
