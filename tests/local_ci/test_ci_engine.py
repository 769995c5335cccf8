"""The detection engine on its own: EICAR's published rule, ClamAV hash files, archives, limits."""
from __future__ import annotations

import hashlib
import io
import time
import zipfile

import pytest

from ci_helpers import SIGNATURES
from ci_samples import (
    HDB_NAME,
    HDB_SAMPLE,
    HSB_SHA1_NAME,
    HSB_SHA1_SAMPLE,
    HSB_SHA256_NAME,
    HSB_SHA256_SAMPLE,
    gzip_bytes,
    nested_eicar_tar_gz,
    nested_zip_bomb,
    seven_zip_bytes,
    tar_bytes,
    zip_bytes,
)
from cosguard.local.ci import EICAR_NAME, Engine, ScanLimits, SignatureDb, SignatureFormatError, eicar_bytes
from cosguard.local.ci.signatures import HashSignature, is_eicar

EICAR = eicar_bytes()


@pytest.fixture
def engine() -> Engine:
    return Engine.from_files(SIGNATURES)


def names(report):
    return [(d.file_name, d.virus_name) for d in report.detections]


# -- EICAR ------------------------------------------------------------------------------------
def test_eicar_string_is_the_published_one():
    assert len(EICAR) == 68
    assert hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


@pytest.mark.parametrize("body, expected", [
    (EICAR, True),
    (EICAR + b"\r\n", True),
    (EICAR + b" \t\r\n\x1a" * 12, True),                 # 128 bytes exactly
    (EICAR + b" " * 61, False),                           # 129 bytes: too long
    (EICAR + b"\n\nX", False),                            # only whitespace may follow
    (b" " + EICAR, False),                                # must start the file
    (EICAR[:-1], False),                                  # incomplete string
    (b"header\n" + EICAR + b"\n" + b"A" * 1000, False),  # embedded in a bigger file
])
def test_eicar_rule(engine, body, expected):
    assert is_eicar(body[:128], len(body)) is expected
    assert bool(engine.scan(io.BytesIO(body), "f").detections) is expected


def test_eicar_detection_is_named_like_clamav(engine):
    report = engine.scan(io.BytesIO(EICAR), "uploads/eicar.com")
    assert names(report) == [("uploads/eicar.com", EICAR_NAME)]
    assert EICAR_NAME == "Eicar-Test-Signature"


# -- hash signatures --------------------------------------------------------------------------
def test_fixture_files_match_the_sample_bytes():
    db = SignatureDb.from_files(SIGNATURES)
    assert len(db) == 3
    assert db.match({"md5": hashlib.md5(HDB_SAMPLE).hexdigest()}, len(HDB_SAMPLE)) == HDB_NAME
    assert db.match({"sha1": hashlib.sha1(HSB_SHA1_SAMPLE).hexdigest()},
                    len(HSB_SHA1_SAMPLE)) == HSB_SHA1_NAME


@pytest.mark.parametrize("body, name", [(HDB_SAMPLE, HDB_NAME), (HSB_SHA1_SAMPLE, HSB_SHA1_NAME),
                                        (HSB_SHA256_SAMPLE, HSB_SHA256_NAME)])
def test_hash_signatures_detect(engine, body, name):
    assert names(engine.scan(io.BytesIO(body), "sample.bin")) == [("sample.bin", name)]


def test_size_must_match_unless_wildcard():
    digest = hashlib.md5(b"abc").hexdigest()
    sized = Engine(SignatureDb([HashSignature("md5", digest, 4, "Wrong.Size")]))
    assert sized.scan(io.BytesIO(b"abc"), "f").detections == []
    right = Engine(SignatureDb([HashSignature("md5", digest, 3, "Right.Size")]))
    assert names(right.scan(io.BytesIO(b"abc"), "f")) == [("f", "Right.Size")]


def test_clean_content_is_clean(engine):
    report = engine.scan(io.BytesIO(b"just text\n" * 1000), "notes.txt")
    assert report.detections == [] and report.limit_exceeded is None


