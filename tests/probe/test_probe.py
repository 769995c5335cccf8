"""`cosguard probe` against the local cloud: its report says what the emulator was set to, for each
position of each switch, and it leaves nothing behind."""
from __future__ import annotations

from conftest import row


def test_default_positions_end_to_end(probed, tmp_path):
    deployment = probed()
    report = deployment.probe(tmp_path)
    assert row(report, "callback.format")["observed"] == "XML"
    assert row(report, "event.key_encoding")["observed"] == "percent-encoded"
    assert row(report, "event.append")["observed"].startswith("no")
    assert row(report, "cos.forbid_overwrite")["observed"].startswith("honoured")
    assert row(report, "event.vid")["matches"] == "skipped"
    assert deployment.keys(deployment.intake, "cosguard-probe/") == []
