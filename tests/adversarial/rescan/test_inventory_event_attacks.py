"""An `--inventory --fan-out` event (`cosguard_inventory`) reaches scan_on_upload from whoever may
invoke the function; what it names is checked again by the worker, never trusted: a bucket the
deployment does not serve, a manifest not matching its checksum, a file the manifest does not
list, or an MD5 other than the manifest's is refused whole, before any row is acted on."""
from __future__ import annotations

import pytest

from backfill_support import mixed
from cosguard.domain.inventory_report import read_manifest
from cosguard.triggers.upload import scan_upload_event


def _setup(stack):
    stack.cloud.ci.faults.drop_callback_rate = 1.0
    stack.seed(mixed(6))
    location = stack.inventory(rows_per_file=3, gzip=False)
    runtime = stack.runtime()
    manifest = read_manifest(runtime.gateway, location, stack.intake)
    spec = {"manifest": location, "bucket": stack.intake, "file": manifest.files[0].key,
            "md5": manifest.files[0].md5, "rows": [0, None]}
    return runtime, location, manifest, spec


def _refused(stack, runtime, spec, reason):
    summary = scan_upload_event(runtime.scanner, {"cosguard_inventory": spec})
    assert summary.counts() == {"error": 1}
    assert reason in summary.as_dict()["errors"][0]["reason"]
    assert stack.jobs() == 0 and stack.cloud.ci.counters.snapshot().get("SubmitVirusJob", 0) == 0


def test_a_bucket_the_deployment_does_not_serve_is_refused(stack):
    runtime, _, _, spec = _setup(stack)
    _refused(stack, runtime, dict(spec, bucket=stack.jail), "not in COSGUARD_BUCKETS")


def test_a_file_the_manifest_does_not_list_is_refused(stack):
    runtime, location, _, spec = _setup(stack)
    key = location.split("/", 1)[1]
    _refused(stack, runtime, dict(spec, file=key), "is not a data file")


def test_an_md5_other_than_the_manifests_is_refused(stack):
    runtime, _, manifest, spec = _setup(stack)
    _refused(stack, runtime, dict(spec, md5=manifest.files[1].md5), "MD5")


def test_a_manifest_not_matching_its_checksum_is_refused(stack):
    runtime, location, _, spec = _setup(stack)
    reports, key = location.split("/", 1)
    raw = stack.cos.get_object(Bucket=reports, Key=key)["Body"].get_raw_stream().read()
    stack.cos.put_object(Bucket=reports, Key=key, Body=raw + b" ")
    _refused(stack, runtime, spec, "manifest.checksum")


@pytest.mark.parametrize("spec", ["a string", {"manifest": "x/manifest.json"}, {"rows": [5, 2]},
                                  {"rows": [-1, None]}, {"rows": "all"}], ids=str)
def test_a_malformed_event_is_refused_with_a_clear_reason(stack, spec):
    runtime, _, _, good = _setup(stack)
    raw = spec if not isinstance(spec, dict) or "manifest" in spec else dict(good, **spec)
    summary = scan_upload_event(runtime.scanner, {"cosguard_inventory": raw})
    assert summary.counts() == {"error": 1} and "cosguard_inventory" in summary.as_dict()["errors"][0]["reason"]
    assert stack.jobs() == 0
