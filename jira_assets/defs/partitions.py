"""Daily UTC partitions: by `updated`/`created` day for incremental objects, by capture date for snapshots."""
from __future__ import annotations

import datetime as dt
import os

import dagster as dg

DEFAULT_HISTORY_START = "2026-01-01"


def history_start() -> str:
    """The first partition, YYYY-MM-DD: JIRA_HISTORY_START, else `history_start` in the JIRA_SCOPE_FILE, else
    2026-01-01. It fixes how far back backfills may go; it is read when the code location loads."""
    from jira_assets.scope import ExtractionScope, ScopeError

    value = os.environ.get("JIRA_HISTORY_START")
    if not value and os.environ.get("JIRA_SCOPE_FILE"):
        value = ExtractionScope.from_env().history_start
    value = value or DEFAULT_HISTORY_START
    problems = ExtractionScope(history_start=value).problems()
    if problems:
        raise ScopeError(problems)
    return value


# end_offset=1: today's partition exists, so an hourly refresh can fill the day that is still running.
incremental_partitions = dg.DailyPartitionsDefinition(start_date=history_start(), end_offset=1, timezone="UTC")
snapshot_partitions = incremental_partitions


def today_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()
