"""COS's per-object size rules, checked before a write reaches moto (which allows far more).

- An object key is at most 850 bytes, UTF-8 encoded (doc 436/13324); a longer one is refused
  400 `KeyTooLong` (a code of doc 436/7730's list).
- User metadata (`x-cos-meta-*`) is capped at 2 KB (doc 436/7749). Editions differ: the English
  one says 2 KB; the Chinese one now says 2 KB a header and 4 KB for all of them together. How the
  size is counted and which code COS answers are not documented. The default here is the reading
  worse for a writer: every header's full name and value, all together, at most 2 KB (`Limits.
  metadata_rule = "total"`); `"each"` switches to 2 KB a header and 4 KB in all. Refused 400
  `InvalidArgument` (doc 436/7730: a request parameter that is not allowed).

Checked on every write that names a key or carries metadata: PUT Object, POST Object (form
fields), PUT Object - Copy (its metadata only when `x-cos-metadata-directive: Replaced`: with
`Copy`, COS copies the source's and ignores the request's, doc 436/10881), Initiate Multipart
Upload, and Append Object (its requests pass the same check).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Tuple

from .wire import CosError

MAX_KEY_BYTES = 850
METADATA_KB = 1024
META_PREFIX = "x-cos-meta-"
METADATA_RULES = ("total", "each")
_KEYED_WRITES = frozenset({"PutObject", "CopyObject", "InitiateMultipartUpload", "AppendObject",
                           "PostObject"})


class Limits:
    """One LocalCos's reading of the undocumented part: `metadata_rule` is "total" (default: all
    x-cos-meta-* headers, names and values, at most 2 KB together) or "each" (2 KB a header,
    4 KB in all)."""

    def __init__(self) -> None:
        self.metadata_rule = "total"

    def check_request(self, op: str, key: str, headers: Mapping[str, str]) -> None:
        """CosError for a write COS would refuse; `headers` lower-cased, as they arrived."""
        if op not in _KEYED_WRITES:
            return
        check_key(key)
        if op == "CopyObject" and headers.get("x-cos-metadata-directive", "Copy").lower() != "replaced":
            return
        self.check_metadata((name, value.encode("latin-1", "replace"))  # WSGI's bytes-as-latin-1
                            for name, value in headers.items() if name.startswith(META_PREFIX))

    def check_form(self, fields: Mapping[str, str]) -> None:
        """The same rules for a POST Object form (decoded UTF-8 fields, names lower-cased)."""
        check_key(fields.get("key", ""))
        self.check_metadata((name, value.encode("utf-8"))
                            for name, value in fields.items() if name.startswith(META_PREFIX))

    def check_metadata(self, headers: Iterable[Tuple[str, bytes]]) -> None:
        if self.metadata_rule not in METADATA_RULES:
            raise ValueError(f"metadata_rule must be one of {METADATA_RULES}, not {self.metadata_rule!r}")
        sizes = [len(name.encode("utf-8")) + len(value) for name, value in headers]
        each, total = (2 * METADATA_KB, 4 * METADATA_KB) if self.metadata_rule == "each" \
            else (2 * METADATA_KB, 2 * METADATA_KB)
        if any(size > each for size in sizes) or sum(sizes) > total:
            raise CosError(400, "InvalidArgument",
                           f"Your x-cos-meta-* headers ({sum(sizes)} bytes) exceed the user metadata limit "
                           f"({each} bytes a header, {total} bytes in all).")


def check_key(key: str) -> None:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise CosError(400, "KeyTooLong",
                       f"Your key is too long: {size} bytes, the limit is {MAX_KEY_BYTES} bytes (UTF-8).")
