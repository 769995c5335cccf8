"""Sample objects for the demo, the tests and the live verification: EICAR (built from its parts,
so no file in the repo trips a scanner), EICAR nested in archives, and clean files."""
from __future__ import annotations

import io
import tarfile
import zipfile

_EICAR_PARTS = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!", "$H+H*")


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file."""
    return "".join(_EICAR_PARTS).encode("ascii")


def zip_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_bytes(members: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def eicar_zip_in_tar_gz() -> bytes:
    """EICAR inside `payload.zip` inside a tar.gz: CI names the inner file."""
    return tar_gz_bytes({"bundle/payload.zip": zip_bytes({"docs/eicar.com": eicar()}),
                         "bundle/readme.txt": b"nothing to see"})


def clean_text() -> bytes:
    return b"Quarterly numbers look fine.\n" * 20


def clean_document() -> bytes:
    """A small, valid one-page PDF with no active content."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
