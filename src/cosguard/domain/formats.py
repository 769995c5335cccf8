"""Which format a ledger document was written in, and the read-side upgrader for older ones.

Every document the ledger writes carries `_format` (the layout of its fields) and `_identity` (the
rule that named its upload: `entries.token_for`), both covered by its seal. A reader upgrades what
it reads to the current format before anyone looks at it, so a deployment upgraded with jobs in
flight applies their verdicts, and a handled upload stays handled. docs/upgrades.md has the history.

    format 1   no `_format` field (every release before key ids); seal without a key id
    format 2   `_format` and `_identity`; seal `<key id>.<MAC>` (seal.py); fields as format 1

A document of a newer format or an unknown identity scheme (a rollback after an upgrade) is not
guessed at: it is reported and treated as absent, as an unsealed one is.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

FORMAT_FIELD = "_format"
IDENTITY_FIELD = "_identity"
CURRENT_FORMAT = 2
# token_for's rule: the version id on versioned buckets, else ETag@Last-Modified (+size when appendable)
IDENTITY_SCHEME = "version-or-etag-mtime/1"
KNOWN_IDENTITY_SCHEMES = frozenset({IDENTITY_SCHEME})


class UnknownFormat(ValueError):
    """A document written by a newer cosguard (or naming an identity rule this one does not know)."""


def _from_v1(body: Dict[str, Any]) -> Dict[str, Any]:
    """Format 1 -> 2: the fields are the same; format 1 named uploads by the same rule."""
    return dict(body, **{IDENTITY_FIELD: IDENTITY_SCHEME})


# format N -> N + 1, applied in order
_UPGRADES: Dict[int, Callable[[Dict[str, Any]], Dict[str, Any]]] = {1: _from_v1}


def stamp(document: Mapping[str, Any]) -> Dict[str, Any]:
    """The document as written now: the current format and identity scheme named (then sealed)."""
    return dict(document, **{FORMAT_FIELD: CURRENT_FORMAT, IDENTITY_FIELD: IDENTITY_SCHEME})


def format_of(document: Mapping[str, Any]) -> int:
    found = document.get(FORMAT_FIELD, 1)
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise UnknownFormat(f"format {found!r} is not a cosguard format")
    return found


def is_current(document: Mapping[str, Any]) -> bool:
    """Whether a (sealed) document is written in the current format: else `cosguard reseal` rewrites it."""
    return document.get(FORMAT_FIELD) == CURRENT_FORMAT and document.get(IDENTITY_FIELD) == IDENTITY_SCHEME


def upgrade(document: Mapping[str, Any]) -> Dict[str, Any]:
    """The body of a verified document in the current format, without the format fields (readers
    see fields only). UnknownFormat for a newer format or an unknown identity scheme."""
    version = format_of(document)
    if version > CURRENT_FORMAT:
        raise UnknownFormat(f"format {version} is newer than this cosguard's ({CURRENT_FORMAT})")
    body = dict(document)
    while version < CURRENT_FORMAT:
        body = _UPGRADES[version](body)
        version += 1
    scheme = body.get(IDENTITY_FIELD)
    if scheme not in KNOWN_IDENTITY_SCHEMES:
        raise UnknownFormat(f"identity scheme {scheme!r} is not one this cosguard knows")
    return {k: v for k, v in body.items() if k not in (FORMAT_FIELD, IDENTITY_FIELD)}


__all__ = ["CURRENT_FORMAT", "FORMAT_FIELD", "IDENTITY_FIELD", "IDENTITY_SCHEME", "UnknownFormat", "format_of",
           "is_current", "stamp", "upgrade"]
