"""What the local engine recognises: the EICAR test file and ClamAV hash signatures.

EICAR follows the published rule (eicar.org, "Intended use"): the file *starts* with the 68-byte
test string, optionally followed by whitespace (space, tab, LF, CR, CTRL-Z) only, and is at most
128 bytes long. Hash signatures use ClamAV's text formats (`.hdb`: `MD5:size:name`; `.hsb`:
`SHA1-or-SHA256:size:name`, where size may be `*`), each optionally followed by `:MinFL[:MaxFL]`,
which is accepted and ignored.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

EICAR_NAME = "Eicar-Test-Signature"  # ClamAV's name for it
EICAR_MAX_SIZE = 128
_EICAR_PADDING = frozenset(b" \t\r\n\x1a")

# Built from two halves so that this source file is not itself a contiguous EICAR string.
_EICAR_HEAD = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
_EICAR_TAIL = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def eicar_bytes() -> bytes:
    """The 68-byte EICAR test string (for tests and demos; never stored as a file in the repo)."""
    return (_EICAR_HEAD + _EICAR_TAIL).encode("ascii")


_EICAR = eicar_bytes()


def is_eicar(head: bytes, size: int) -> bool:
    """True when a file of `size` bytes whose first bytes are `head` is the EICAR test file.

    `head` must hold the whole file whenever `size <= EICAR_MAX_SIZE` (callers keep the first
    128 bytes); bigger files are never EICAR under the published rule.
    """
    if size > EICAR_MAX_SIZE or size < len(_EICAR) or not head.startswith(_EICAR):
        return False
    return all(byte in _EICAR_PADDING for byte in head[len(_EICAR):size])


class SignatureFormatError(ValueError):
    """A signature file line that is not in ClamAV's hash-signature format."""


_HASH_KINDS_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}
_ALLOWED_KINDS = {".hdb": ("md5",), ".hsb": ("sha1", "sha256")}


@dataclass(frozen=True)
class HashSignature:
    """One `hash:size:name` line; `size` None means the `*` wildcard."""

    kind: str
    digest: str
    size: Optional[int]
    name: str


class SignatureDb:
    """Hash signatures indexed by (kind, digest); matching also checks the size unless it is `*`."""

    def __init__(self, signatures: Iterable[HashSignature] = ()) -> None:
        self._index: Dict[str, Dict[str, List[HashSignature]]] = {}
        self._count = 0
        self.max_size = 0
        self.has_wildcard_size = False
        for signature in signatures:
            self.add(signature)

    @classmethod
    def from_files(cls, paths: Iterable[Union[str, "os.PathLike[str]"]]) -> "SignatureDb":
        db = cls()
        for path in paths:
            db.load(path)
        return db

    def add(self, signature: HashSignature) -> None:
        self._index.setdefault(signature.kind, {}).setdefault(signature.digest, []).append(signature)
        self._count += 1
        if signature.size is None:
            self.has_wildcard_size = True
        else:
            self.max_size = max(self.max_size, signature.size)

    def add_bytes(self, data: bytes, name: str) -> HashSignature:
        """Detect these exact bytes as `name` from the next scan on: the signature set changing at
        runtime, as a vendor's update changes CI's (a test makes a clean object turn infected)."""
        signature = HashSignature("sha256", hashlib.sha256(data).hexdigest(), len(data), name)
        self.add(signature)
        return signature

    def load(self, path: Union[str, "os.PathLike[str]"]) -> int:
        """Add every signature in a `.hdb` or `.hsb` file; returns how many were read."""
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix not in _ALLOWED_KINDS:
            raise SignatureFormatError(f"{path}: unsupported signature file type {suffix!r} (.hdb, .hsb)")
        added = 0
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                signature = parse_line(line, _ALLOWED_KINDS[suffix], where=f"{path}:{number}")
                if signature is not None:
                    self.add(signature)
                    added += 1
        return added

    @property
    def kinds(self) -> Tuple[str, ...]:
        """The digest kinds a scan must compute for this database."""
        return tuple(sorted(self._index))

    def match(self, digests: Mapping[str, str], size: int) -> Optional[str]:
        """The malware name of the first signature matching these digests and size, if any."""
        for kind, digest in digests.items():
            for signature in self._index.get(kind, {}).get(digest, ()):
                if signature.size is None or signature.size == size:
                    return signature.name
        return None

    def __len__(self) -> int:
        return self._count


def parse_line(line: str, allowed_kinds: Tuple[str, ...], where: str = "") -> Optional[HashSignature]:
    """One signature, or None for a blank or `#` comment line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split(":")
    if not 3 <= len(fields) <= 5:
        raise SignatureFormatError(f"{where}: expected hash:size:name[:MinFL[:MaxFL]], got {text!r}")
    digest, size_text, name = fields[0].lower(), fields[1], fields[2]
    kind = _HASH_KINDS_BY_LENGTH.get(len(digest))
    if kind is None or any(c not in "0123456789abcdef" for c in digest):
        raise SignatureFormatError(f"{where}: {fields[0]!r} is not an MD5, SHA1 or SHA256 hex digest")
    if kind not in allowed_kinds:
        raise SignatureFormatError(f"{where}: {kind} digests do not belong in this file ({', '.join(allowed_kinds)})")
    if not name:
        raise SignatureFormatError(f"{where}: empty malware name")
    if any(level and not level.isdigit() for level in fields[3:]):
        raise SignatureFormatError(f"{where}: functionality levels must be numbers")
    if size_text == "*":
        if "md5" in allowed_kinds:
            raise SignatureFormatError(f"{where}: the '*' size wildcard is only valid in .hsb files")
        size: Optional[int] = None
    elif size_text.isdigit():
        size = int(size_text)
    else:
        raise SignatureFormatError(f"{where}: size {size_text!r} is neither a number nor '*'")
    return HashSignature(kind=kind, digest=digest, size=size, name=name)


class Digests:
    """Running digests of one file, for the kinds a SignatureDb needs.

    Hashing stops once the file outgrows every sized signature (unless some size is `*`): a
    1 GB member cannot match a 68-byte signature, so there is no point hashing all of it.
    """

    def __init__(self, db: SignatureDb) -> None:
        self._db = db
        self._cap = None if db.has_wildcard_size else db.max_size
        self._hashers = {kind: hashlib.new(kind) for kind in db.kinds}
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._hashers and (self._cap is None or self.size <= self._cap):
            for hasher in self._hashers.values():
                hasher.update(chunk)

    def match(self) -> Optional[str]:
        if not self._hashers or (self._cap is not None and self.size > self._cap):
            return None
        return self._db.match({kind: h.hexdigest() for kind, h in self._hashers.items()}, self.size)
