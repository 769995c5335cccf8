"""A handler's cold start loads only what its common path uses, and calls no one.

Each function's index.py is imported the way SCF does (its directory first on sys.path, the
production environment) in a fresh interpreter; every endpoint points at a listener that counts
connections.
"""
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Loaded only where they are used: webhooks when COSGUARD_NOTIFY_URL is set, a thread pool for an
# event of several records or a sweep that finds open jobs, dataclasses nowhere on a handler's path
# (cosguard.infra.records instead), and the CLI, its tables, backfill, restore and the emulator never in a function.
NEVER = ["cosguard.infra.notify", "cosguard.cli", "cosguard.ui", "cosguard.local", "cosguard.bulk.backfill",
         "cosguard.bulk.invoke", "cosguard.bulk.checkpoint", "cosguard.domain.restore", "dataclasses"]
NOT_LOADED = {
    "scan_on_upload": NEVER + ["concurrent.futures", "cosguard.triggers.callback", "cosguard.domain.verdict",
                               "cosguard.bulk.sweep", "defusedxml"],
    "quarantine_callback": NEVER + ["concurrent.futures", "cosguard.domain.scan", "cosguard.bulk.sweep"],
    "reconcile_pending": NEVER + ["concurrent.futures", "cosguard.triggers.callback", "defusedxml"],
}
LOADED = {
    "scan_on_upload": ["cosguard.domain.scan"],
    "quarantine_callback": ["cosguard.triggers.callback"],
    "reconcile_pending": ["cosguard.bulk.sweep"],
}

PROBE = r"""
import importlib, json, sys
import qcloud_cos  # the floor: what the SDK loads itself is not the handler's doing
floor = set(sys.modules)
sys.path.insert(0, sys.argv[1])
importlib.import_module("index")
print(json.dumps(sorted(set(sys.modules) - floor)))
"""


@pytest.fixture
def listener():
    """A TCP port that counts the connections made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("function", sorted(NOT_LOADED))
def test_cold_start_loads_only_its_path_and_calls_nothing(function, listener):
    port, accepted = listener
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSGUARD_", "TENCENTCLOUD_"))}
    env.update({
        "TENCENTCLOUD_SECRETID": "AKIDexample", "TENCENTCLOUD_SECRETKEY": "secret-key",
        "TENCENTCLOUD_SESSIONTOKEN": "session-token", "COSGUARD_REGION": "ap-guangzhou",
        "COSGUARD_BUCKETS": "intake-1250000000", "COSGUARD_QUARANTINE_BUCKET": "quarantine-1250000000",
        "COSGUARD_COS_ENDPOINT": endpoint, "COSGUARD_CI_ENDPOINT": endpoint,
        "COSGUARD_CALLBACK_URL": endpoint + "/callback", "COSGUARD_CALLBACK_TOKEN": "t" * 32,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
    })
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions" / function)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))  # loaded by the handler beyond qcloud_cos's own
    loaded = sorted(m for m in modules for banned in NOT_LOADED[function]
                    if m == banned or m.startswith(banned + "."))
    assert loaded == [], f"{function} loads at cold start what its path does not use: {loaded}"
    assert set(LOADED[function]) <= modules  # its own service is built at cold start, not on the first event
    assert accepted == [], f"{function} connected to the network at cold start"
