"""Issue 9, attack 10, through the local SCF runtime: instances that die (idle or mid-invocation)
are replaced, SCF retries the event, and the sweep finishes whatever a dead holder left."""
from __future__ import annotations

import io

import pytest

from cosguard.local.samples import clean_text, eicar
from cosguard.local.scf import LocalScf
from cosguard.local.stack import LocalCloud
from cosguard.runtime import Runtime
from helpers import CALLBACK_SECRET, settle_ci, unique_bucket


@pytest.fixture
def scf_stack():
    intake, jail = unique_bucket("intake"), unique_bucket("jail")
    cloud = LocalCloud([intake, jail], scan_delay=0.05).start()
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN=CALLBACK_SECRET, COSGUARD_QUARANTINE_BUCKET=jail,
                             COSGUARD_BUCKETS=intake)
    scf = LocalScf(cloud, env, buckets=[intake], retry_delays=(0.2, 0.4), time_limit_ms=3000,
                   log_stream=io.StringIO()).start()
    yield cloud, scf, intake, jail
    scf.stop()
    cloud.stop()


def test_an_instance_that_died_while_idle_is_replaced(scf_stack):
    cloud, scf, intake, jail = scf_stack
    cos = cloud.client("cos")
    cos.put_object(Bucket=intake, Key="first.txt", Body=clean_text())
    assert scf.wait_idle(20)
    for instance in scf.scan._all:
        instance.kill()  # dies between invocations
    cos.put_object(Bucket=intake, Key="second.com", Body=eicar())
    assert scf.wait_idle(20)
    assert not cos.object_exists(Bucket=intake, Key="second.com")
    assert scf.invoker.failed == [] and all(i.ok for i in scf.scan.invocations)


def test_instances_killed_mid_invocation_lose_nothing(scf_stack):
    cloud, scf, intake, jail = scf_stack
    cos = cloud.client("cos")
    scf.scan.seed_faults(9)
    scf.callback.seed_faults(9)
    scf.scan.kill_rate = scf.callback.kill_rate = 0.3
    keys = [f"k/{i:02d}.{'com' if i % 3 == 0 else 'txt'}" for i in range(24)]
    for i, key in enumerate(keys):
        cos.put_object(Bucket=intake, Key=key, Body=eicar() if i % 3 == 0 else clean_text() + key.encode())
    scf.wait_idle(15)
    assert scf.scan.kills > 0
    scf.scan.kill_rate = scf.callback.kill_rate = 0.0
    cloud.cos.clock_offset = 60  # every lease a dead holder left has ended on COS's clock (time limit 3 s)
    sweeper = Runtime.from_env(scf.env).sweeper
    sweeper.sweep()
    settle_ci(cloud.ci, 30)
    sweeper.sweep()
    for i, key in enumerate(keys):
        exists = cos.object_exists(Bucket=intake, Key=key)
        if i % 3 == 0:
            assert not exists, key  # every EICAR quarantined
        else:
            assert exists, key      # no clean object moved
            tags = {t["Key"]: t["Value"] for t in cos.get_object_tagging(Bucket=intake, Key=key)["TagSet"]["Tag"]}
            assert tags["cosguard-status"] == "clean", key
