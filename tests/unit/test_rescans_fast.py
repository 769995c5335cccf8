"""Rescans' pure parts: quiet hours (wrapping midnight), the settings' parsers, --older-than, and the
history index's `rescan` mark (the end-to-end behaviour is tests/backfill/test_rescan.py)."""
from __future__ import annotations

import argparse
import calendar

import pytest

from cosguard.bulk.rescan_schedule import in_quiet_hours
from cosguard.cli.rescan import duration
from cosguard.domain.history import _DETAIL, detail_of
from cosguard.domain.rescans import verdict_at
from cosguard.infra.settings_spec import parse_quiet_hours, parse_rescan_days


def _at(hour: int) -> float:
    return float(calendar.timegm((2026, 12, 7, hour, 30, 0)))


@pytest.mark.parametrize("hours,quiet", [((22, 6), {22, 23, 0, 1, 2, 3, 4, 5}), ((13, 14), {13})])
def test_quiet_hours_include_their_start_and_exclude_their_end(hours, quiet):
    assert {h for h in range(24) if in_quiet_hours(hours, _at(h))} == quiet
    assert not in_quiet_hours(None, _at(3))


def test_settings_parsers_refuse_what_they_cannot_mean():
    assert parse_quiet_hours("22-06") == (22, 6) and parse_quiet_hours(" 1 - 2 ") == (1, 2)
    for bad in ("22", "24-01", "5-5", "a-b", "-1-3"):
        with pytest.raises(ValueError):
            parse_quiet_hours(bad)
    assert parse_rescan_days("0") == 0.0 and parse_rescan_days("0.5") == 0.5
    for bad in ("-1", "nan", "x"):
        with pytest.raises(ValueError):
            parse_rescan_days(bad)


def test_older_than_durations():
    assert [duration(v) for v in ("30d", "12h", "90m", "45s", "2w", "7", "1.5d")] == [
        30 * 86400, 12 * 3600, 90 * 60, 45, 14 * 86400, 7 * 86400, 1.5 * 86400]
    for bad in ("", "soon", "-3d", "3y"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_a_rescans_history_entry_is_marked_and_parsed():
    assert detail_of({"rescan_of": "ss1"}) == "rescan"
    assert detail_of({"rescan_of": "ss1", "fallback": {"action": "x"}}) == "rescan+fallback"
    assert detail_of({}) == "-" and detail_of({"fallback": {}}) == "fallback"
    assert all(_DETAIL.match(d) for d in ("rescan", "rescan+fallback", "rescan+noroom_move", "-"))
    assert not _DETAIL.match("rescan+") and not _DETAIL.match("other")


def test_a_records_verdict_date_falls_back_to_its_close():
    assert verdict_at({"closed_at": 5.0}) == 5.0 and verdict_at({"closed_at": 5.0, "verdict_at": 9.0}) == 9.0
    assert verdict_at({"verdict_at": True}) == 0.0 and verdict_at({}) == 0.0