@pytest.mark.parametrize("suffix, line, problem", [
    (".hdb", "zz05893e7276e6d8612b07dbcd76281:60:Bad", "hex digest"),
    (".hdb", "974165d2554de6dcdc5f70638181c22036942b10:60:Sha1InHdb", "do not belong"),
    (".hsb", "27b05893e7276e6d8612b07dbcd76281:60:Md5InHsb", "do not belong"),
    (".hdb", "27b05893e7276e6d8612b07dbcd76281:*:Wildcard", "only valid in .hsb"),
    (".hdb", "27b05893e7276e6d8612b07dbcd76281:60", "expected hash:size:name"),
    (".hdb", "27b05893e7276e6d8612b07dbcd76281:sixty:Name", "neither a number"),
    (".hdb", "27b05893e7276e6d8612b07dbcd76281:60:", "empty malware name"),
    (".hsb", "974165d2554de6dcdc5f70638181c22036942b10:60:Name:x", "levels must be numbers"),
    (".ndb", "whatever", "unsupported signature file type"),
])
def test_bad_signature_lines_name_file_and_line(tmp_path, suffix, line, problem):
    path = tmp_path / f"bad{suffix}"
    path.write_text("# comment\n\n" + line + "\n")
    with pytest.raises(SignatureFormatError) as caught:
        SignatureDb.from_files([path])
    assert problem in str(caught.value)
    if suffix != ".ndb":
        assert f"{path}:3" in str(caught.value)


# -- archives ---------------------------------------------------------------------------------
def test_eicar_in_zip_in_tar_gz_names_the_inner_path(engine):
    report = engine.scan(io.BytesIO(nested_eicar_tar_gz()), "uploads/outer.tar.gz")
    assert names(report) == [("inner.zip/eicar.com", EICAR_NAME)]
    assert report.entries == 5  # gzip layer, 2 tar members, 2 zip members


def test_every_finding_in_an_archive_is_reported(engine):
    body = zip_bytes({"a/eicar.com": EICAR, "b/sample.bin": HDB_SAMPLE, "c/clean.txt": b"ok"})
    assert sorted(names(engine.scan(io.BytesIO(body), "x.zip"))) == [
        ("a/eicar.com", EICAR_NAME), ("b/sample.bin", HDB_NAME)]


def test_plain_tar(engine):
    body = tar_bytes({"./dir/eicar.com": EICAR})
    assert names(engine.scan(io.BytesIO(body), "x.tar")) == [("dir/eicar.com", EICAR_NAME)]


@pytest.mark.parametrize("fname, key, expected", [
    ("eicar.com", "any.gz", "eicar.com"),           # the stored FNAME wins
    ("", "uploads/virus.txt.gz", "virus.txt"),      # else the object name minus .gz
])
def test_gzip_of_a_plain_file_names_the_inner_file(engine, fname, key, expected):
    report = engine.scan(io.BytesIO(gzip_bytes(EICAR, fname)), key)
    assert names(report) == [(expected, EICAR_NAME)]


def test_seven_zip(engine):
    pytest.importorskip("py7zr")
    body = seven_zip_bytes({"docs/eicar.com": EICAR, "docs/ok.txt": b"fine"})
    assert names(engine.scan(io.BytesIO(body), "x.7z")) == [("docs/eicar.com", EICAR_NAME)]


def test_a_hash_signature_can_name_the_archive_itself():
    body = zip_bytes({"clean.txt": b"nothing"})
    db = SignatureDb([HashSignature("sha256", hashlib.sha256(body).hexdigest(), None, "Whole.Zip")])
    assert names(Engine(db).scan(io.BytesIO(body), "bundle.zip")) == [("bundle.zip", "Whole.Zip")]


def test_corrupt_archive_is_noted_not_fatal(engine, caplog):
    body = b"PK\x03\x04" + b"\x00" * 600  # a zip header and nothing valid after it
    with caplog.at_level("WARNING"):
        report = engine.scan(io.BytesIO(body), "broken.zip")
    assert report.detections == [] and report.limit_exceeded is None
    assert report.unreadable == ["broken.zip"]
    assert any(r.levelname == "WARNING" and "broken.zip" in r.getMessage() for r in caplog.records)


def test_nested_archives_open_on_every_python(engine):
    """Members spooled to a temporary file (a zip inside a tar.gz) must open: Python 3.9's
    SpooledTemporaryFile lacked seekable(), and the inner zip was silently skipped."""
    report = engine.scan(io.BytesIO(nested_eicar_tar_gz()), "outer.tar.gz")
    assert names(report) == [("inner.zip/eicar.com", EICAR_NAME)] and report.unreadable == []


