"""Two stages on one state bucket: each deployment's ledger is its own (`.cosguard/<deployment>/`),
so neither reads the other's documents as forged, and each sweep settles only its own work.
With one shared prefix (the old default) each saw the other's every document as a forgery."""
from __future__ import annotations

import json

from cosguard.local.loader import load_handler
from cosguard.local.samples import eicar
from helpers import Context, unique_bucket
from test_operations import run_cli

OTHER_TOKEN = "another-stage-callback-token-0123"


def write_env(path, env):
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return str(path)


def test_each_stage_reads_only_its_own_ledger(quiet, tmp_path, capsys):
    other = unique_bucket("intake")
    quiet.cloud.create_bucket(other)
    events = []
    quiet.cloud.cos.subscribe(events.append, bucket=other)
    a = dict(quiet.env, COSGUARD_DEPLOYMENT="cosguard-a")
    b = dict(quiet.env, COSGUARD_DEPLOYMENT="cosguard-b", COSGUARD_BUCKETS=other, COSGUARD_CALLBACK_TOKEN=OTHER_TOKEN)
    quiet.put("up/evil.com", eicar())
    quiet.put("up/evil.com", eicar(), bucket=other)
    assert load_handler("scan_on_upload", a)(quiet.combined_event(), Context())["counts"] == {"submitted": 1}
    quiet.cloud.cos.drain()
    assert load_handler("scan_on_upload", b)({"Records": [r for e in events for r in e["Records"]]},
                                             Context())["counts"] == {"submitted": 1}
    quiet.settle()
    prefixes = {k.split("/")[1] for k in quiet.keys(bucket=quiet.jail, prefix=".cosguard/")}
    assert prefixes == {"cosguard-a", "cosguard-b"}
    for env, bucket, name in ((a, quiet.intake, "a.env"), (b, other, "b.env")):
        code, out = run_cli(capsys, "reconcile", "--env-file", write_env(tmp_path / name, env), "--json")
        report = json.loads(out)
        assert report["unauthenticated"] == [] and report["applied"] == {"quarantined": 1}, report
        assert code == 0 and not quiet.exists("up/evil.com", bucket=bucket)
