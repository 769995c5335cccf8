"""`settle()` fails loudly: a test never goes on to assert on a local cloud that is still working
(it used to ignore wait_idle's False and carry on)."""
from __future__ import annotations

import pytest

from deployed import DeployedStack, stack_factory


@pytest.fixture
def stacks():
    yield from stack_factory(DeployedStack)


def test_settle_names_the_job_still_running(deploy):
    deployment = deploy(scan_delay=60)
    deployment.put("slow.txt", b"scanned in a minute")
    job_id = deployment.scan()["jobs"]["slow.txt"]
    with pytest.raises(AssertionError, match="did not go idle") as caught:
        deployment.settle(timeout=0.2)
    assert job_id in str(caught.value) and "slow.txt" in str(caught.value)


def test_settle_names_the_callbacks_still_to_deliver(deploy):
    deployment = deploy()
    deployment.cloud.ci.faults.callback_delay = 60
    deployment.put("late.txt", b"its callback comes in a minute")
    deployment.scan()
    with pytest.raises(AssertionError, match="1 callback delivery"):
        deployment.settle(timeout=1.0)


def test_the_deployed_stack_settles_loudly_too(stacks):
    stack = stacks(scan_delay=60)
    stack.put("slow.txt", b"scanned in a minute")
    stack.scan_handler(stack.take_events(), {"time_limit_in_ms": 30000})
    with pytest.raises(AssertionError, match="slow.txt"):
        stack.settle(timeout=0.2)
