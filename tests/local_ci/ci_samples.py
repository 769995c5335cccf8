"""Sample contents for local CI tests, and the archives built from them at test time.

The hash-signature samples are harmless text; `data/test.hdb` and `data/test.hsb` hold their
digests (test_ci_engine checks the files still agree with these bytes).
"""
from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from typing import Dict

from cosguard.local.ci import eicar_bytes

BUCKET = "examplebucket-1250000000"
OTHER_BUCKET = "otherbucket-1250000000"
REGION = "ap-guangzhou"

HDB_SAMPLE = b"cosguard local CI sample matched by an MD5 (.hdb) signature\n"
HSB_SHA1_SAMPLE = b"cosguard local CI sample matched by a SHA1 (.hsb) signature\n"
HSB_SHA256_SAMPLE = b"cosguard local CI sample matched by a SHA256 (.hsb) signature of any size\n"
HDB_NAME = "Cosguard.Test.Md5-1"
HSB_SHA1_NAME = "Cosguard.Test.Sha1-1"
HSB_SHA256_NAME = "Cosguard.Test.Sha256Any-1"


def zip_bytes(files: Dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def tar_bytes(files: Dict[str, bytes], mode: str = "w") -> bytes:
    """A tar (mode "w") or tar.gz (mode "w:gz") of `files`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def gzip_bytes(body: bytes, filename: str = "") -> bytes:
    """gzip with FNAME set to `filename` (none when empty)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=filename, mode="wb", fileobj=buffer, mtime=0) as stream:
        stream.write(body)
    return buffer.getvalue()


def seven_zip_bytes(files: Dict[str, bytes]) -> bytes:
    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(body, name)
    return buffer.getvalue()


def nested_eicar_tar_gz() -> bytes:
    """outer.tar.gz → inner.zip → eicar.com (plus a clean file at each level)."""
    inner = zip_bytes({"eicar.com": eicar_bytes(), "readme.txt": b"nothing here\n"})
    return tar_bytes({"inner.zip": inner, "notes.txt": b"clean\n"}, mode="w:gz")


def nested_zip_bomb(levels: int = 3, fanout: int = 16, leaf_mib: int = 16) -> bytes:
    """42.zip-style: each level holds `fanout` copies of the level below; the leaf is zeros.

    Unpacked size is fanout**levels * leaf_mib MiB (64 GiB with the defaults) from a few KB.
    """
    layer = zip_bytes({"zeros.bin": b"\0" * (leaf_mib << 20)})
    for level in range(levels):
        layer = zip_bytes({f"level{level}-{i}.zip": layer for i in range(fanout)})
    return layer
