"""Helpers for local CI tests (not in conftest.py: every test folder's conftest is `conftest`)."""
from __future__ import annotations

import time
from pathlib import Path

from qcloud_cos import CosS3Client

from ci_samples import BUCKET
from cosguard.local.ci import RetryPolicy

DATA = Path(__file__).parent / "data"
SIGNATURES = [DATA / "test.hdb", DATA / "test.hsb"]
FAST_RETRY = RetryPolicy(max_attempts=3, backoff=0.05, factor=2.0, timeout=2.0)
FINAL_STATES = ("Success", "Failed")


def wait_done(client: CosS3Client, job_id: str, bucket: str = BUCKET, timeout: float = 10.0) -> dict:
    """Poll the query API until the job ends; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.ci_auditing_virus_query(Bucket=bucket, JobID=job_id)
        if answer["JobsDetail"]["State"] in FINAL_STATES or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


def scan(client: CosS3Client, key: str, bucket: str = BUCKET, wait: float = 10.0, **kwargs) -> dict:
    """Submit one object and wait (at most `wait` seconds) for its result."""
    submitted = client.ci_auditing_virus_submit(Bucket=bucket, Key=key, **kwargs)
    return wait_done(client, submitted["JobsDetail"]["JobId"], bucket, timeout=wait)
