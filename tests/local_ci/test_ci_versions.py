"""Local CI and object versions: what a scanner of a versioned bucket relies on, through the SDK.

CI's submit API takes an Object key or a Url (doc 436/50132). An Object job reads whatever the key
holds when it runs (held jobs let a test choose that moment); a Url on COS's host name is fetched
from the local COS, so a pre-signed GET naming a version reads that version. Whether CI keeps a
Url's query string is undocumented: dropped by default (the worse answer), kept when switched."""
from __future__ import annotations

import pytest

from cosguard.domain.jobs import VirusJob
from cosguard.infra.cloud import CloudGateway
from cosguard.infra.config import Settings
from cosguard.local.samples import clean_text, eicar
from cosguard.local.stack import LocalCloud

BUCKET = "versions-1250000000"


@pytest.fixture
def cloud():
    with LocalCloud([BUCKET], versioned=[BUCKET], scan_delay=0.01) as started:
        yield started


def _gateway(cloud) -> CloudGateway:
    env = cloud.function_env(COSGUARD_CALLBACK_TOKEN="t" * 32)
    return CloudGateway(Settings.from_env(env, require_callback_url=False))


def _verdict(cloud, gateway, job_id):
    cloud.ci.wait_idle()
    return VirusJob.of(gateway.query_virus_job(BUCKET, job_id))


def test_a_held_object_job_reads_the_key_when_released(cloud):
    cos, ci = cloud.client("cos"), cloud.client("ci")
    ci_faults = cloud.ci.faults
    ci_faults.stuck_jobs = {"held.exe"}
    cos.put_object(Bucket=BUCKET, Key="held.exe", Body=clean_text())
    job_id = ci.ci_auditing_virus_submit(Bucket=BUCKET, Key="held.exe")["JobsDetail"]["JobId"]
    cos.put_object(Bucket=BUCKET, Key="held.exe", Body=eicar())     # lands before CI reads
    assert cloud.ci.backend.release("held.exe") == [job_id]
    job = _verdict(cloud, _gateway(cloud), job_id)
    assert job.infected and job.object_key == "held.exe"


@pytest.mark.parametrize("dropped", [True, False], ids=["query-dropped (default)", "query-kept"])
def test_a_version_pinned_presigned_url(cloud, dropped):
    cos = cloud.client("cos")
    assert cloud.ci.faults.url_query_dropped      # the default
    cloud.ci.faults.url_query_dropped = dropped
    v1 = cos.put_object(Bucket=BUCKET, Key="a b.exe", Body=eicar())["x-cos-version-id"]
    cos.put_object(Bucket=BUCKET, Key="a b.exe", Body=clean_text())
    gateway = _gateway(cloud)
    job = _verdict(cloud, gateway, gateway.submit_virus_job(BUCKET, "a b.exe", None, v1, pinned=True))
    base = f"http://{BUCKET}.cos.{cloud.region}.myqcloud.com/a%20b.exe"
    assert job.url.startswith(base + "?") and "versionId=" in job.url and not job.object_key
    if dropped:   # without its signature the GET is refused: the job fails, it never reads v2
        assert (job.state, job.code) == ("Failed", "ResourceDownloadFailed")
    else:         # v1's bytes, although v2 is current; the finding names no credential
        assert job.infected and job.findings[0][0] == base
