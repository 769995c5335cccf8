"""The public callback endpoint: authenticate, extract a JobId, hand it to the verdict service.

Nothing from the body is trusted or used except the JobId, and that only to re-query CI.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..infra.config import Settings
from ..errors import CallbackRejected
from .events import HttpRequest
from ..infra.logs import bound, event, get_logger
from ..domain.security import token_matches
from ..domain.verdict import VerdictService

log = get_logger("cosguard.triggers.callback")

MAX_BODY_BYTES = 64 * 1024
JOB_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class HttpAnswer:
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
    except (DefusedXmlException, SafeET.ParseError) as exc:
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


class CallbackService:
    def __init__(self, settings: Settings, verdicts: VerdictService):
        self.settings = settings
        self.verdicts = verdicts

    def authenticate(self, request: HttpRequest) -> str:
        """The bucket the URL names, if its token is right; else CallbackRejected (401/403)."""
        bucket = request.query.get("bucket", "")
        token = request.query.get("token", "")
        if not token:
            raise CallbackRejected(401, "missing token")
        if not self.settings.serves(bucket):
            raise CallbackRejected(403, "bucket not served by this deployment")
        if not token_matches(self.settings.callback_token, bucket, token):
            raise CallbackRejected(401, "bad token")
        return bucket

    def handle(self, raw_event: Any) -> HttpAnswer:
        """Answer one callback request; never raises, never leaks a stack trace."""
        try:
            request = HttpRequest(raw_event)
            if request.method not in ("POST", "PUT"):
                raise CallbackRejected(405, "callbacks are POSTed")
            bucket = self.authenticate(request)
            job_id = extract_job_id(request.body(MAX_BODY_BYTES))
        except CallbackRejected as exc:
            level = logging.WARNING if exc.status in (401, 403) else logging.INFO
            source = raw_event.get("requestContext", {}).get("sourceIp", "") if isinstance(raw_event, dict) else ""
            event(log, "callback rejected", level, status=exc.status, reason=exc.reason, source_ip=source)
            return HttpAnswer(exc.status, {"error": exc.reason})
        with bound(bucket=bucket, job_id=job_id):
            try:
                result = self.verdicts.apply(bucket, job_id)
            except Exception:  # noqa: BLE001 - the public endpoint never shows a trace
                log.exception("callback failed")
                return HttpAnswer(500, {"job_id": job_id, "outcome": "error", "error": "internal error"})
        return HttpAnswer(result.http_status, result.as_dict())
