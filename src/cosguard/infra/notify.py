"""Webhook notifications for infections, unscannable objects and errors.

A notification is best effort: a failure is logged and never blocks, delays past its timeout, or
undoes a quarantine.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Optional

import requests

from .config import Settings
from .logs import event, get_logger
from .text import KEY_CHARS, markdown_code, markdown_safe

log = get_logger("cosguard.infra.notify")
TIMEOUT_SECONDS = 5.0


def message(kind: str, bucket: str, key: str, *, job_id: Optional[str] = None, outcome: str = "",
            viruses: Optional[list] = None, location: str = "", detail: str = "",
            verdicts: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The JSON message: what happened, to which object, and where it is now. `verdicts`: a
    rescan's (kind `found_on_rescan`): the dates of the first, the previous and this verdict."""
    doc: Dict[str, Any] = {"source": "cosguard", "kind": kind, "bucket": bucket, "key": key, "job_id": job_id,
           "outcome": outcome, "viruses": viruses or [], "location": location, "detail": detail,
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if verdicts:
        doc["verdicts"] = dict(verdicts)
    return doc


def render(fmt: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """`json` as is (JSON escapes); WeCom and DingTalk group robots take markdown messages, in which
    nothing an uploader or CI wrote can render: keys, locations, job ids and virus names are inline
    code and, like the detail, have control, bidi and markdown characters percent-encoded (text.py),
    length-capped. The title (DingTalk's preview) is cosguard's own words only."""
    if fmt == "json":
        return doc
    title = f"cosguard: {markdown_safe(doc['kind'], 40)} — {markdown_safe(doc['bucket'], 80)}"
    lines = [f"**{title}**", f"> object: {markdown_code(doc['key'])}",
             f"> outcome: {markdown_safe(doc['outcome'], 40)}"]
    if doc["viruses"]:
        more = f" (+{len(doc['viruses']) - 5} more)" if len(doc["viruses"]) > 5 else ""
        lines.append(f"> viruses: {', '.join(markdown_code(v, 60) for v in doc['viruses'][:5])}{more}")
    if doc["location"]:
        lines.append(f"> now at: {markdown_code(doc['location'], KEY_CHARS + 100)}")
    if doc["detail"]:
        lines.append(f"> detail: {markdown_safe(doc['detail'])}")
    verdicts = doc.get("verdicts") or {}
    if verdicts:   # cosguard's own timestamps
        lines.append(f"> clean on: {markdown_safe(str(verdicts.get('previous_verdict_at', '')), 40)} (first verdict "
                     f"{markdown_safe(str(verdicts.get('first_verdict_at', '')), 40)}); found on rescan: "
                     f"{markdown_safe(str(verdicts.get('verdict_at', '')), 40)}")
    if doc["job_id"]:
        lines.append(f"> job: {markdown_code(doc['job_id'], 80)}")
    text = "\n".join(lines)
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": f"cosguard: {markdown_safe(doc['kind'], 40)}",
                                                "text": text}}


INFECTED_OUTCOMES = ("quarantined", "deleted", "infected")


def kind_of(outcome: str, infected: bool) -> str:
    """The message's `kind`, from what was done: `infected` only when infected bytes were acted
    on; a verdict not applied because the object changed (`stale`) is its own kind, whatever CI
    found in the bytes it scanned; anything else an operator must look at is an `alert`."""
    if outcome == "error":
        return "error"
    if outcome in INFECTED_OUTCOMES and infected:
        return "infected"
    return "stale" if outcome == "stale" else "alert"


class Notifier:
    def __init__(self, settings: Settings, session: Optional[requests.Session] = None):
        self.url = settings.notify_url
        self.format = settings.notify_format
        self.session = session or requests.Session()

    def send(self, doc: Dict[str, Any]) -> bool:
        if not self.url:
            return False
        try:
            answer = self.session.post(self.url, json=render(self.format, doc), timeout=TIMEOUT_SECONDS)
            ok = 200 <= answer.status_code < 300
            detail = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            ok, detail = False, type(exc).__name__
        if not ok:
            event(log, "notification_failed", logging.WARNING, kind=doc["kind"], key=doc["key"], reason=detail)
        return ok
