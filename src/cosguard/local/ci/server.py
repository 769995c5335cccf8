"""Local CI served over HTTP: the WSGI app (routing, signature, faults, counters) and `LocalCi`.

    POST /virus/detect            SubmitVirusJob
    GET  /virus/detect/<JobId>    QueryVirusJob
    GET  /                        DescribeCIBuckets: `{"CIStatus": "on"}`, or "off" for a bucket in
                                  Faults.unbound_buckets (doc 460/97481: on, off or unbinding)

The bucket comes from Host, `<bucket>.ci.<region>.myqcloud.com` as CI's own endpoint, or
`<bucket>.cos.<region>.myqcloud.com` as cos-python-sdk-v5 sends it when configured with IP/Port.
HTTP errors (XML, see wire.py):

    400 MissingContent / MalformedXML / InvalidArgument   unreadable or refused submit body
    400 InvalidHost        Host is not a bucket endpoint of this region
    400 BucketNotBound     a bucket in Faults.unbound_buckets (not bound to CI)
    404 NoSuchBucket       a bucket the object store does not have (COS's code and message)
    403 (auth.verify's code: AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId)
    404 NoSuchJob          unknown job id, or a job of another bucket
    404 NoSuchResource     any other path; 405 MethodNotAllowed for a wrong method
    500 InternalError      injected (`error_rate`) or a bug;  503 SlowDown: injected throttling
"""
from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import os
import random
import re
import time
from typing import Callable, Iterable, Optional, Tuple, Union

from werkzeug.wrappers import Request, Response

from ..auth import Credentials, SignatureError, verify
from ..httpserver import ThreadedServer, raw_request_path
from ..store import MemoryObjectStore, ObjectStore
from ..switches import env_choice, env_count, env_flag
from .archives import ScanLimits
from .callbacks import CALLBACK_FORMATS, CallbackDispatcher, DeliveryLog, RetryPolicy
from .engine import Engine
from .faults import Counters, Faults
from .models import CiBackend, CiError
from .sources import MAX_FILE_SIZE, UrlFetcher
from .wire import XML, WireError, parse_submit, render_error, render_query, render_submit

log = logging.getLogger(__name__.replace("cosguard.local", "cosguard_local", 1))

SUBMIT, QUERY, STATUS = "SubmitVirusJob", "QueryVirusJob", "DescribeCIBuckets"
MAX_BODY = 64 << 10
_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9-]*)\.(?:ci|cos)\.(?P<region>[a-z0-9-]+)"
                   r"\.myqcloud\.com$")
_QUERY_PATH = re.compile(r"^/virus/detect/(?P<job_id>[^/]+)$")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status} {code}: {message}")


