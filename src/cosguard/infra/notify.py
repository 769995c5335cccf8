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


def _age(seconds: Any) -> str:
    seconds = int(seconds or 0)
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds % 60} s"


def render_digest(fmt: str, doc: Dict[str, Any]) -> Dict[str, Any]:
    """The daily digest (bulk/digest.py): `json` as is; for the robots, cosguard's own figures as
    numbers and every object an operator must look at with its key and reason escaped like a
    message's (text.py): nothing an uploader named renders, links or mentions anyone."""
    if fmt == "json":
        return doc
    title = f"cosguard daily digest — {markdown_safe(doc['day'], 20)}"
    lines = [f"**{title}**"]
    for label, value in doc["figures"].items():
        if label.endswith("_seconds"):   # an age or a wait: shown when known
            if value:
                lines.append(f"> {markdown_safe(label[:-8].replace('_', ' '), 60)}: {_age(value)}")
        else:
            lines.append(f"> {markdown_safe(label, 60)}: {int(value)}")
    if doc.get("viruses"):   # names CI wrote: inline code, encoded
        lines.append("> top viruses: " + ", ".join(f"{markdown_code(v['name'], 60)} ×{int(v['count'])}"
                                                   for v in doc["viruses"]))
    if doc.get("unreadable"):
        lines.append(f"> partial: {len(doc['unreadable'])} location(s) could not be read")
    if doc["attention"]:
        lines.append("**needs a look**")
    for item in doc["attention"]:
        lines.append(f"- {markdown_safe(item['what'], 40)}: {markdown_code(item['key'])} in "
                     f"{markdown_code(item['bucket'], 80)} — {markdown_safe(item['detail'], 200)}")
    if doc.get("more"):
        lines.append(f"- … and {int(doc['more'])} more (`cosguard status`)")
    if doc.get("source_note"):
        lines.append(f"_{markdown_safe(doc['source_note'], 200)}_")
    text = "\n".join(lines)
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "markdown", "markdown": {"title": "cosguard daily digest", "text": text}}


class Notifier:
    def __init__(self, settings: Settings, session: Optional[requests.Session] = None):
        self.url = settings.notify_url
        self.format = settings.notify_format
        self.session = session or requests.Session()

    def send(self, doc: Dict[str, Any]) -> bool:
        return self._post(render(self.format, doc), doc["kind"], doc["key"])

    def send_digest(self, doc: Dict[str, Any]) -> bool:
        return self._post(render_digest(self.format, doc), "digest", "")

    def _post(self, payload: Dict[str, Any], kind: str, key: str) -> bool:
        if not self.url:
            return False
        try:
            answer = self.session.post(self.url, json=payload, timeout=TIMEOUT_SECONDS)
            ok = 200 <= answer.status_code < 300
            detail = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            ok, detail = False, type(exc).__name__
        if not ok:
            event(log, "notification_failed", logging.WARNING, kind=kind, key=key, reason=detail)
        return ok
