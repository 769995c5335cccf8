"""What `cosguard probe` saw, and what each observation means for cosguard.

Every question has an id, the observed answer, the setting or code branch it selects, whether the
deployment as configured fits it (`yes`, `NO`, `n/a`, `skipped`) and what to do. The ids are the
"probe checks" of docs/tencent-facts.md and the rows of docs/probe.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, unquote_plus

from ..errors import CallbackRejected
from ..triggers.callback import extract_job_id

CLEAN, RETRY, ODD, APPEND, VID = "clean.txt", "retry.txt", "key enc+\u00fc %.txt", "append.txt", "vid.txt"
SIGNATURE_HINTS = ("authorization", "sign", "signature", "x-ci-token")

QUESTIONS = (
    ("callback.format", "CI callback body format"),
    ("callback.content_type", "CI callback Content-Type"),
    ("callback.signed", "CI callback signed"),
    ("callback.retried", "CI re-sends a callback answered with an error"),
    ("event.key_encoding", "trigger event cosObject.key"),
    ("event.vid", "trigger event vid on a versioned bucket"),
    ("event.append", "an append fires cos:ObjectCreated:Append"),
    ("cos.delete_if_match", "DELETE honours If-Match"),
    ("cos.forbid_overwrite", "PUT honours x-cos-forbid-overwrite"),
    ("cos.multipart_last_modified", "multipart Last-Modified"),
    ("cos.append_etag", "each append changes the ETag"),
    ("cos.append_last_modified", "each append changes Last-Modified"),
    ("ci.unbound_error", "CI's error for an unbound bucket"),
    ("ci.job_failure", "CI's answer for a job it cannot complete"),
    ("ci.job_retention", "GET /virus/detect/<id> after the job ended"),
    ("ci.status", "CI binding (CIStatus) of each intake bucket"),
    ("ci.request_rate", "CI's per-bucket request rate"),
)


@dataclass
class Row:
    id: str
    question: str
    observed: str
    selects: str
    matches: str
    advice: str

    def as_dict(self) -> Dict[str, str]:
        return dict(vars(self))


@dataclass
class Observations:
    settings: Any
    bucket: str
    unbound_bucket: str = ""
    uploaded: List[str] = field(default_factory=list)
    events: List[Dict[str, Any]] = field(default_factory=list)
    callbacks: List[Dict[str, Any]] = field(default_factory=list)
    append_heads: List[Tuple[str, int]] = field(default_factory=list)
    versioning: Dict[str, str] = field(default_factory=dict)
    vid_bucket: str = ""
    delete_if_match: str = ""
    forbid_overwrite: str = ""
    multipart: Optional[Tuple[int, int, int]] = None
    failure_job: str = ""
    failure_submit: str = ""
    failure_state: str = ""
    unbound: str = ""
    ci_status: Dict[str, str] = field(default_factory=dict)
    retention: Optional[Tuple[str, int]] = None
    skipped: Dict[str, str] = field(default_factory=dict)
    cleanup: List[str] = field(default_factory=list)
    elapsed: float = 0.0
    timed_out: bool = False

    # -- reading the records ----------------------------------------------------------------------
    def event_records(self, name: str) -> List[Dict[str, Any]]:
        """The recorded event records of the scratch object `name` (literal or percent-encoded)."""
        found = []
        for doc in self.events:
            raw = _event_key(doc.get("record"))
            if raw is not None and any(k.endswith("/" + name) for k in (raw, unquote(raw), unquote_plus(raw))):
                found.append(doc["record"])
        return found

    def callbacks_of(self, name: str) -> List[Dict[str, Any]]:
        return sorted((c for c in self.callbacks if c.get("name") == name), key=lambda c: c.get("recorded_at", 0))

    def have_first_callbacks(self, sealer: Any = None) -> bool:
        events = all(self.event_records(n) for n in (CLEAN, RETRY, ODD) + ((VID,) if self.vid_bucket else ()))
        if not self.settings.callback_url:
            return events
        return events and bool(self.callbacks_of(CLEAN)) and bool(self.callbacks_of(RETRY))

    def retried(self) -> bool:
        return len(self.callbacks_of(RETRY)) >= 2

    def first_callback_time(self) -> Optional[float]:
        found = self.callbacks_of(CLEAN)
        return float(found[0]["recorded_at"]) if found else None

    def clean_job_id(self) -> str:
        for callback in self.callbacks_of(CLEAN):
            try:
                return extract_job_id(str(callback["request"].get("body") or "").encode("utf-8"))
            except (CallbackRejected, KeyError, AttributeError):
                continue
        return ""

    def as_dict(self) -> Dict[str, Any]:
        return {"rows": [r.as_dict() for r in rows(self)], "elapsed_seconds": self.elapsed,
                "timed_out": self.timed_out, "cleanup_problems": list(self.cleanup)}


def _event_key(record: Any) -> Optional[str]:
    try:
        key = str(record["cos"]["cosObject"]["key"])
    except (KeyError, TypeError):
        return None
    return key


# -- what each observation means -------------------------------------------------------------------
def _callback_rows(obs: Observations) -> List[Row]:
    first = obs.callbacks_of(CLEAN)
    if not obs.settings.callback_url:
        reason = "COSGUARD_CALLBACK_URL is not set: no callback to observe"
        return [_skipped(q, reason) for q in ("callback.format", "callback.content_type", "callback.signed",
                                              "callback.retried")]
    if not first:
        reason = "no callback arrived within the probe's time" + (" (timed out)" if obs.timed_out else "")
        return [_skipped(q, reason) for q in ("callback.format", "callback.content_type", "callback.signed",
                                              "callback.retried")]
    request = first[0]["request"]
    body = str(request.get("body") or "").lstrip()
    fmt = "XML" if body.startswith("<") else "JSON" if body.startswith("{") else "other"
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    content_type = headers.get("content-type", "(none)")
    signs = sorted(n for n in headers if any(h in n for h in SIGNATURE_HINTS))
    out = [
        Row("callback.format", _title("callback.format"), fmt, "triggers/callback.py extract_job_id: "
            + ("XML branch" if fmt == "XML" else "JSON branch"),
            "yes" if fmt in ("XML", "JSON") else "NO",
            "cosguard accepts both XML and JSON: nothing to change" if fmt != "other"
            else "a body cosguard cannot read: report it in an issue"),
        Row("callback.content_type", _title("callback.content_type"), content_type,
            "none: cosguard reads the body, whatever its Content-Type", "yes", "nothing to change"),
        Row("callback.signed", _title("callback.signed"), ("yes: " + ", ".join(signs)) if signs else "no",
            "the callback URL's per-object token (domain/security.py) authenticates every callback", "yes",
            "nothing to change: cosguard never trusts the body, it re-queries CI" + (
                "; the signature is not verified (the token suffices)" if signs else "")),
    ]
    retries = obs.callbacks_of(RETRY)
    if len(retries) >= 2:
        gap = round(float(retries[1]["recorded_at"]) - float(retries[0]["recorded_at"]), 1)
        out.append(Row("callback.retried", _title("callback.retried"), f"yes: sent again {gap} s later",
                       "CI's retry heals a failed callback; bulk/sweep.py remains the backstop", "yes",
                       "nothing to change"))
    elif retries:
        out.append(Row("callback.retried", _title("callback.retried"), "no (not within the probe's wait)",
                       "bulk/sweep.py (reconcile_pending timer) applies verdicts whose callback failed", "yes",
                       "keep the reconcile_pending timer enabled: it is the only path after a failed callback"))
    else:
        out.append(_skipped("callback.retried", "the probe object's callback never arrived"))
    return out


def _event_rows(obs: Observations) -> List[Row]:
    out: List[Row] = []
    odd = obs.event_records(ODD)
    if odd:
        raw = str(_event_key(odd[0]) or "")
        literal = raw.endswith(ODD)
        observed = "literal" if literal else "percent-encoded"
        out.append(Row("event.key_encoding", _title("event.key_encoding"), observed,
                       "triggers/events.py key_candidates: " + ("the literal key matches first" if literal
                                                                 else "the decoded key matches"),
                       "yes", "nothing to change: the functions look this spelling up first from now on "
                       "(the answers kept in the state bucket)"))
    else:
        out.append(_skipped("event.key_encoding", obs.skipped.get("event.key_encoding", "no event arrived")))
    if not obs.vid_bucket:
        out.append(_skipped("event.vid", obs.skipped.get(
            "event.vid", "no intake bucket has versioning enabled (the probe cannot create buckets)")))
    else:
        records = [r for r in obs.event_records(VID)]
        if not records:
            out.append(_skipped("event.vid", "no event arrived for the versioned scratch object"))
        else:
            vid = str(records[0]["cos"]["cosObject"].get("vid") or "")
            out.append(Row("event.vid", _title("event.vid"), f"set ({vid})" if vid and vid != "null" else "empty",
                           "triggers/events.py version_id: " + ("the event's version is scanned" if vid else
                                                                "the current version is read by HEAD"),
                           "yes", "nothing to change" if vid else
                           "an overwrite right after an upload may be scanned in its place: keep versioning on"))
    if "event.append" in obs.skipped:
        out.append(_skipped("event.append", obs.skipped["event.append"]))
    else:
        names = sorted({str(r["event"]["eventName"]) for r in obs.event_records(APPEND) if "event" in r})
        fired = any("Append" in n for n in names)
        out.append(Row("event.append", _title("event.append"),
                       ("yes" if fired else "no") + (f" ({', '.join(names)})" if names else " (no event)"),
                       "each append's event is scanned as a new write (its identity includes the size)" if fired
                       else "no event: `cosguard backfill` and the stale-verdict re-check find appended writes",
                       "yes" if fired else "NO",
                       "nothing to change" if fired else "appendable uploads are not scanned on upload: deny "
                       "cos:AppendObject to uploaders, or run `cosguard backfill` on a schedule"))
    return out


def _cos_rows(obs: Observations) -> List[Row]:
    out: List[Row] = []
    unversioned = [b for b in obs.settings.buckets if obs.versioning.get(b, "") != "enabled"]
    if obs.delete_if_match:
        honoured = obs.delete_if_match == "honoured"
        exposed = not honoured and unversioned
        out.append(Row("cos.delete_if_match", _title("cos.delete_if_match"),
                       "honoured (412)" if honoured else "ignored (the object was deleted)",
                       "domain/actions.py: the DELETE's If-Match " + ("closes" if honoured else
                                                                      "does not close") + " the overwrite window",
                       "NO" if exposed else "yes",
                       f"unversioned intake buckets ({', '.join(unversioned)}) are exposed to the overwrite race: "
                       "enable versioning" if exposed else "nothing to change"))
    else:
        out.append(_skipped("cos.delete_if_match", obs.skipped.get("cos.delete_if_match", "not observed")))
    if obs.forbid_overwrite:
        ok = obs.forbid_overwrite == "honoured"
        out.append(Row("cos.forbid_overwrite", _title("cos.forbid_overwrite"),
                       "honoured (409)" if ok else "ignored (overwritten)",
                       "domain/ledger.py: claims by x-cos-forbid-overwrite", "yes" if ok else "NO",
                       "nothing to change" if ok else "the ledger's claims are not exclusive: report it in an issue"))
    else:
        out.append(_skipped("cos.forbid_overwrite", obs.skipped.get("cos.forbid_overwrite", "not observed")))
    if obs.multipart:
        initiated, modified, answered = obs.multipart
        which = ("initiation" if modified <= initiated else "completion" if modified >= initiated + 2
                 else "unclear")
        out.append(Row("cos.multipart_last_modified", _title("cos.multipart_last_modified"),
                       f"{which} (Last-Modified {modified - initiated:+d} s from initiation)",
                       "domain/entries.py version_token: an upload's identity includes its Last-Modified", "yes",
                       "nothing to change: cosguard compares versions by ETag and Last-Modified together"))
    else:
        out.append(_skipped("cos.multipart_last_modified", obs.skipped.get("cos.multipart_last_modified",
                                                                           "not observed")))
    if len(obs.append_heads) == 2:
        (etag1, lm1), (etag2, lm2) = obs.append_heads
        selects = "domain/entries.py version_token: an appendable object's identity includes its size"
        out.append(Row("cos.append_etag", _title("cos.append_etag"), "yes" if etag1 != etag2 else "no",
                       selects, "yes", "nothing to change: appends are told apart by size as well"))
        out.append(Row("cos.append_last_modified", _title("cos.append_last_modified"),
                       "yes" if lm2 > lm1 else "no", selects, "yes",
                       "nothing to change: appends are told apart by size as well"))
    else:
        for qid in ("cos.append_etag", "cos.append_last_modified"):
            out.append(_skipped(qid, obs.skipped.get(qid, "not observed")))
    return out


def _ci_rows(obs: Observations) -> List[Row]:
    out: List[Row] = []
    if obs.unbound:
        out.append(Row("ci.unbound_error", _title("ci.unbound_error"), obs.unbound,
                       "infra/cloud.py: a refused submission is a retry entry for the sweep", "n/a",
                       f"bind {obs.unbound_bucket} to CI before protecting it"))
    else:
        out.append(_skipped("ci.unbound_error", "no --unbound-bucket named"))
    observed = obs.failure_state or (f"refused at submission: {obs.failure_submit}" if obs.failure_submit else "")
    out.append(Row("ci.job_failure", _title("ci.job_failure"), observed, "domain/verdict.py: a failed job takes "
                   "COSGUARD_FAILED_ACTION", "yes", "nothing to change") if observed else
               _skipped("ci.job_failure", "the job did not end within the probe's time"))
    if obs.retention:
        state, seconds = obs.retention
        out.append(Row("ci.job_retention", _title("ci.job_retention"), f"at least {seconds} s (answered {state})",
                       "bulk/sweep.py: lost callbacks are settled by querying the job", "yes",
                       "keep the sweep's timer well inside how long CI keeps jobs"))
    else:
        out.append(_skipped("ci.job_retention", obs.skipped.get("ci.job_retention", "not observed")))
    if obs.ci_status:
        bad = [b for b, s in obs.ci_status.items() if s != "on"]
        out.append(Row("ci.status", _title("ci.status"), ", ".join(f"{b}: {s}" for b, s in sorted(obs.ci_status.items())),
                       "cosguard verify --deployment checks it too: CI scans only bound buckets", "NO" if bad else "yes",
                       f"bind {', '.join(bad)} to CI" if bad else "nothing to change"))
    else:
        out.append(_skipped("ci.status", obs.skipped.get("ci.status", "not observed")))
    out.append(_skipped("ci.request_rate", "not probed: it would take a load test on a real bucket"))
    return out


def rows(obs: Observations) -> List[Row]:
    return [*_callback_rows(obs), *_event_rows(obs), *_cos_rows(obs), *_ci_rows(obs)]


def _title(qid: str) -> str:
    return dict(QUESTIONS)[qid]


def _skipped(qid: str, reason: str) -> Row:
    return Row(qid, _title(qid), "skipped", "-", "skipped", reason)
