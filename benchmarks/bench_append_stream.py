"""Memory bound of the streamed copy of an appendable object (the one path that moves object bytes
through a function: COS cannot copy an APPEND Object upload, doc 436/7741).

How: a LocalCos in this process holds one appendable object of `--mb` MB (built by appends of
8 MB); a fresh child process builds cosguard's CloudGateway against it and copies the object once,
reporting its RSS just before the copy and its peak RSS during it (Linux VmHWM, reset with
/proc/self/clear_refs first). Modes: `stream` (CloudGateway.stream_copy, what actions.py does:
8 MB ranged GETs, multipart upload) and, for comparison, `whole` (one GET read into memory, one PUT).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ROOT, header, table
from cosguard.local.cos import DEFAULT_CREDENTIALS, LocalCos

BUCKET = "bench-1250000000"
KEY = "appendable.bin"
CHUNK = 8 * 1024 * 1024


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])   # kB
    return 0


def child(endpoint: str, mode: str) -> None:
    """Runs in its own process: one copy, its RSS figures as JSON on stdout."""
    from cosguard.infra.cloud import CloudGateway
    from cosguard.infra.config import Settings

    settings = Settings.from_env({
        "TENCENTCLOUD_SECRETID": DEFAULT_CREDENTIALS.secret_id,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_CREDENTIALS.secret_key, "COSGUARD_REGION": "ap-guangzhou",
        "COSGUARD_BUCKETS": BUCKET, "COSGUARD_CALLBACK_TOKEN": "bench-callback-token-0123456789",
        "COSGUARD_COS_ENDPOINT": endpoint}, require_callback_url=False)
    gateway = CloudGateway(settings)
    info = gateway.head(BUCKET, KEY)
    assert info.object_type == "appendable", info
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")   # peak RSS := current RSS
    before = _status("VmRSS")
    started = time.perf_counter()
    if mode == "stream":
        gateway.stream_copy(info, BUCKET, f"copy-{mode}.bin")
    else:
        body = gateway.cos.get_object(Bucket=BUCKET, Key=KEY)["Body"].get_raw_stream().read()
        gateway.cos.put_object(Bucket=BUCKET, Key=f"copy-{mode}.bin", Body=body)
        del body
    seconds = time.perf_counter() - started
    print(json.dumps({"before_kb": before, "peak_kb": _status("VmHWM"), "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of the appendable object (MB)")
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    header(f"Streamed copy of a {args.mb} MB appendable object: peak RSS of the copying process")
    with LocalCos() as cos:
        cos.create_bucket(BUCKET)
        from qcloud_cos import CosS3Client

        client = CosS3Client(cos.client_config())
        size = args.mb * 1024 * 1024
        chunk = os.urandom(CHUNK)
        for position in range(0, size, CHUNK):
            client.append_object(Bucket=BUCKET, Key=KEY, Position=position, Data=chunk[:min(CHUNK, size - position)])
        rows = []
        for mode in ("stream", "whole"):
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
            out = subprocess.run([sys.executable, __file__, "--child", cos.endpoint, mode], env=env,
                                 check=True, capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            got = client.head_object(Bucket=BUCKET, Key=f"copy-{mode}.bin")
            assert int(got["Content-Length"]) == size
            extra = (figures["peak_kb"] - figures["before_kb"]) / 1024
            rows.append((mode, args.mb, round(figures["before_kb"] / 1024, 1), round(figures["peak_kb"] / 1024, 1),
                         round(extra, 1), round(figures["seconds"], 2)))
    print(table(("mode", "object MB", "RSS before MB", "peak RSS MB", "peak - before MB", "seconds"), rows))


if __name__ == "__main__":
    main()
