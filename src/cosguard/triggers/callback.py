"""The public callback endpoint: authenticate, extract a JobId, hand it to the verdict service.

Nothing from the body is trusted or used except the JobId, and that only to re-query CI. The URL's
token is per object and expires (security.py); the JobId's sealed ledger entry must name the object
the token was issued for. Every authentication failure (bad, missing or expired token, unknown
bucket, a JobId of another object) gets the same 401 answer, so nothing reveals which buckets or
jobs exist. Bad bodies get a 4xx, never a 5xx or a trace.
"""
from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Callable, Dict, Mapping, Optional

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..domain.probe_mode import ProbeMode
from ..domain.security import check_callback_query
from ..domain.verdict import VerdictService
from ..errors import CallbackRejected, ForeignJobError
from ..infra.config import Settings
from ..infra.logs import bound, event, get_logger
from ..infra.records import Record
from .events import HttpRequest

log = get_logger("cosguard.triggers.callback")

MAX_BODY_BYTES = 64 * 1024
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
UNAUTHORIZED = "unauthorized"  # the one answer to every authentication failure


class HttpAnswer(Record, frozen=True):
    status: int
    body: Mapping[str, Any]

    def as_scf(self) -> Dict[str, Any]:
        """The integrated-response dict both function URLs and API gateway understand."""
        return {"isBase64Encoded": False, "statusCode": self.status,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(dict(self.body), ensure_ascii=False)}


def _xml_job_id(body: bytes) -> Optional[str]:
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError, RecursionError, ValueError) as exc:
        raise CallbackRejected(400, f"unacceptable XML: {type(exc).__name__}") from None
    for path in ("JobsDetail/JobId", "./JobId", "Response/JobsDetail/JobId"):
        node = root.find(path)
        if node is not None and node.text:
            return node.text.strip()
    return None


def _json_job_id(body: bytes) -> Optional[str]:
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CallbackRejected(400, "body is neither XML nor JSON") from None
    except RecursionError:
        raise CallbackRejected(400, "JSON body nested too deeply") from None
    if not isinstance(doc, dict):
        raise CallbackRejected(400, "JSON body is not an object")
    for container, name in ((doc.get("Response"), "JobsDetail"), (doc, "JobsDetail"), (doc, "data")):
        if isinstance(container, dict) and isinstance(container.get(name), dict):
            inner = container[name]
            value = inner.get("JobId") or inner.get("trace_id")
            if value:
                return str(value)
    value = doc.get("JobId")
    return str(value) if value else None


def extract_job_id(body: bytes) -> str:
    """The JobId from CI's callback: query-shaped XML (with or without EventName) or JSON."""
    text = body.lstrip()
    if not text:
        raise CallbackRejected(400, "empty body")
    job_id = _xml_job_id(text) if text[:1] == b"<" else _json_job_id(text)
    if not job_id or not JOB_ID_RE.match(job_id):
        raise CallbackRejected(400, "no valid JobId in the body")
    return job_id


class Unauthorized(CallbackRejected):
    """Any authentication failure: answered 401 `unauthorized`, the reason only logged."""

    def __init__(self, reason: str):
        super().__init__(401, reason)


def issued_for(ref: str) -> Callable[[Optional[str]], None]:
    """The verdict's gate: the job's sealed ledger entry must name the upload the URL's token was
    issued for (security.object_ref); a job of any other upload raises ForeignJobError, before the
    verdict service does or reveals anything."""
    def admit(upload_ref: Optional[str]) -> None:   # None: an entry that names no upload
        if upload_ref != ref:
            raise ForeignJobError("the job belongs to another upload than the callback URL's")
    return admit


class CallbackService:
    def __init__(self, settings: Settings, verdicts: VerdictService, clock=time.time):
        self.settings = settings
        self.verdicts = verdicts
        self.clock = clock
        self.probe = ProbeMode(settings, verdicts.gateway, verdicts.sealer, clock)

    def authenticate(self, request: HttpRequest):
        """(bucket, ref) the URL's token was issued for; else Unauthorized.

        The token is checked for every request before the bucket is looked at, so an unknown
        bucket takes the same path, and gets the same answer, as a bad token."""
        query = {k: (v if isinstance(v, str) else "") for k, v in request.query.items()}
        valid, reason = check_callback_query(self.verdicts.sealer, query, self.clock())
        served = self.settings.serves(query.get("bucket", ""))
        if not (valid and served):
            raise Unauthorized(reason or "bucket not served by this deployment")
        return query["bucket"], query.get("ref", "")

    def handle(self, raw_event: Any) -> HttpAnswer:
        """Answer one callback request; never raises, never leaks a stack trace."""
        bucket = job_id = ""
        try:
            try:
                request = HttpRequest(raw_event)
                if request.method not in ("POST", "PUT"):
                    raise CallbackRejected(405, "callbacks are POSTed")
                bucket, ref = self.authenticate(request)
                if "probe_seal" in request.query and self.probe.on_callback(
                        raw_event, request.headers, request.query, bucket, ref):
                    return HttpAnswer(503, {"error": "probe: this callback is answered an error once"})
                job_id = extract_job_id(request.body(MAX_BODY_BYTES))
            except CallbackRejected:
                raise
            except Exception as exc:  # noqa: BLE001 - malformed requests of any shape are the caller's
                raise CallbackRejected(400, f"unacceptable request: {type(exc).__name__}") from None
        except CallbackRejected as exc:
            return self._rejected(exc, raw_event)
        with bound(bucket=bucket, job_id=job_id):
            try:
                result = self.verdicts.apply(bucket, job_id, admit=issued_for(ref))
            except ForeignJobError as exc:
                return self._rejected(Unauthorized(str(exc)), raw_event)
            except Exception:  # noqa: BLE001 - the public endpoint never shows a trace
                event(log, "callback_failed", logging.ERROR, exc_info=True)
                return HttpAnswer(500, {"job_id": job_id, "outcome": "error", "error": "internal error"})
        return HttpAnswer(result.http_status, result.as_dict())

    @staticmethod
    def _rejected(exc: CallbackRejected, raw_event: Any) -> HttpAnswer:
        """One warning (never the token), and the same answer to every authentication failure."""
        level = logging.WARNING if exc.status == 401 else logging.INFO
        source = raw_event.get("requestContext", {}).get("sourceIp", "") if isinstance(raw_event, dict) else ""
        event(log, "callback_rejected", level, http_status=exc.status, reason=exc.reason, source_ip=source)
        body = {"error": UNAUTHORIZED if isinstance(exc, Unauthorized) else exc.reason}
        return HttpAnswer(exc.status, body)
