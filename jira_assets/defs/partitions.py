"""Daily UTC partitions: by `updated`/`created` day for incremental objects, by capture date for snapshots."""
from __future__ import annotations

import datetime as dt
import os

import dagster as dg

DEFAULT_HISTORY_START = "2026-01-01"


def history_start() -> str:
    """The first partition (JIRA_HISTORY_START, YYYY-MM-DD): how far back backfills may go."""
    value = os.environ.get("JIRA_HISTORY_START", DEFAULT_HISTORY_START)
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"JIRA_HISTORY_START must be a date like 2026-01-01, not {value!r}") from None
    return value


# end_offset=1: today's partition exists, so an hourly refresh can fill the day that is still running.
incremental_partitions = dg.DailyPartitionsDefinition(start_date=history_start(), end_offset=1, timezone="UTC")
snapshot_partitions = incremental_partitions


def today_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()
