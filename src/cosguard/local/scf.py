"""A local SCF runtime: functions from `functions/*/` run in their own worker processes, loaded by
handler string with the environment production uses. COS events invoke `scan_on_upload`
asynchronously (queued, retried on error like SCF's async retries); `quarantine_callback` is served
on a function-URL endpoint."""
from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence

from .function_url import FunctionUrlServer
from .loader import FUNCTIONS_DIR

log = logging.getLogger("cosguard_local.scf")


class FunctionError(Exception):
    """An invocation that raised, timed out, or whose instance failed to start."""


@dataclass
class Invocation:
    """One attempt at one invocation, for the runtime's log, the demo and the benchmarks."""

    function: str
    request_id: str
    attempt: int
    ok: bool
    duration_ms: int
    error: str = ""
    result: Any = field(default=None, repr=False)


class Instance:
    """One warm function instance: a worker process serving one invocation at a time."""

    def __init__(self, function: str, env: Mapping[str, str], handler: str = "index.main_handler",
                 functions_dir=FUNCTIONS_DIR, log_stream: Optional[IO[str]] = None):
        self.function = function
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("TENCENTCLOUD_", "COSGUARD_"))}
        child_env.update(env)
        child_env.setdefault("PYTHONDONTWRITEBYTECODE", "x")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cosguard.local.scf_worker", str(functions_dir / function), handler],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env, bufsize=1)
        stdin, stdout, stderr = self.process.stdin, self.process.stdout, self.process.stderr
        assert stdin is not None and stdout is not None and stderr is not None   # all three are PIPEs
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._pump = threading.Thread(target=self._forward_logs, args=(log_stream,), daemon=True)
        self._pump.start()
        hello = json.loads(self._stdout.readline() or '{"init_error": "instance exited"}')
        if "init_error" in hello:
            self.close()
            raise FunctionError(f"{function} failed to initialise: {hello['init_error']}")

    def _forward_logs(self, stream: Optional[IO[str]]) -> None:
        for line in self._stderr:
            if stream is not None:
                try:
                    stream.write(line)
                    stream.flush()
                except ValueError:  # stream closed at shutdown
                    return

    def invoke(self, event: Any, context: Mapping[str, Any], timeout: float) -> Any:
        with self._lock:
            request_id = next(self._ids)
            try:
                self._stdin.write(json.dumps({"id": request_id, "event": event, "context": dict(context)}) + "\n")
                self._stdin.flush()
            except (OSError, ValueError):  # the process died (idle or not): the runtime replaces it
                self.close()
                raise FunctionError(f"{self.function} instance exited") from None
            answer_box: List[str] = []
            reader = threading.Thread(target=lambda: answer_box.append(self._stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout)
            if reader.is_alive() or not answer_box or not answer_box[0]:
                self.close()
                raise FunctionError(f"{self.function} timed out after {timeout:.1f} s" if reader.is_alive()
                                    else f"{self.function} instance exited")
            answer = json.loads(answer_box[0])
        if not answer["ok"]:
            raise FunctionError(f"{answer['error']['type']}: {answer['error']['message']}")
        return answer["result"]

    def peak_rss_kb(self) -> int:
        """VmHWM of the worker: its peak resident memory."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a timeout or an out-of-memory kill ends an SCF instance mid-invocation."""
        try:
            self.process.kill()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def close(self) -> None:
        """Stop the worker; returns once every line it logged has reached the log stream."""
        if self.process.poll() is None:
            try:
                self._stdin.close()
                self.process.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.process.kill()
        if self._pump is not threading.current_thread():
            self._pump.join(timeout=5)


class Function:
    """A deployed function: instances started on demand, `concurrency` at most."""

    def __init__(self, name: str, env: Mapping[str, str], *, concurrency: int = 2, memory_mb: int = 128,
                 time_limit_ms: int = 30000, log_stream: Optional[IO[str]] = None, functions_dir=FUNCTIONS_DIR):
        self.name = name
        self.env = dict(env)
        self.memory_mb = memory_mb
        self.time_limit_ms = time_limit_ms
        self.log_stream = log_stream
        self.functions_dir = functions_dir
        self._idle: "queue.LifoQueue[Instance]" = queue.LifoQueue()
        self._slots = threading.Semaphore(concurrency)
        self._all: List[Instance] = []
        self.invocations: List[Invocation] = []
        # Fault knob: the share of invocations whose instance is killed (SIGKILL) mid-invocation,
        # after a random delay of up to `kill_within` seconds. `seed_faults` makes it repeatable.
        self.kill_rate = 0.0
        self.kill_within = 0.3
        self.kills = 0
        self._random = random.Random()
        self._lock = threading.Lock()   # no instance starts after close(): none outlives the runtime
        self._closed = False

    def seed_faults(self, value: int) -> None:
        self._random.seed(value)

    def _instance(self) -> Instance:
        """A warm idle instance that is still alive, else a new one: dead instances are replaced."""
        while True:
            try:
                instance = self._idle.get_nowait()
            except queue.Empty:
                break
            if instance.alive:
                return instance
            instance.close()
        with self._lock:
            if self._closed:
                raise FunctionError(f"{self.name} is stopped")
            instance = Instance(self.name, self.env, functions_dir=self.functions_dir, log_stream=self.log_stream)
            self._all.append(instance)
        return instance

    def _maybe_kill(self, instance: Instance) -> Optional[threading.Timer]:
        if self.kill_rate <= 0 or self._random.random() >= self.kill_rate:
            return None
        self.kills += 1
        timer = threading.Timer(self._random.uniform(0, self.kill_within), instance.kill)
        timer.daemon = True
        timer.start()
        return timer

    def context(self, request_id: str) -> Dict[str, Any]:
        return {"request_id": request_id, "memory_limit_in_mb": self.memory_mb,
                "time_limit_in_ms": self.time_limit_ms, "function_name": self.name,
                "function_version": "$LATEST", "namespace": "default",
                "tencentcloud_region": self.env.get("COSGUARD_REGION", "")}

    def invoke(self, event: Any, request_id: Optional[str] = None, attempt: int = 1) -> Any:
        """One synchronous invocation on a warm (or new) instance; FunctionError when it fails."""
        request_id = request_id or str(uuid.uuid4())
        started = time.monotonic()
        with self._slots:
            instance = self._instance()
            killer = self._maybe_kill(instance)
            try:
                result = instance.invoke(event, self.context(request_id), self.time_limit_ms / 1000.0)
            except FunctionError as exc:
                self.invocations.append(Invocation(self.name, request_id, attempt, False,
                                                   int((time.monotonic() - started) * 1000), str(exc)))
                raise
            finally:
                if killer is not None:
                    killer.cancel()
                    killer.join()
                if instance.alive:
                    self._idle.put(instance)
                else:
                    instance.close()
        self.invocations.append(Invocation(self.name, request_id, attempt, True,
                                           int((time.monotonic() - started) * 1000), result=result))
        return result

    def peak_rss_kb(self) -> int:
        return max((i.peak_rss_kb() for i in self._all), default=0)

    def close(self) -> None:
        """Stop every instance; an invocation still running (a callback that arrived while the
        runtime stopped) can start no new one after this."""
        with self._lock:
            self._closed = True
            instances = list(self._all)
        for instance in instances:
            instance.close()


class AsyncInvoker:
    """SCF's asynchronous invocation: a queue, and up to `retries` more attempts after an error
    (SCF retries a COS-triggered runtime error twice by default, doc 583/41138: `retry_delays`)."""

    def __init__(self, function: Function, retry_delays: Sequence[float] = (1.0, 2.0), workers: int = 2):
        self.function = function
        self.retry_delays = list(retry_delays)
        self._queue: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self._busy = 0
        self._cond = threading.Condition()
        self.failed: List[Dict[str, Any]] = []  # events that exhausted their retries (SCF's dead letters)
        self._threads = [threading.Thread(target=self._run, daemon=True, name=f"scf-async-{i}")
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def enqueue(self, event: Dict[str, Any]) -> None:
        with self._cond:
            self._busy += 1
        self._queue.put((event, str(uuid.uuid4()), 1))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, request_id, attempt = item
            try:
                self.function.invoke(event, request_id, attempt)
            except Exception as exc:  # noqa: BLE001 - FunctionError or a runtime fault: retried, never fatal
                if attempt <= len(self.retry_delays):
                    timer = threading.Timer(self.retry_delays[attempt - 1], self._queue.put,
                                            args=((event, request_id, attempt + 1),))
                    timer.daemon = True
                    timer.start()
                    continue
                self.failed.append({"request_id": request_id, "error": str(exc), "event": event})
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class LocalScf:
    """cosguard's functions deployed on a LocalCloud, triggered and served as SCF would."""

    def __init__(self, cloud, env: Mapping[str, str], *, buckets: Sequence[str], trigger_prefix: str = "",
                 host: str = "127.0.0.1", callback_port: int = 0, concurrency: int = 2,
                 retry_delays: Sequence[float] = (1.0, 2.0), time_limit_ms: int = 30000,
                 log_stream: Optional[IO[str]] = None):
        self.cloud = cloud
        self.callback = Function("quarantine_callback", env, concurrency=concurrency,
                                 time_limit_ms=time_limit_ms, log_stream=log_stream)
        self.server = FunctionUrlServer(self._serve_callback, host, callback_port)
        self.env = dict(env, COSGUARD_CALLBACK_URL=env.get("COSGUARD_CALLBACK_URL") or self.server.url)
        self.callback.env = self.env
        self.scan = Function("scan_on_upload", self.env, concurrency=concurrency,
                             time_limit_ms=time_limit_ms, log_stream=log_stream)
        self.invoker = AsyncInvoker(self.scan, retry_delays, workers=concurrency)
        self.buckets = list(buckets)
        self.trigger_prefix = trigger_prefix
        self._subscriptions: List[Any] = []

    @property
    def callback_url(self) -> str:
        return self.server.url

    def _serve_callback(self, event: Dict[str, Any], context: Dict[str, Any]) -> Any:
        return self.callback.invoke(event, context.get("requestId"))

    def start(self) -> "LocalScf":
        self.server.start()
        for bucket in self.buckets:
            self._subscriptions.append(self.cloud.cos.subscribe(self.invoker.enqueue, bucket=bucket,
                                                                prefix=self.trigger_prefix))
        return self

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until every COS event is handled, every CI job finished and every callback answered:
        passes over all three until one pass changes nothing."""
        deadline = time.monotonic() + timeout

        def activity() -> tuple:
            return (len(self.scan.invocations), len(self.callback.invocations), len(self.cloud.ci.backend.jobs))

        while time.monotonic() < deadline:
            before = activity()
            self.cloud.cos.drain(max(0.1, deadline - time.monotonic()))
            self.invoker.wait_idle(max(0.1, deadline - time.monotonic()))
            self.cloud.ci.wait_idle(max(0.1, deadline - time.monotonic()))
            self.cloud.cos.drain(max(0.1, deadline - time.monotonic()))
            if self.invoker.wait_idle(0.05) and activity() == before:
                return True
        return False

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self.invoker.stop()
        self.server.stop()
        self.scan.close()
        self.callback.close()
