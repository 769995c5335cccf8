"""`cosguard local` as a user runs it: one JSON ready line, the SDK served, quarantine on upload,
a clean stop on SIGTERM."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from qcloud_cos import CosConfig, CosS3Client

from helpers import quarantined_keys
from cosguard.local.samples import eicar


def client_for(ready, endpoint):
    host, port = ready[endpoint].split("//")[1].split(":")
    return CosS3Client(CosConfig(Region=ready["region"], SecretId=ready["secret_id"],
                                 SecretKey=ready["secret_key"], Scheme="http", IP=host, Port=int(port)))


def test_cosguard_local_serves_and_quarantines(tmp_path):
    log = tmp_path / "functions.log"
    process = subprocess.Popen([sys.executable, "-m", "cosguard.cli", "local", "--bucket", "mine-1250000000",
                                "--scan-delay", "0.05", "--function-logs", str(log)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        assert {"cos_endpoint", "ci_endpoint", "region", "secret_id", "secret_key", "buckets",
                "callback_url"} <= set(ready)
        assert ready["buckets"] == ["mine-1250000000"]
        cos = client_for(ready, "cos_endpoint")
        cos.put_object(Bucket="mine-1250000000", Key="up/eicar.com", Body=eicar())
        deadline = time.monotonic() + 15
        while cos.object_exists(Bucket="mine-1250000000", Key="up/eicar.com") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert quarantined_keys(cos, ready["quarantine_bucket"], "mine-1250000000", "up/eicar.com")
        ci = client_for(ready, "ci_endpoint")
        cos.put_object(Bucket="mine-1250000000", Key="plain.txt", Body=b"plain")
        job = ci.ci_auditing_virus_submit(Bucket="mine-1250000000", Key="plain.txt")["JobsDetail"]["JobId"]
        assert job.startswith("ss")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert out == ""  # exactly one line on stdout: the ready line, already read
    assert "verdict quarantined" in log.read_text()


def test_cosguard_local_rejects_bad_bucket_names():
    result = subprocess.run([sys.executable, "-m", "cosguard.cli", "local", "--bucket", "NoAppId"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "NoAppId" in result.stderr
