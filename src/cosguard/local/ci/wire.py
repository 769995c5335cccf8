"""CI's wire format, in one place: the submit body in, JobsDetail and errors out (XML or JSON).

The submit body goes through a real XML parser, as CI's must: a control character XML 1.0 cannot
carry is `MalformedXML`, CR and CRLF in `Object` arrive as LF (another key), nothing is trimmed.
`Object` is echoed as ElementTree writes it, CR unescaped, so a client's parser reads LF back. CI's
own handling of either is not documented: these are the readings worse for a client that binds a
job to its key by the echo.

Error bodies carry `Code`, `Message`, `Resource`, `RequestId` and `TraceId`. CI's error page lists
Code/Message/RequestId/TraceId; `Resource` is COS's, and cos-python-sdk-v5 needs it: its error
parser (`cos_exception.digest_xml`) gives up, and `get_error_code()` says "Unknown", without it.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .models import Job

XML = "application/xml"
JSON = "application/json"


class WireError(Exception):
    """A body that cannot be read at all (before the model sees it)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class SubmitRequest:
    """`Request/Input/{Object,Url}` and `Request/Conf/{DetectType,Callback}`; absent is None."""

    object_key: Optional[str]
    url: Optional[str]
    detect_type: Optional[str]
    callback: Optional[str]


def parse_submit(body: bytes) -> SubmitRequest:
    """Read a submit body; MissingContent for none, MalformedXML for unparseable or unsafe XML."""
    if not body.strip():
        raise WireError("MissingContent", "The request body is empty")
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise WireError("MalformedXML", f"The request body is not well-formed XML: {exc}") from None
    if root.tag != "Request":
        raise WireError("MalformedXML", f"The root element must be Request, not {root.tag}")
    return SubmitRequest(
        object_key=_single_text(root, "Input/Object", strip=False),
        url=_single_text(root, "Input/Url"),
        detect_type=_single_text(root, "Conf/DetectType"),
        callback=_single_text(root, "Conf/Callback"),
    )


def _single_text(root: ET.Element, path: str, strip: bool = True) -> Optional[str]:
    found = root.findall(path)
    if len(found) > 1:
        raise WireError("InvalidArgument", f"Request/{path} appears {len(found)} times")
    if not found or found[0].text is None:
        return None
    text = found[0].text.strip() if strip else found[0].text
    return text or None


# -- JobsDetail -------------------------------------------------------------------------------
def submit_fields(job: Job) -> List[Tuple[str, Any]]:
    """The submit answer's JobsDetail: JobId, State, CreationTime, then Object or Url."""
    return [("JobId", job.job_id), ("State", str(job.state)),
            ("CreationTime", job.creation_time_text), _input_field(job)]


def query_fields(job: Job) -> List[Tuple[str, Any]]:
    """The query answer's JobsDetail, every node of the spec's sample, in its order.

    Code/Message/Suggestion are empty until the job ends; DetectDetail is empty unless something
    was found, then holds one Result per finding.
    """
    results = [[("FileName", d.file_name), ("VirusName", d.virus_name)] for d in job.detections]
    fields = [("Code", job.code), ("Message", job.message), ("JobId", job.job_id),
              ("State", str(job.state)), ("CreationTime", job.creation_time_text),
              _input_field(job), ("Suggestion", job.suggestion),
              ("DetectDetail", [("Result", result) for result in results])]
    return _overridden(fields, job.overrides)


def _overridden(fields: List[Tuple[str, Any]], overrides: Dict[str, Any]) -> List[Tuple[str, Any]]:
    """Faults.answer_overrides applied: a value replaces the field's, None drops the node."""
    if not overrides:
        return fields
    answer = [(name, overrides.get(name, value)) for name, value in fields
              if not (name in overrides and overrides[name] is None)]
    known = {name for name, _ in fields}
    answer += [(name, value) for name, value in overrides.items()
               if name not in known and value is not None]
    return answer


def _input_field(job: Job) -> Tuple[str, Any]:
    return ("Object", job.object_key) if job.object_key is not None else ("Url", job.url or "")


def _append(parent: ET.Element, fields: List[Tuple[str, Any]]) -> None:
    for name, value in fields:
        child = ET.SubElement(parent, name)
        if isinstance(value, list):
            _append(child, value)
        else:
            child.text = "" if value is None else str(value)


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="unicode").encode("utf-8")


def render_submit(job: Job) -> bytes:
    root = ET.Element("Response")
    _append(ET.SubElement(root, "JobsDetail"), submit_fields(job))
    return _xml(root)


def render_query(job: Job, request_id: str) -> bytes:
    root = ET.Element("Response")
    _append(ET.SubElement(root, "JobsDetail"), query_fields(job))
    ET.SubElement(root, "RequestId").text = request_id
    return _xml(root)


def render_callback(job: Job, body_format: str) -> Tuple[bytes, str]:
    """A callback body and its Content-Type.

    CI does not publish its virus callback body: `xml` sends the query-shaped
    `<Response><JobsDetail>…</JobsDetail></Response>`; `json` sends `{"JobsDetail": {…}}` with the
    same fields, `DetectDetail` as `{"Result": [...]}`.
    """
    if body_format == "xml":
        root = ET.Element("Response")
        _append(ET.SubElement(root, "JobsDetail"), query_fields(job))
        return _xml(root), XML
    if body_format == "json":
        return json.dumps({"JobsDetail": _as_json(query_fields(job))}).encode("utf-8"), JSON
    raise ValueError(f"callback format must be xml or json, not {body_format!r}")


def _as_json(fields: List[Tuple[str, Any]]) -> Dict[str, Any]:
    detail: Dict[str, Any] = {}
    for name, value in fields:
        if name == "DetectDetail":
            detail[name] = {"Result": [dict(result) for _, result in value]}
        else:
            detail[name] = "" if value is None else value
    return detail


def render_error(code: str, message: str, resource: str, request_id: str) -> bytes:
    root = ET.Element("Error")
    _append(root, [("Code", code), ("Message", message), ("Resource", resource),
                   ("RequestId", request_id), ("TraceId", request_id)])
    return _xml(root)