def test_truncated_inner_archive_is_unreadable_not_clean(engine):
    inner = zip_bytes({"a.txt": b"fine", "b.txt": b"also fine"})
    report = engine.scan(io.BytesIO(tar_bytes({"inner.zip": inner[: len(inner) // 2]})), "outer.tar")
    assert report.detections == [] and report.unreadable == ["inner.zip"]


def test_encrypted_zip_member_is_unreadable_not_clean(engine):
    body = bytearray(zip_bytes({"secret.txt": b"cannot be read"}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the encrypted flag bit
        at = body.find(signature)
        body[at + offset] |= 0x1
    report = engine.scan(io.BytesIO(bytes(body)), "locked.zip")
    assert report.detections == [] and report.unreadable == ["locked.zip"]


# -- limits -----------------------------------------------------------------------------------
def _nest(body: bytes, levels: int) -> bytes:
    for level in range(levels):
        body = zip_bytes({f"l{level}.zip" if level else "eicar.com": body})
    return body


def test_nesting_deeper_than_the_limit_stops_the_scan():
    engine = Engine(limits=ScanLimits(max_depth=3))
    assert names(engine.scan(io.BytesIO(_nest(EICAR, 3)), "n.zip")) == [
        ("l2.zip/l1.zip/eicar.com", EICAR_NAME)]
    report = engine.scan(io.BytesIO(_nest(EICAR, 4)), "n.zip")
    assert report.detections == []
    assert "nested deeper than 3" in report.limit_exceeded


def test_entry_count_is_bounded_before_reading_members():
    body = zip_bytes({f"f{i}.txt": b"x" for i in range(50)})
    report = Engine(limits=ScanLimits(max_entries=20)).scan(io.BytesIO(body), "many.zip")
    assert "declares 50 entries" in report.limit_exceeded
    assert report.entries == 0


def test_unpacked_bytes_are_bounded_and_streamed():
    limits = ScanLimits(max_unpacked_bytes=1 << 20, chunk_size=64 << 10)
    body = zip_bytes({"zeros.bin": b"\0" * (8 << 20)})
    report = Engine(limits=limits).scan(io.BytesIO(body), "z.zip")
    assert "exceeds 1048576 bytes" in report.limit_exceeded
    assert report.unpacked_bytes <= (1 << 20) + (64 << 10)  # stopped within one chunk


def test_findings_before_a_limit_are_kept():
    body = zip_bytes({"eicar.com": EICAR, "zeros.bin": b"\0" * (4 << 20)})
    report = Engine(limits=ScanLimits(max_unpacked_bytes=1 << 20)).scan(io.BytesIO(body), "z.zip")
    assert names(report) == [("eicar.com", EICAR_NAME)]
    assert report.limit_exceeded


def test_scan_time_is_bounded():
    report = Engine(limits=ScanLimits(max_seconds=0)).scan(io.BytesIO(b"x" * 1000), "f")
    assert "longer than 0" in report.limit_exceeded


def test_seven_zip_bomb_is_refused_by_its_declared_size():
    pytest.importorskip("py7zr")
    body = seven_zip_bytes({"zeros.bin": b"\0" * (32 << 20)})
    started = time.monotonic()
    report = Engine(limits=ScanLimits(max_unpacked_bytes=1 << 20)).scan(io.BytesIO(body), "b.7z")
    assert "declares 33554432 unpacked bytes" in report.limit_exceeded
    assert report.unpacked_bytes == 0 and time.monotonic() - started < 1


def test_nested_zip_bomb_with_default_limits_ends_quickly(engine):
    body = nested_zip_bomb()  # 64 GiB unpacked from ~14 KB
    assert len(body) < 64 << 10
    started = time.process_time()  # CPU, not wall time: a loaded machine must not fail it
    report = engine.scan(io.BytesIO(body), "42.zip")
    elapsed = time.process_time() - started
    assert report.limit_exceeded == f"unpacked content exceeds {256 << 20} bytes"
    assert report.detections == []
    assert elapsed < 5, elapsed


def test_zip_members_are_never_read_whole(monkeypatch):
    """Every read the engine makes from a member is at most one chunk."""
    sizes = []
    original = zipfile.ZipExtFile.read

    def spy(self, n=-1):
        sizes.append(n)
        return original(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", spy)
    Engine(limits=ScanLimits(chunk_size=4096)).scan(
        io.BytesIO(zip_bytes({"big.bin": b"\1" * (1 << 20)})), "z.zip")
    assert sizes and all(0 < n <= 4096 for n in sizes)
