"""Fan-out for backfill: synthetic COS trigger events handed to `scan_on_upload` asynchronously.

SCF is the distributed engine: each invocation scans its batch of records through the same
path a real upload takes (triggers/upload.py, `Scanner.scan_uploads`). Invocation sits behind the `Invoker` seam:
`LocalInvoker` over the local SCF runtime's async queue (tests, the local cloud) and `ScfInvoker`,
SCF's `Invoke` API (TC3-HMAC-SHA256 signed, `requests` only, no Tencent SDK).
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, urlsplit

import requests

from ..errors import CloudPermanentError, CloudTransientError
from ..infra.retry import Backoff, Deadline, call_with_retry
from ..triggers.events import UPLOAD_EVENT

SCF_HOST = "scf.tencentcloudapi.com"
SCF_VERSION = "2018-04-16"
# SCF limits the event of an asynchronous invocation to 128 KB (SCF quota page, "asynchronous
# invocation request event size"); batches are split below it with room for the request envelope.
MAX_ASYNC_EVENT_BYTES = 120 * 1024
THROTTLE_CODES = {"RequestLimitExceeded", "LimitExceeded", "InternalError", "ResourceUnavailable",
                  "FailedOperation.FunctionStatusError"}

# The COS event names the bucket's region by its legacy short code (reference §3.4: "cd").
# Unlisted regions pass through unchanged: scan_on_upload never reads this field.
SHORT_REGIONS = {
    "ap-guangzhou": "gz", "ap-beijing": "bj", "ap-shanghai": "sh", "ap-chengdu": "cd",
    "ap-chongqing": "cq", "ap-nanjing": "nj", "ap-hongkong": "hk", "ap-singapore": "sg",
    "ap-mumbai": "in", "ap-seoul": "kr", "ap-tokyo": "jp", "ap-bangkok": "th",
    "na-siliconvalley": "sv", "na-ashburn": "va", "na-toronto": "ca", "eu-frankfurt": "de",
}


@dataclass(frozen=True)
class ObjectRef:
    """One existing object version to scan, as the listing showed it."""

    bucket: str
    key: str
    size: int
    version_id: Optional[str] = None
    listed: Optional[str] = None   # the write's identity as the listing showed it (Entry.token)


def synthetic_record(ref: ObjectRef, region: str, *, function: str = "scan_on_upload",
                     namespace: str = "default", now: Optional[float] = None) -> Dict[str, Any]:
    """One `Records[i]` in the shape of reference §3.4.

    The key is sent unencoded: `scan_on_upload` tries the key as sent first, so the literal
    listed key is always found by its first HEAD whatever characters it holds. `ref.listed` goes
    as `cosguard.listed`: the worker reads the ledger's record of that write before any HEAD
    (Scanner.scan_object), so the claim set is consulted per batch inside the workers.
    """
    name, _, appid = ref.bucket.rpartition("-")
    short = SHORT_REGIONS.get(region, region)
    extra = {"cosguard": {"listed": ref.listed}} if ref.listed else {}
    return {
        **extra,
        "cos": {
            "cosSchemaVersion": "1.0",
            "cosObject": {
                "url": f"https://{ref.bucket}.cos.{region}.myqcloud.com/{quote(ref.key, safe='/-_.~')}",
                "meta": {"x-cos-request-id": "cosguard-backfill-" + uuid.uuid4().hex, "Content-Type": ""},
                "vid": ref.version_id or "",
                "key": f"/{appid}/{name}/{ref.key}",
                "size": int(ref.size),
            },
            "cosBucket": {"region": short, "name": name, "appid": appid},
            "cosNotificationId": "unknown",
        },
        "event": {
            "eventName": UPLOAD_EVENT,
            "eventVersion": "1.0",
            "eventTime": int(now if now is not None else time.time()),
            "eventSource": "qcs::cos",
            "requestParameters": {"requestSourceIP": "", "requestHeaders": {"Authorization": ""}},
            "eventQueue": f"qcs:0:lambda:{short}:appid/{appid}:{namespace}.{function}.$LATEST",
            "reservedInfo": "cosguard-backfill",
            "reqid": random.randint(10 ** 8, 2 ** 31 - 1),
        },
    }


def batch_events(records: Sequence[Dict[str, Any]], batch_size: int,
                 max_bytes: int = MAX_ASYNC_EVENT_BYTES) -> List[Dict[str, Any]]:
    """`{"Records": [...]}` events of at most `batch_size` records and `max_bytes` of JSON each."""
    events: List[Dict[str, Any]] = []
    current: List[Dict[str, Any]] = []
    size = len('{"Records": []}')
    for record in records:
        record_bytes = len(json.dumps(record, ensure_ascii=False).encode("utf-8")) + 2
        if current and (len(current) >= batch_size or size + record_bytes > max_bytes):
            events.append({"Records": current})
            current, size = [], len('{"Records": []}')
        current.append(record)
        size += record_bytes
    if current:
        events.append({"Records": current})
    return events


class InvokeError(Exception):
    """An invocation was not accepted; `retryable` when throttling or a server error may heal."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class Invoker:
    """Hands one event to `scan_on_upload` asynchronously; returns an id for the log."""

    def invoke(self, event: Mapping[str, Any]) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class LocalInvoker(Invoker):
    """The local SCF runtime's async queue (`LocalScf.invoker.enqueue`): SCF's async invocation."""

    def __init__(self, enqueue: Callable[[Dict[str, Any]], Any]):
        self.enqueue = enqueue

    def invoke(self, event: Mapping[str, Any]) -> str:
        self.enqueue(json.loads(json.dumps(event)))  # a copy, as SCF would deliver it
        return "local-" + uuid.uuid4().hex


