"""Fixtures for the backfill tests; shared helpers live in backfill_support (conftest modules share one name)."""
from __future__ import annotations

from typing import Any, List

import pytest

from backfill_support import Stack


@pytest.fixture
def stacks():
    made: List[Stack] = []

    def make(**kwargs: Any) -> Stack:
        stack = Stack(**kwargs)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()


@pytest.fixture
def stack(stacks) -> Stack:
    return stacks()