class CiApp:
    """The WSGI application; all state lives in the backend, faults and counters it is given."""

    def __init__(self, backend: CiBackend, credentials: Credentials, region: str, faults: Faults,
                 counters: Counters) -> None:
        self.backend = backend
        self.credentials = credentials
        self.region = region
        self.faults = faults
        self.counters = counters
        self._seq = itertools.count(1)
        self._salt = random.Random().getrandbits(24)

    def __call__(self, environ, start_response):  # noqa: ANN001 - WSGI
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        request_id = self._request_id()
        api = None
        try:
            api, job_id = self._route(request)
            self.counters.record(api)
            self._inject_faults()
            bucket = self._bucket(request.host)
            self._authenticate(request)
            if not self.backend.store.bucket_exists(bucket):
                raise _Refused(404, "NoSuchBucket", f"The specified bucket does not exist: {bucket}")
            if api == STATUS:   # doc 460/97481: a JSON body, `CIStatus` on / off / unbinding
                status = "off" if bucket in self.faults.unbound_buckets else "on"
                response = Response(json.dumps({"CIStatus": status}), status=200,
                                    content_type="application/json")
            elif bucket in self.faults.unbound_buckets:
                raise _Refused(400, "BucketNotBound",
                               f"The bucket {bucket} is not bound to Cloud Infinite; bind it first")
            elif api == SUBMIT:
                response = self._submit(request, bucket)
            else:
                response = self._query(bucket, job_id or "", request_id)
        except _Refused as exc:
            response = self._error(exc.status, exc.code, exc.message, request.path, request_id)
        except SignatureError as exc:
            response = self._error(exc.status, exc.code, exc.message, request.path, request_id)
        except (CiError, WireError) as exc:
            response = self._error(exc.status, exc.code, exc.message, request.path, request_id)
        except Exception:
            log.exception("local CI failed on %s %s", request.method, request.path)
            response = self._error(500, "InternalError", "We encountered an internal error",
                                   request.path, request_id)
        response.headers["x-ci-request-id"] = request_id
        response.headers["Server"] = "tencent-ci"
        if api is not None:
            self.counters.record(api, response.status_code)
        return response

    # -- steps ----------------------------------------------------------------------------------
    @staticmethod
    def _route(request: Request) -> Tuple[str, Optional[str]]:
        if request.path == "/":
            if request.method != "GET":
                raise _Refused(405, "MethodNotAllowed", f"{request.method} is not allowed here")
            return STATUS, None
        if request.path == "/virus/detect":
            if request.method != "POST":
                raise _Refused(405, "MethodNotAllowed", f"{request.method} is not allowed here")
            return SUBMIT, None
        match = _QUERY_PATH.match(request.path)
        if match:
            if request.method != "GET":
                raise _Refused(405, "MethodNotAllowed", f"{request.method} is not allowed here")
            return QUERY, match.group("job_id")
        raise _Refused(404, "NoSuchResource", f"No API at {request.path}")

    def _inject_faults(self) -> None:
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000.0)
        if self.faults.roll(self.faults.throttle_rate):
            raise _Refused(503, "SlowDown", "Please reduce your request rate.")
        if self.faults.roll(self.faults.error_rate):
            raise _Refused(500, "InternalError", "We encountered an internal error. Please try again.")

    def _bucket(self, host: str) -> str:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        match = _HOST.match(name.lower())
        if not match or match.group("region") != self.region:
            raise _Refused(400, "InvalidHost",
                           f"Host {host!r} is not <bucket>.ci.{self.region}.myqcloud.com")
        return match.group("bucket")

    def _authenticate(self, request: Request) -> None:
        raw_path = raw_request_path(request.environ)   # not the proxied request line's URL
        query = {key: request.args.get(key, "") for key in request.args}
        verify(self.credentials, request.method, raw_path, query,
               request.headers)  # type: ignore[arg-type]  # werkzeug Headers: case-insensitive, not a Mapping

    def _submit(self, request: Request, bucket: str) -> Response:
        if (request.content_length or 0) > MAX_BODY:
            raise _Refused(400, "InvalidArgument", f"The request body exceeds {MAX_BODY} bytes")
        parsed = parse_submit(request.get_data(cache=False))
        job = self.backend.submit_job(bucket, object_key=parsed.object_key, url=parsed.url,
                                      detect_type=parsed.detect_type, callback=parsed.callback)
        return Response(render_submit(job), status=200, content_type=XML)

    def _query(self, bucket: str, job_id: str, request_id: str) -> Response:
        job = self.backend.describe_job(bucket, job_id)
        return Response(render_query(job, request_id), status=200, content_type=XML)

    @staticmethod
    def _error(status: int, code: str, message: str, resource: str, request_id: str) -> Response:
        return Response(render_error(code, message, resource, request_id), status=status,
                        content_type=XML)

    def _request_id(self) -> str:
        raw = f"{int(time.time()):x}_{self._salt:06x}_{next(self._seq):x}".encode("ascii")
        return base64.b64encode(raw).decode("ascii").rstrip("=")


