"""Rescan attacks run on backfill's local-cloud Stack (tests/backfill/backfill_support.py)."""
from __future__ import annotations

import pathlib
import sys
from typing import Any, List

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "backfill"))

from backfill_support import Stack  # noqa: E402


@pytest.fixture
def stack():
    made: List[Any] = [Stack()]
    yield made[0]
    made[0].close()
