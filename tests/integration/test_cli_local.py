"""`cosguard local` as a user runs it: one JSON ready line, the SDK served, quarantine on upload,
a clean stop on SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from qcloud_cos import CosConfig, CosS3Client, CosServiceError

from cosguard.local.samples import eicar
from helpers import quarantined_keys


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
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["event"] == "verdict" and line["outcome"] == "quarantined" for line in logged)


def test_cosguard_local_rejects_bad_bucket_names():
    result = subprocess.run([sys.executable, "-m", "cosguard.cli", "local", "--bucket", "NoAppId"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "NoAppId" in result.stderr


def _tags(cos, bucket, key):
    tags = (cos.get_object_tagging(Bucket=bucket, Key=key).get("TagSet") or {}).get("Tag") or []
    return {t["Key"]: t["Value"] for t in (tags if isinstance(tags, list) else [tags])}


def test_watch_prefix_and_env_file(tmp_path):
    env_file = tmp_path / "local.env"
    process = subprocess.Popen([sys.executable, "-m", "cosguard.cli", "local", "--scan-delay", "0.05",
                                "--watch-prefix", "uploads/", "--env-file", str(env_file),
                                "--function-logs", str(tmp_path / "functions.log")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        assert ready["watch_prefix"] == "uploads/" and "keys under 'uploads/'" in ready["watches"]
        assert ready["env_file"] == str(env_file)
        written = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                       if line and not line.startswith("#"))
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"   # it holds keys and the callback secret
        assert written["COSGUARD_INCLUDE_PREFIXES"] == "uploads/"
        assert written["COSGUARD_CALLBACK_URL"] == ready["callback_url"]
        assert len(written["COSGUARD_CALLBACK_TOKEN"]) >= 16
        assert written["COSGUARD_COS_ENDPOINT"] == ready["cos_endpoint"]
        assert written["TENCENTCLOUD_SECRETKEY"] == ready["secret_key"]
        cos = client_for(ready, "cos_endpoint")
        bucket = ready["buckets"][0]
        cos.put_object(Bucket=bucket, Key="elsewhere/a.txt", Body=b"not watched")   # events run in order:
        cos.put_object(Bucket=bucket, Key="uploads/a.txt", Body=b"watched")         # this one comes after
        deadline = time.monotonic() + 30
        while _tags(cos, bucket, "uploads/a.txt").get("cosguard-status") != "clean":
            assert time.monotonic() < deadline, "the watched upload was never scanned"
            time.sleep(0.1)
        assert _tags(cos, bucket, "elsewhere/a.txt") == {}       # the trigger never fired for it
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert process.returncode == 0
    assert not env_file.exists()                                # it described a cloud that is gone


def test_help_says_which_keys_the_trigger_watches():
    result = subprocess.run([sys.executable, "-m", "cosguard.cli", "local", "--help"],
                            capture_output=True, text=True, timeout=30)
    text = " ".join(result.stdout.split())
    assert "watches every key in the protected buckets unless --watch-prefix" in text
    assert "--env-file FILE" in text


def test_cosguard_local_passes_the_delete_if_match_switch_to_its_cos(tmp_path):
    """COS documents no conditional DELETE (doc 436/7743): `--delete-if-match honour` turns it on."""
    process = subprocess.Popen([sys.executable, "-m", "cosguard.cli", "local", "--bucket", "mine-1250000000",
                                "--delete-if-match", "honour", "--function-logs", str(tmp_path / "f.log")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        cos = client_for(json.loads(process.stdout.readline()), "cos_endpoint")
        cos.put_object(Bucket="mine-1250000000", Key="kept.txt", Body=b"kept")
        with pytest.raises(CosServiceError) as err:
            cos.delete_object(Bucket="mine-1250000000", Key="kept.txt", IfMatch='"0123456789abcdef0123456789abcdef"')
        assert err.value.get_status_code() == 412
        assert cos.object_exists(Bucket="mine-1250000000", Key="kept.txt")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert process.returncode == 0


def test_cosguard_local_passes_every_switch_from_its_options_and_the_environment(tmp_path):
    """Each unknown's switch (docs/tencent-facts.md) is an option of `cosguard local` or its
    COSGUARD_LOCAL_* variable; the ready line names every switch's position."""
    env = dict(os.environ, COSGUARD_LOCAL_EVENT_VID="set", COSGUARD_LOCAL_APPEND_EVENTS="1")
    process = subprocess.Popen([sys.executable, "-m", "cosguard.cli", "local", "--bucket", "mine-1250000000",
                                "--callback-format", "json", "--callback-signed", "on", "--callback-retries", "3",
                                "--event-key", "literal", "--multipart-last-modified", "completion",
                                "--delete-if-match", "honour", "--function-logs", str(tmp_path / "f.log")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        switches = json.loads(process.stdout.readline())["switches"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert switches == {"callback_format": "json", "callback_signed": True, "callback_retries": 3,
                        "event_key_encoding": "literal", "event_vid": "set",
                        "multipart_last_modified": "completion", "append_events": True,
                        "append_keeps_etag": True, "delete_honours_if_match": True}
    assert process.returncode == 0
