"""Bucket CORS as COS applies it: preflight `OPTIONS` answers and headers on actual answers.

Rules are the ones stored with PUT Bucket cors (moto keeps them on the bucket). A preflight needs
no signature (browsers cannot sign one). It is answered 200 when one rule allows the Origin, the
requested method and every requested header, else 403 as COS answers it; an actual request from
an allowed Origin gets the Access-Control-* headers of the first matching rule, otherwise none.
Origins and headers match case-insensitively (headers) with `*` wildcards, as COS documents.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from .wire import CosError


@dataclass(frozen=True)
class Rule:
    origins: Sequence[str]
    methods: Sequence[str]
    headers: Sequence[str]
    expose: Sequence[str]
    max_age: Optional[str]


def rules_of(bucket: object) -> List[Rule]:
    """The CORS rules moto stored for a bucket, in order."""
    found = []
    for rule in getattr(bucket, "cors", None) or []:
        found.append(Rule(origins=list(rule.allowed_origins or []),
                          methods=[m.upper() for m in rule.allowed_methods or []],
                          headers=list(rule.allowed_headers or []),
                          expose=list(rule.exposed_headers or []),
                          max_age=str(rule.max_age_seconds) if rule.max_age_seconds else None))
    return found


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    if pattern == "*":
        return True
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, value) is not None


def _origin_allowed(rule: Rule, origin: str) -> bool:
    return any(_matches(pattern, origin) for pattern in rule.origins)


def _headers_allowed(rule: Rule, requested: Iterable[str]) -> bool:
    return all(any(_matches(pattern, name, case_sensitive=False) for pattern in rule.headers)
               for name in requested)


def _answer(rule: Rule, origin: str) -> Dict[str, str]:
    headers = {"Access-Control-Allow-Origin": "*" if "*" in rule.origins else origin,
               "Access-Control-Allow-Methods": ",".join(rule.methods)}
    if rule.expose:
        headers["Access-Control-Expose-Headers"] = ",".join(rule.expose)
    if rule.max_age:
        headers["Access-Control-Max-Age"] = rule.max_age
    if "*" not in rule.origins:
        headers["Vary"] = "Origin"
    return headers


def preflight(rules: Sequence[Rule], headers: Mapping[str, str]) -> Dict[str, str]:
    """The headers of a 200 answer to a preflight (`headers` lower-cased), or CosError 403/400."""
    origin = headers.get("origin", "")
    method = headers.get("access-control-request-method", "").upper()
    if not origin or not method:
        raise CosError(400, "InvalidArgument",
                       "A CORS preflight needs the Origin and Access-Control-Request-Method headers.")
    requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",")
                 if h.strip()]
    if not rules:
        raise CosError(403, "AccessForbidden", "CORS is not enabled for this bucket.")
    for rule in rules:
        if _origin_allowed(rule, origin) and method in rule.methods \
                and _headers_allowed(rule, requested):
            answer = _answer(rule, origin)
            if requested:
                answer["Access-Control-Allow-Headers"] = ",".join(requested)
            return answer
    raise CosError(403, "AccessForbidden", "No CORS rule of this bucket allows this Origin, "
                   "Access-Control-Request-Method and Access-Control-Request-Headers.")


def actual(rules: Sequence[Rule], method: str, headers: Mapping[str, str]) -> Dict[str, str]:
    """Access-Control-* headers for an actual request from `Origin`; {} when no rule allows it."""
    origin = headers.get("origin", "")
    if not origin:
        return {}
    for rule in rules:
        if _origin_allowed(rule, origin) and method.upper() in rule.methods:
            return _answer(rule, origin)
    return {}
