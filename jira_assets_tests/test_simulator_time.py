"""Timestamps and JQL date literals follow the viewer's time zone exactly, DST transitions included."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jira_assets.simulator.timeutil import jira_date, jira_datetime, jql_date_to_ms

TRANSITIONS = [  # (zone, a UTC instant near an offset change)
    ("America/Los_Angeles", "2026-03-08T09:30:00+00:00"), ("America/Los_Angeles", "2026-11-01T08:30:00+00:00"),
    ("America/St_Johns", "2026-03-08T05:00:00+00:00"), ("Australia/Lord_Howe", "2026-04-04T14:30:00+00:00"),
    ("Asia/Kolkata", "2026-01-01T00:00:00+00:00"), ("Europe/Berlin", "2026-10-25T00:30:00+00:00"),
]


@pytest.mark.parametrize("zone, around", TRANSITIONS)
def test_every_millisecond_format_matches_python_around_offset_changes(zone, around):
    start = int(dt.datetime.fromisoformat(around).timestamp() * 1000) - 3 * 3600_000
    for step in range(0, 6 * 3600_000, 59_999):  # every minute for six hours, odd milliseconds
        ms = start + step
        local = dt.datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(zone))
        expected = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + local.strftime("%z")
        assert jira_datetime(ms, zone) == expected
        assert jira_date(ms, zone) == expected[:10]


def test_jql_literals_are_wall_times_in_the_given_zone_and_periods_count_from_now():
    la = jql_date_to_ms("2026/11/06 04:30", "America/Los_Angeles", 0)
    assert la == int(dt.datetime(2026, 11, 6, 12, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert jql_date_to_ms("2026-11-06", "UTC", 0) == int(dt.datetime(2026, 11, 6, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert jql_date_to_ms("1790000000000", "Asia/Tokyo", 0) == 1790000000000
    now = 1_800_000_000_000
    assert jql_date_to_ms("-5m", "UTC", now) == now - 300_000
    assert jql_date_to_ms("-1d", "UTC", now) == now - 86_400_000
    assert jql_date_to_ms("-2w 3d", "UTC", now) == now - 17 * 86_400_000
