"""Shared plumbing for the benchmark scripts: a local cloud with cosguard's functions on the local
SCF runtime, upload helpers that collect the COS events, a GetObject byte meter, small statistics
and a plain-text table printer.

Kept here so each bench_*.py reads as the measurement it makes, not as setup code.
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib
import platform
import shlex
import statistics
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

# A developer's real keys must never reach the local cloud (nor the functions it starts).
for _name in [n for n in os.environ if n.startswith(("TENCENTCLOUD_", "COSGUARD_"))]:
    del os.environ[_name]

from cosguard.local.function_url import FunctionUrlServer  # noqa: E402
from cosguard.local.scf import Function  # noqa: E402
from cosguard.local.stack import LocalCloud  # noqa: E402

CALLBACK_TOKEN = "bench-callback-token-0123456789"  # ≥ 16 chars, as Settings requires
APPID = "1250000000"
STATE_PREFIX = ".cosguard/"


# -- output ------------------------------------------------------------------------------------
def command() -> str:
    """The command line that produced this output, relative to the repository root."""
    script = pathlib.Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = str(script)
    return " ".join(["python", shlex.quote(script_text)] + [shlex.quote(a) for a in sys.argv[1:]])


def machine() -> str:
    return (f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs")


def header(title: str) -> None:
    """Title, command and machine; the load average too, since other work on a 2-core machine
    moves every figure here."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# {title}")
    print(f"# command: {command()}")
    print(f"# machine: {machine()}; load average {load} at start; {time.strftime('%Y-%m-%d %H:%M:%S')}")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain Markdown table (also readable as text), numbers right-aligned."""
    rows = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str], numeric: Sequence[bool]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(cells, widths, numeric)) + " |"

    numeric_cols = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(headers))]
    out = [line([str(h) for h in headers], [False] * len(headers)),
           "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                          for w, n in zip(widths, numeric_cols)) + "|"]
    out += [line(r, numeric_cols) for r in rows]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


# -- statistics --------------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: the value some request actually had)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))  # ceil(pct/100 * n)
    return ordered[min(rank, len(ordered)) - 1]


def diff(after: Dict[str, int], before: Dict[str, int]) -> Dict[str, int]:
    """Per-API counter deltas, zero entries dropped."""
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(keys)
            if after.get(k, 0) - before.get(k, 0)}


# -- GetObject bytes by key prefix ----------------------------------------------------------------
class GetObjectMeter:
    """WSGI middleware in front of the local COS app: GetObject answer bytes, split into ledger
    documents (keys under the state prefix) and everything else (object bytes).

    The local COS's own counter (`counters.bytes_read`) has the total but not the key, so this
    meter tells ledger reads from object reads; `check()` compares its total with the counter.
    """

    _SUBRESOURCES = ("acl", "tagging", "uploads", "uploadId", "versions", "cors", "policy", "restore",
                     "lifecycle", "versioning", "location", "select", "partNumber", "torrent")

    def __init__(self, app: Callable, ledger_prefix: str = STATE_PREFIX):
        self.app = app
        self.ledger_prefix = ledger_prefix
        self._lock = threading.Lock()
        self.ledger_bytes = 0
        self.object_bytes = 0
        self.ledger_gets = 0
        self.object_gets = 0
        self.object_keys: List[str] = []
        self.ledger_requests = 0  # requests of any API on ledger keys (or listing the ledger)

    def _is_get_object(self, environ: Dict[str, Any]) -> Optional[str]:
        if environ.get("REQUEST_METHOD") != "GET":
            return None
        path = environ.get("PATH_INFO", "")
        if path in ("", "/"):
            return None  # a bucket-level GET (listing)
        query = environ.get("QUERY_STRING", "")
        names = {part.split("=", 1)[0] for part in query.split("&") if part}
        if names & set(self._SUBRESOURCES):
            return None
        return path.lstrip("/")

    def _on_ledger(self, environ: Dict[str, Any]) -> bool:
        path = environ.get("PATH_INFO", "").lstrip("/")
        if path:
            return path.startswith(self.ledger_prefix)
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        return query.get("prefix", "").startswith(self.ledger_prefix)

    def __call__(self, environ: Dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if self._on_ledger(environ):
            with self._lock:
                self.ledger_requests += 1
        key = self._is_get_object(environ)
        if key is None:
            return self.app(environ, start_response)
        status_box: List[str] = []

        def recording_start_response(status, headers, exc_info=None):
            status_box.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = b"".join(self.app(environ, recording_start_response))
        if status_box and status_box[0].startswith("200"):
            with self._lock:
                if key.startswith(self.ledger_prefix):
                    self.ledger_bytes += len(body)
                    self.ledger_gets += 1
                else:
                    self.object_bytes += len(body)
                    self.object_gets += 1
                    self.object_keys.append(key)
        return [body]

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return {"ledger_bytes": self.ledger_bytes, "object_bytes": self.object_bytes,
                    "ledger_gets": self.ledger_gets, "object_gets": self.object_gets,
                    "ledger_requests": self.ledger_requests}


def install_meter(cloud: LocalCloud) -> GetObjectMeter:
    """Put a GetObjectMeter in front of the local COS; call before `cloud.start()`.

    Reaches into LocalCos's WSGI app attribute: the emulator has no public hook for this.
    """
    meter = GetObjectMeter(cloud.cos._app)  # noqa: SLF001 - benchmark instrumentation
    cloud.cos._app = meter  # noqa: SLF001
    return meter


# -- the deployment ---------------------------------------------------------------------------
class Bench:
    """A LocalCloud (intake + quarantine bucket) with cosguard's two functions on the local SCF
    runtime: `scan` is the upload trigger (invoked by the benchmark with the events it chooses),
    `callback` sits behind a function-URL server that CI calls back. Both are worker processes
    started from functions/*/index.py with the production environment pointed at this cloud.
    """

    def __init__(self, scan_delay: float = 0.2, meter: bool = False, concurrency: int = 2,
                 time_limit_ms: int = 600_000, callback_gate: bool = False, **env: str):
        tag = uuid.uuid4().hex[:6]
        self.intake = f"intake{tag}-{APPID}"
        self.jail = f"jail{tag}-{APPID}"
        self.cloud = LocalCloud([self.intake, self.jail], scan_delay=scan_delay)
        self.meter = install_meter(self.cloud) if meter else None
        self.cloud.start()
        self.cos = self.cloud.client("cos")
        self.events: List[Dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self.cloud.cos.subscribe(self._collect, bucket=self.intake)
        self.gate = threading.Event()
        if not callback_gate:
            self.gate.set()
        self.callback_server = FunctionUrlServer(self._serve_callback).start()
        self.env = self.cloud.function_env(
            COSGUARD_BUCKETS=self.intake, COSGUARD_QUARANTINE_BUCKET=self.jail,
            COSGUARD_CALLBACK_URL=self.callback_server.url, COSGUARD_CALLBACK_TOKEN=CALLBACK_TOKEN, **env)
        self.concurrency = concurrency
        self.time_limit_ms = time_limit_ms
        self.callback = self.function("quarantine_callback")
        self.scan = self.function("scan_on_upload")

    def function(self, name: str) -> Function:
        return Function(name, self.env, concurrency=self.concurrency, time_limit_ms=self.time_limit_ms)

    def _collect(self, event: Dict[str, Any]) -> None:
        with self._events_lock:
            self.events.append(event)

    def _serve_callback(self, event: Dict[str, Any], context: Dict[str, Any]) -> Any:
        self.gate.wait(30)
        return self.callback.invoke(event)

    # -- uploads ------------------------------------------------------------------------------
    def upload(self, items: Sequence[Tuple[str, bytes]], bucket: Optional[str] = None) -> List[float]:
        """PUT each (key, body); returns the wall-clock time each PUT returned."""
        done = []
        for key, body in items:
            self.cos.put_object(Bucket=bucket or self.intake, Key=key, Body=body)
            done.append(time.time())
        return done

    def take_records(self, expected: int, timeout: float = 60.0) -> List[Dict[str, Any]]:
        """The records of the COS events fired so far (waiting for `expected` of them)."""
        deadline = time.monotonic() + timeout
        while True:
            self.cloud.cos.drain(max(0.1, deadline - time.monotonic()))
            with self._events_lock:
                if sum(len(e["Records"]) for e in self.events) >= expected or time.monotonic() > deadline:
                    taken, self.events[:] = list(self.events), []
                    break
            time.sleep(0.01)
        records = [r for e in taken for r in e["Records"]]
        if len(records) < expected:
            raise RuntimeError(f"expected {expected} COS events, got {len(records)}")
        return records

    def settle(self, timeout: float = 120.0) -> bool:
        """Until CI has finished every job and delivered every callback."""
        return self.cloud.ci.wait_idle(timeout)

    def close(self) -> None:
        self.gate.set()
        self.scan.close()
        self.callback.close()
        self.callback_server.stop()
        self.cloud.stop()

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def cpu_seconds(function: Function) -> float:
    """User + system CPU time of all of a Function's live worker processes (from /proc)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for instance in function._all:  # noqa: SLF001 - benchmark instrumentation
        try:
            with open(f"/proc/{instance.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def requests_served(cloud: LocalCloud) -> int:
    """Requests the local COS and CI have answered so far (all APIs)."""
    cos = cloud.cos.counters.snapshot()
    return (sum(v for k, v in cos.items() if k not in ("bytes_read", "injected"))
            + sum(cloud.ci.counters.snapshot().values()))


def ledger_docs(cos, bucket: str, prefix: str) -> List[Dict[str, Any]]:
    """Every JSON document under `prefix` (read by the benchmark, outside any measured window)."""
    import json

    docs: List[Dict[str, Any]] = []
    marker = ""
    while True:
        page = cos.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
        contents = page.get("Contents") or []
        for item in contents:
            body = cos.get_object(Bucket=bucket, Key=item["Key"])["Body"].get_raw_stream().read()
            docs.append(json.loads(body))
        if str(page.get("IsTruncated", "false")).lower() != "true" or not contents:
            return docs
        marker = page.get("NextMarker") or contents[-1]["Key"]


@contextlib.contextmanager
def swallowed_stdout() -> Iterator[io.StringIO]:
    """cosguard's JSON logs follow sys.stdout: keep them (formatted, as in production) but off the
    benchmark's table."""
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        yield sys.stdout
    finally:
        sys.stdout = saved


def clean_body(i: int) -> bytes:
    from cosguard.local.samples import clean_text
    return clean_text() + f"object {i}\n".encode()


def mixed_items(prefix: str, count: int, infected_every: int = 0) -> List[Tuple[str, bytes]]:
    """`count` uploads; every `infected_every`-th is EICAR (0: none)."""
    from cosguard.local.samples import eicar

    items = []
    for i in range(count):
        infected = infected_every and i % infected_every == infected_every - 1
        items.append((f"{prefix}{i:05d}{'.com' if infected else '.txt'}", eicar() if infected else clean_body(i)))
    return items