class LocalCi:
    """Local CI virus detection on loopback: `start()`, point the SDK at `endpoint`, `stop()`.

    `credentials` defaults to a random pair (read it back from `.credentials`); `store` to an
    empty MemoryObjectStore. `signature_files` are ClamAV `.hdb`/`.hsb` files. `cos_proxy` gives
    the local COS's endpoint, through which `Url` inputs on COS hosts are fetched (sources.py).

    Switches for what CI does not document about virus callbacks (docs/tencent-facts.md), each
    settable later on the instance and read from COSGUARD_LOCAL_CALLBACK_* when not given:
    `callback_format` `xml` (default) or `json`; `callback_signed` (default off) adds an
    `Authorization` signed with the account's key as COS signs requests (doc 436/7778);
    `callback_retries` (default 0: one attempt only; reconcile must settle a lost callback) is how
    many times a failed delivery is tried again. `callback_retry`, a full RetryPolicy, sets the
    backoff (and the retries, unless `callback_retries` is given).
    """

    def __init__(self, region: str = "ap-guangzhou", credentials: Optional[Credentials] = None,
                 store: Optional[ObjectStore] = None, host: str = "127.0.0.1", port: int = 0, *,
                 scan_delay: float = 0.2,
                 signature_files: Iterable[Union[str, "os.PathLike[str]"]] = (),
                 callback_format: Optional[str] = None, limits: Optional[ScanLimits] = None,
                 callback_retry: Optional[RetryPolicy] = None, rng: Optional[random.Random] = None,
                 callback_signed: Optional[bool] = None, callback_retries: Optional[int] = None,
                 fault_seed: Optional[int] = None, url_timeout: float = 10.0,
                 max_file_size: int = MAX_FILE_SIZE,
                 cos_proxy: Optional[Callable[[], Optional[str]]] = None) -> None:
        self.region = region
        self.credentials = credentials or Credentials(
            secret_id="AKIDlocal" + os.urandom(12).hex(), secret_key=os.urandom(16).hex())
        self.store = store if store is not None else MemoryObjectStore()
        self._host, self._port = host, port
        self.faults = Faults(random.Random(fault_seed))
        self.counters = Counters()
        self.deliveries = DeliveryLog()
        self.engine = Engine.from_files(signature_files, limits)
        self.dispatcher = CallbackDispatcher(
            self.faults, self.deliveries, retry=callback_retry, signer=self.credentials,
            body_format=env_choice("COSGUARD_LOCAL_CALLBACK_FORMAT", callback_format, CALLBACK_FORMATS, "xml"),
            signed=env_flag("COSGUARD_LOCAL_CALLBACK_SIGNED", callback_signed, False))
        if callback_retry is None or callback_retries is not None:
            self.callback_retries = env_count("COSGUARD_LOCAL_CALLBACK_RETRIES", callback_retries, 0)
        self.backend = CiBackend(
            self.store, self.engine, scan_delay=scan_delay, faults=self.faults,
            notifier=self.dispatcher.notify, rng=rng, max_file_size=max_file_size,
            url_fetcher=UrlFetcher(timeout=url_timeout, max_size=max_file_size, cos_proxy=cos_proxy))
        self.app = CiApp(self.backend, self.credentials, region, self.faults, self.counters)
        self._server: Optional[ThreadedServer] = None

    # -- switches settable on a running instance ---------------------------------------------------
    @property
    def callback_format(self) -> str:
        return self.dispatcher.body_format

    @callback_format.setter
    def callback_format(self, value: str) -> None:
        self.dispatcher.body_format = value

    @property
    def callback_signed(self) -> bool:
        return self.dispatcher.signed

    @callback_signed.setter
    def callback_signed(self, value: bool) -> None:
        self.dispatcher.signed = bool(value)

    @property
    def callback_retries(self) -> int:
        return self.dispatcher.retry.max_attempts - 1

    @callback_retries.setter
    def callback_retries(self, value: int) -> None:
        count = env_count("COSGUARD_LOCAL_CALLBACK_RETRIES", value, 0)
        self.dispatcher.retry = dataclasses.replace(self.dispatcher.retry, max_attempts=count + 1)

    def start(self) -> "LocalCi":
        if self._server is None:
            self._server = ThreadedServer(self.app, self._host, self._port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.backend.shutdown()
        self.dispatcher.shutdown()

    def __enter__(self) -> "LocalCi":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`; only while started."""
        if self._server is None:
            raise RuntimeError("LocalCi is not started")
        return self._server.endpoint

    @property
    def host(self) -> str:
        return self._server.host if self._server is not None else self._host

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalCi is not started")
        return self._server.port

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every job has ended and every callback was delivered or given up."""
        deadline = time.monotonic() + timeout
        if not self.backend.wait_idle(timeout):
            return False
        return self.dispatcher.wait_idle(max(0.0, deadline - time.monotonic()))

    def reset(self) -> None:
        """Clean slate between tests: jobs, delivery log, counters and faults."""
        self.backend.reset()
        self.deliveries.clear()
        self.counters.reset()
        self.faults.clear()
