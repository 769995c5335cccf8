"""Same-bucket layout: what uploaders put under `quarantine/` and `.cosguard/` is scanned like any
other upload; cosguard's own writes there are recognised by their seal, and never scanned."""
from __future__ import annotations

from cosguard.domain.actions import MANIFEST_META
from cosguard.local.samples import clean_text, eicar, eicar_zip_in_tar_gz


def test_infected_uploads_under_the_quarantine_and_ledger_prefixes_are_quarantined(stack):
    s = stack(jail=False)
    keys = ["quarantine/evil.com", f"quarantine/{s.intake}/ss{'4' * 32}/x.com", ".cosguard/evil.com",
            f".cosguard/jobs/ss{'5' * 32}.json", ".cosguard/claims/0123.json",
            f".cosguard/index/2026-01-01/clean.-.120000.ss{'6' * 32}.{'0' * 32}",   # a time-index name
            f".cosguard/rescan-index/20000101T000000.{'a' * 40}.{'0' * 32}"]       # a rescan-index name
    for key in keys:
        s.put(key, eicar())
    summary = s.scan()
    assert summary["counts"] == {"submitted": len(keys)}, summary
    s.settle()
    for key in keys:
        assert not s.exists(key), key
        [copy] = s.quarantined(key)
        assert s.body(copy) == eicar() and s.tags(copy)["cosguard-status"] == "infected"


def test_cosguard_own_writes_in_the_intake_bucket_are_recognised_not_scanned(stack):
    s = stack(jail=False)
    s.put("in/eicar.com", eicar())
    s.put("in/notes.txt", clean_text())
    s.scan()
    s.settle()
    jobs = s.jobs_created()
    assert jobs == 2 and s.quarantined("in/eicar.com")
    # every COS event cosguard's own writes caused: ledger documents and the quarantined copy
    summary = s.scan()
    assert summary["records"] >= 5, summary
    assert set(summary["counts"]) <= {"skipped", "gone"}, summary
    s.settle()
    assert s.jobs_created() == jobs  # no scan of its own writes, no loop
    assert s.tags("in/notes.txt")["cosguard-status"] == "clean"


def test_own_empty_index_entries_are_recognised_even_when_empty_objects_are_scanned(stack):
    s = stack(jail=False, COSGUARD_SKIP_EMPTY="false")
    s.put("in/notes.txt", clean_text())
    s.scan()
    s.settle()
    assert s.jobs_created() == 1
    summary = s.scan()   # the events of cosguard's own writes, the time-index entry among them
    assert set(summary["counts"]) <= {"skipped", "gone"}, summary
    s.settle()
    assert s.jobs_created() == 1


def test_a_genuine_manifest_copied_onto_other_bytes_does_not_hide_them(stack):
    s = stack(jail=False)
    s.put("in/eicar.com", eicar())
    s.scan()
    s.settle()
    [copy] = s.quarantined("in/eicar.com")
    manifest = s.meta(copy)[f"x-cos-meta-{MANIFEST_META}"]  # the uploader can read it in their bucket
    bundle = eicar_zip_in_tar_gz()
    # beside the copy, and over it: other bytes under a manifest cosguard really sealed
    beside = copy.rsplit("/", 1)[0] + "/other.tar.gz"
    s.put(beside, bundle, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest})
    s.put(copy, bundle, Metadata={f"x-cos-meta-{MANIFEST_META}": manifest})
    summary = s.scan()
    assert summary["counts"].get("submitted") == 2, summary
    s.settle()
    assert not s.exists(beside) and not s.exists(copy)
    moved = s.quarantined(copy) + s.quarantined(beside)
    assert len(moved) == 2 and all(s.body(key) == bundle for key in moved)
