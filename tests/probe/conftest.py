"""The `probed` fixture: cosguard deployed on the local cloud for `cosguard probe` (tests/probed.py)."""
from __future__ import annotations

from typing import Any, List

import pytest

from deployed import forget_developer_keys
from probed import ProbedDeployment, row  # noqa: F401 - the tests' helper

forget_developer_keys()


@pytest.fixture
def probed():
    made: List[ProbedDeployment] = []

    def make(**kwargs: Any) -> ProbedDeployment:
        deployment = ProbedDeployment(**kwargs)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()