def tc3_authorization(secret_id: str, secret_key: str, *, service: str, host: str, payload: bytes,
                      timestamp: int, content_type: str = "application/json; charset=utf-8") -> str:
    """TencentCloud API 3.0 signature (TC3-HMAC-SHA256) of a POST to `/` signing content-type and host."""
    date = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join(["POST", "/", "", f"content-type:{content_type}\nhost:{host}\n",
                           "content-type;host", hashlib.sha256(payload).hexdigest()])
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])

    def mac(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    signature = hmac.new(signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return (f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, "
            f"Signature={signature}")


class ScfInvoker(Invoker):
    """SCF `Invoke` (InvocationType=Event) over HTTPS, signed with the deployment's keys.

    Unverified against Tencent: tested against a local receiver and the signature against the
    worked example in Tencent's API 3.0 signature documentation.
    """

    def __init__(self, secret_id: str, secret_key: str, region: str, function: str, *,
                 namespace: str = "default", qualifier: Optional[str] = None, token: Optional[str] = None,
                 endpoint: str = f"https://{SCF_HOST}", timeout: float = 10.0, attempts: int = 5,
                 clock: Callable[[], float] = time.time, session: Optional[requests.Session] = None,
                 backoff: Optional[Backoff] = None):
        self.secret_id, self.secret_key, self.token = secret_id, secret_key, token
        self.region, self.function, self.namespace, self.qualifier = region, function, namespace, qualifier
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.timeout, self.attempts = timeout, attempts
        self.clock = clock
        self.session = session or requests.Session()
        self.backoff = backoff or Backoff()

    def build_request(self, event: Mapping[str, Any]) -> Tuple[str, Dict[str, str], bytes]:
        """(url, headers, body) of one Invoke call, signed at `clock()`."""
        params: Dict[str, Any] = {"FunctionName": self.function, "InvocationType": "Event",
                                  "Namespace": self.namespace,
                                  "ClientContext": json.dumps(event, ensure_ascii=False)}
        if self.qualifier:
            params["Qualifier"] = self.qualifier
        body = json.dumps(params, ensure_ascii=False).encode("utf-8")
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Host": self.host,
            "X-TC-Action": "Invoke",
            "X-TC-Version": SCF_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
            "Authorization": tc3_authorization(self.secret_id, self.secret_key, service="scf",
                                               host=self.host, payload=body, timestamp=timestamp),
        }
        if self.token:
            headers["X-TC-Token"] = self.token
        return self.endpoint + "/", headers, body

    def invoke(self, event: Mapping[str, Any]) -> str:
        def once() -> str:
            url, headers, body = self.build_request(event)  # re-signed per attempt: fresh timestamp
            try:
                answer = self.session.post(url, data=body, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                raise CloudTransientError(f"SCF Invoke: {exc}", operation="Invoke") from exc
            return self._result(answer)
        try:
            return call_with_retry(once, attempts=self.attempts, deadline=Deadline(), backoff=self.backoff)
        except (CloudTransientError, CloudPermanentError) as exc:
            raise InvokeError(str(exc), retryable=exc.retryable) from exc

    @staticmethod
    def _result(answer: requests.Response) -> str:
        try:
            response = answer.json().get("Response") or {}
        except ValueError:
            response = {}
        error = response.get("Error") or {}
        if answer.status_code >= 500 or error.get("Code") in THROTTLE_CODES:
            raise CloudTransientError(f"SCF Invoke: {answer.status_code} {error.get('Code', '')} "
                                      f"{error.get('Message', '')}".strip(), operation="Invoke",
                                      code=error.get("Code", ""), request_id=response.get("RequestId", ""))
        if answer.status_code >= 400 or error:
            raise CloudPermanentError(f"SCF Invoke: {answer.status_code} {error.get('Code', '')} "
                                      f"{error.get('Message', '')}".strip(), operation="Invoke",
                                      code=error.get("Code", ""), request_id=response.get("RequestId", ""))
        result = response.get("Result") or {}
        return str(result.get("FunctionRequestId") or response.get("RequestId") or "")
