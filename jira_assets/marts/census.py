"""The issue id census and `deleted_issues` (C10). No Dagster import.

Incremental reads never see a deletion: a deleted issue simply stops being returned. So once in a while we ask
Jira for the id of every issue in scope (`/search/jql` with `fields=id`, 5000 ids a page, which is cheap) and
compare that list with the issues we stored. An issue we stored that the census no longer returns is either
deleted, or no longer visible to us: when its project is missing from the latest project roster (the project
was deleted, archived or our access to it was removed) we say "no_longer_visible", otherwise "deleted".

Only issues created before the census started are compared, so an issue created while the census ran (or
after) is never mistaken for a deleted one. The census is bounded by `created`, not `updated`, because an
issue updated while the census pages are read must still be counted.

Existence is asked within the projects in scope only, never through the extra JQL filter: an issue that left
the filter (closed, with `statusCategory != Done`) still exists. A second id-only search with the filter marks
which issues are still in scope; the others are `out_of_scope`. Each census row carries the project list it
was taken for, so a census of fewer projects never calls the other projects' issues deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jira_assets.arrow import RecordConverter, to_epoch_ms
from jira_assets.catalog import BOOL, INT, STR as STR_TYPE, C, JiraObject
from jira_assets.extract import ExtractSettings, scope_clauses
from jira_assets.jira.paging import TokenPages
from jira_assets.marts.dimensions import STR, Dimensions
from jira_assets.marts.issues import DELETED, NO_LONGER_VISIBLE, OUT_OF_SCOPE, latest_issues
from jira_assets.marts.tables import EXTRACTED_AT, PARTITION_COLUMN, TS, Source, latest_capture
from jira_assets.parquet.stream import RecordBatchStream

SEARCH_PATH = "/rest/api/2/search/jql"
CENSUS_PAGE_SIZE = 5000  # Jira's maximum when only ids are requested
CENSUS_COLUMNS = (
    C("id", INT), C("key", STR_TYPE),
    C("in_scope", BOOL, description="matches the extra JQL filter (true when there is none)"),
    C("scope_projects", STR_TYPE, description="the projects the census covered; null = every one"),
)
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


def census_jql(started_ms: int, settings: ExtractSettings = ExtractSettings(),
               with_filter: bool = False) -> str:
    """Every issue of the extractor's projects created before the census began (with the extra filter: only
    those it matches)."""
    clauses = [f"created < {started_ms}", *scope_clauses(settings, with_filter)]  # bounded, as Jira wants
    return " AND ".join(clauses) + " ORDER BY id ASC"


def census_stream(client: Any, settings: ExtractSettings = ExtractSettings(), *,
                  started: Optional[dt.datetime] = None) -> RecordBatchStream:
    """A lazy stream of (id, key) for every issue in scope; `_extracted_at` is the census start."""
    started = started or dt.datetime.now(dt.timezone.utc)
    started_ms = to_epoch_ms(started.isoformat())
    jql = census_jql(started_ms, settings)
    filtered_jql = census_jql(started_ms, settings, with_filter=True) if settings.jql_filter else None
    converter = RecordConverter(CENSUS_COLUMNS, keep_raw=False, extracted_at=started)
    scope_projects = ",".join(settings.projects) or None
    pages_read = 0

    def ids_of(search: str) -> Iterator[list]:
        nonlocal pages_read
        paging = CENSUS_OBJECT.paging
        for page in client.iter_pages(SEARCH_PATH, paging, params={"jql": search, "fields": "id"}):
            pages_read += 1
            yield page

    def pages() -> Iterator[list]:
        in_filter = None
        if filtered_jql:  # 8 bytes an id, sorted: 80 MB for 10 million issues at most
            found = [np.asarray([int(i["id"]) for i in p], dtype=np.int64) for p in ids_of(filtered_jql)]
            in_filter = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
        for page in ids_of(jql):
            ids = np.asarray([int(i["id"]) for i in page], dtype=np.int64)
            matched = (np.isin(ids, in_filter, assume_unique=True) if in_filter is not None
                       else np.ones(len(ids), dtype=bool))
            yield [{**issue, "in_scope": bool(m), "scope_projects": scope_projects}
                   for issue, m in zip(page, matched)]

    def metadata() -> dict:
        return {
            "jira/census_jql": jql,
            **({"jira/census_filter_jql": filtered_jql} if filtered_jql else {}),
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
            metadata={"description": "deleted, no_longer_visible (its project left the roster), or "
                                     "out_of_scope (it exists but no longer matches the extra JQL filter)"},
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
    """Stored issues the latest census no longer returns (deleted or no_longer_visible), or returns outside
    the extra JQL filter (out_of_scope)."""
    latest_census = latest_capture(census, {"id": pa.int64(), "in_scope": pa.bool_(),
                                            "scope_projects": STR, PARTITION_COLUMN: STR, EXTRACTED_AT: TS})
    if latest_census.num_rows == 0:
        return DELETED_ISSUES_SCHEMA.empty_table()  # no census yet: no deletion can be known
    census_ids = set(latest_census.column("id").to_pylist())
    # (a census written before `in_scope` existed reads it as null: in scope)
    left_scope = {i for i, s in zip(latest_census.column("id").to_pylist(),
                                    latest_census.column("in_scope").to_pylist()) if s is False}
    covered = latest_census.column("scope_projects")[0].as_py()
    covered = set(covered.split(",")) if covered else None
    census_date = latest_census.column(PARTITION_COLUMN)[0].as_py()
    started = pc.min(latest_census.column(EXTRACTED_AT))
    stored = latest_issues(issues, {"id": pa.int64(), "key": STR, "project_id": STR, "project_key": STR,
                                    "created": TS, "updated": TS})
    compared = pc.and_(pc.less(stored.column("created"), started), pc.is_valid(stored.column("created")))
    stored = stored.filter(compared)
    if covered is not None:  # a census of some projects says nothing of the others' issues
        projects = zip(stored.column("project_id").to_pylist(), stored.column("project_key").to_pylist())
        stored = stored.filter(pa.array([p in covered or k in covered for p, k in projects], type=pa.bool_()))
    ids = stored.column("id").to_pylist()
    gone = stored.filter(pa.array([i not in census_ids or i in left_scope for i in ids], type=pa.bool_()))
    roster = set(dims.project_keys)
    states = [
        OUT_OF_SCOPE if issue_id in census_ids else
        NO_LONGER_VISIBLE if dims.projects_known and project not in roster else DELETED
        for issue_id, project in zip(gone.column("id").to_pylist(), gone.column("project_id").to_pylist())
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
