"""CI's answer about a virus detection job, parsed once from the SDK's dict (spec: GET
/virus/detect/<jobId>). What the answer means for the object (infected, clean, failed) is the
domain's (domain/jobs.py)."""
from __future__ import annotations

from typing import Any, List, Mapping, Tuple

from .ci_input import key_in_url
from .records import Record

FINISHED_STATES = ("Success", "Failed")


class CiJob(Record, frozen=True, hidden=("url",)):
    """A queried job, as CI reported it."""

    job_id: str
    state: str
    suggestion: str = ""
    code: str = ""
    message: str = ""
    object_key: str = ""
    url: str = ""   # a `Url` input's URL (ci_input.py: odd keys, version-pinned scans): never logged, a read credential
    creation_time: str = ""
    findings: Tuple[Tuple[str, str], ...] = ()  # (file name inside the object or archive, virus name)

    @classmethod
    def from_response(cls, response: Mapping[str, Any]) -> "CiJob":
        detail = response.get("JobsDetail") or {}
        if isinstance(detail, list):
            detail = detail[0] if detail else {}
        findings: List[Tuple[str, str]] = []
        blocks = detail.get("DetectDetail") or []
        for block in blocks if isinstance(blocks, list) else [blocks]:
            results = (block or {}).get("Result") or []
            for result in results if isinstance(results, list) else [results]:
                if isinstance(result, Mapping):
                    findings.append((_without_query(str(result.get("FileName") or "")),
                                     str(result.get("VirusName") or "")))
        return cls(job_id=str(detail.get("JobId") or ""), state=str(detail.get("State") or ""),
                   suggestion=str(detail.get("Suggestion") or ""), code=str(detail.get("Code") or ""),
                   message=str(detail.get("Message") or ""), object_key=str(detail.get("Object") or ""),
                   url=str(detail.get("Url") or ""),
                   creation_time=str(detail.get("CreationTime") or ""), findings=tuple(findings))

    def scanned_key(self, bucket: str) -> str:
        """The key CI says it scanned: its `Object`, or the key a `Url` of `bucket` names."""
        return self.object_key or key_in_url(self.url, bucket)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def _without_query(name: str) -> str:
    """A finding's file name, minus the query of a pre-signed `Url` (its signature is a read
    credential: never kept in manifests, the ledger or notifications)."""
    return name.split("?", 1)[0] if name.startswith(("http://", "https://")) else name
