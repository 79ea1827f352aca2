"""The issue id census and `deleted_issues` (C10). No Dagster import.

Incremental reads never see a deletion: a deleted issue simply stops being returned. So once in a while we ask
Jira for the id of every issue in scope (`/search/jql` with `fields=id`, 5000 ids a page, which is cheap) and
compare that list with the issues we stored. An issue we stored that the census no longer returns is either
deleted, or no longer visible to us: when its project is missing from the latest project roster (the project
was deleted, archived or our access to it was removed) we say "no_longer_visible", otherwise "deleted".

Only issues created before the census started are compared, so an issue created while the census ran (or
after) is never mistaken for a deleted one. The census is bounded by `created`, not `updated`, because an
issue updated while the census pages are read must still be counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from jira_assets.arrow import RecordConverter, to_epoch_ms
from jira_assets.catalog import INT, STR as STR_TYPE, C, JiraObject
from jira_assets.extract import ExtractSettings, scope_clauses
from jira_assets.jira.paging import TokenPages
from jira_assets.marts.dimensions import STR, Dimensions
from jira_assets.marts.issues import DELETED, NO_LONGER_VISIBLE, latest_issues
from jira_assets.marts.tables import EXTRACTED_AT, PARTITION_COLUMN, TS, Source, latest_capture
from jira_assets.parquet.stream import RecordBatchStream

SEARCH_PATH = "/rest/api/2/search/jql"
CENSUS_PAGE_SIZE = 5000  # Jira's maximum when only ids are requested
CENSUS_COLUMNS = (C("id", INT), C("key", STR_TYPE))
CENSUS_SCHEMA = RecordConverter(CENSUS_COLUMNS, keep_raw=False).schema
CENSUS_OBJECT = JiraObject(
    "issue_id_census",
    "Issue id census",
    SEARCH_PATH,
    TokenPages("issues", CENSUS_PAGE_SIZE, method="GET", id_field="id"),
    ("id",),
    CENSUS_COLUMNS,
    appflow=False,
    description="Every issue id in scope (id-only search), to detect deletions.",
)


def census_jql(started_ms: int, settings: ExtractSettings = ExtractSettings()) -> str:
    """Every issue in the extractor's scope (the same project list and filter) created before the census
    began."""
    clauses = [f"created < {started_ms}", *scope_clauses(settings)]  # bounded, as /search/jql requires
    return " AND ".join(clauses) + " ORDER BY id ASC"


def census_stream(client: Any, settings: ExtractSettings = ExtractSettings(), *,
                  started: Optional[dt.datetime] = None) -> RecordBatchStream:
    """A lazy stream of (id, key) for every issue in scope; `_extracted_at` is the census start."""
    started = started or dt.datetime.now(dt.timezone.utc)
    started_ms = to_epoch_ms(started.isoformat())
    jql = census_jql(started_ms, settings)
    converter = RecordConverter(CENSUS_COLUMNS, keep_raw=False, extracted_at=started)
    pages_read = 0

    def pages() -> Iterator[list]:
        nonlocal pages_read
        for page in client.iter_pages(SEARCH_PATH, CENSUS_OBJECT.paging, params={"jql": jql, "fields": "id"}):
            pages_read += 1
            yield page

    def metadata() -> dict:
        return {
            "jira/census_jql": jql,
            "jira/census_started_at": started.isoformat(),
            "jira/pages": pages_read,
            **converter.metadata(),
        }

    return RecordBatchStream(converter.schema, converter.batches(pages()), metadata=metadata)


DELETED_ISSUES_SCHEMA = pa.schema(
    [
        pa.field("issue_id", pa.int64()),
        pa.field("issue_key", STR),
        pa.field("project_id", STR),
        pa.field("project_key", STR),
        pa.field(
            "state",
            STR,
            metadata={"description": "deleted, or no_longer_visible (its project left the roster)"},
        ),
        pa.field("created", TS),
        pa.field("last_updated", TS),
        pa.field("last_partition", STR),
        pa.field("census_date", STR),
        pa.field("census_started_at", TS),
    ]
)

DELETED_ISSUES_LINEAGE = {
    "issue_id": [("raw", "issues", "id"), ("raw", "issue_id_census", "id")],
    "issue_key": [("raw", "issues", "key")],
    "project_id": [("raw", "issues", "project_id")],
    "project_key": [("raw", "issues", "project_key")],
    "state": [("raw", "issues", "project_id"), ("raw", "projects", "id"), ("raw", "issue_id_census", "id")],
    "created": [("raw", "issues", "created")],
    "last_updated": [("raw", "issues", "updated")],
    "last_partition": [("raw", "issues", PARTITION_COLUMN)],
    "census_date": [("raw", "issue_id_census", PARTITION_COLUMN)],
    "census_started_at": [("raw", "issue_id_census", EXTRACTED_AT)],
}


def deleted_issues(issues: Source, census: Source, dims: Dimensions) -> pa.Table:
    """Stored issues the latest census no longer returns, each marked deleted or no_longer_visible."""
    latest_census = latest_capture(census, {"id": pa.int64(), PARTITION_COLUMN: STR, EXTRACTED_AT: TS})
    if latest_census.num_rows == 0:
        return DELETED_ISSUES_SCHEMA.empty_table()  # no census yet: no deletion can be known
    census_ids = set(latest_census.column("id").to_pylist())
    census_date = latest_census.column(PARTITION_COLUMN)[0].as_py()
    started = pc.min(latest_census.column(EXTRACTED_AT))
    stored = latest_issues(issues, {"id": pa.int64(), "key": STR, "project_id": STR, "project_key": STR,
                                    "created": TS, "updated": TS})
    in_scope = pc.and_(pc.less(stored.column("created"), started), pc.is_valid(stored.column("created")))
    stored = stored.filter(in_scope)
    gone = stored.filter(
        pa.array([i not in census_ids for i in stored.column("id").to_pylist()], type=pa.bool_())
    )
    roster = set(dims.project_keys)
    states = [
        NO_LONGER_VISIBLE if dims.projects_known and project not in roster else DELETED
        for project in gone.column("project_id").to_pylist()
    ]
    n = gone.num_rows
    table = pa.table({
        "issue_id": gone.column("id"),
        "issue_key": gone.column("key"),
        "project_id": gone.column("project_id"),
        "project_key": gone.column("project_key"),
        "state": pa.array(states, type=STR),
        "created": gone.column("created"),
        "last_updated": gone.column("updated"),
        "last_partition": gone.column(PARTITION_COLUMN),
        "census_date": pa.array([census_date] * n, type=STR),
        "census_started_at": pa.array([started.as_py()] * n, type=TS),
    }, schema=DELETED_ISSUES_SCHEMA)
    return table.sort_by([("issue_id", "ascending")])
