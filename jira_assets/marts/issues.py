"""`issues_current` and `worklogs_current`: the present state of Jira, without what was deleted. No Dagster.

Raw issue partitions hold an issue once per UTC day it was updated, so the same issue appears in many
partitions; the current row is its version with the greatest `updated` (ties: the latest extraction).
Deleted issues (from the census, see `census.py`) are dropped (C10); issues of a project that is no longer
visible stay, flagged by `visibility`, because Jira only stopped showing them to us.
"""
from __future__ import annotations

import re
from typing import Any, Optional

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from jira_assets.issue_schema import STANDARD_COLUMNS
from jira_assets.marts.dimensions import INT, STR, Dimensions
from jira_assets.marts.tables import (
    EXTRACTED_AT,
    PARTITION_COLUMN,
    TS,
    Source,
    as_dataset,
    latest_versions,
    lookup,
    read,
)

BLOB_COLUMNS = ("fields_json", "comments_json", "worklogs_json", "changelog_json")
DELETED = "deleted"
NO_LONGER_VISIBLE = "no_longer_visible"
OUT_OF_SCOPE = "out_of_scope"  # exists, but no longer matches the extra JQL filter
VISIBLE = "visible"

# Column lineage: output column -> [(layer, asset name, column)]; columns not listed are copies of the raw
# issues column of the same name (`_RENAMED` maps the few that were renamed).
_RENAMED = {
    "issue_id": "id",
    "issue_key": "key",
    "last_partition": PARTITION_COLUMN,
    "extracted_at": EXTRACTED_AT,
}


def _raw(name: str, column: str) -> tuple[str, str, str]:
    return ("raw", name, column)


_SPRINT = _raw("issues", "sprint")
ISSUES_CURRENT_LINEAGE = {
    "project_key": [_raw("issues", "project_id"), _raw("projects", "key"), _raw("issues", "project_key")],
    "project_name": [_raw("issues", "project_id"), _raw("projects", "name")],
    "issue_type_name": [
        _raw("issues", "issue_type_id"),
        _raw("issue_types", "name"),
        _raw("issues", "issue_type_name"),
    ],
    "status_name": [
        _raw("issues", "status_id"),
        _raw("workflow_statuses", "name"),
        _raw("issues", "status_name"),
    ],
    "status_category_key": [
        _raw("issues", "status_id"),
        _raw("workflow_statuses", "status_category_key"),
        _raw("issues", "status_category_key"),
    ],
    "status_category_name": [
        _raw("issues", "status_id"),
        _raw("workflow_statuses", "status_category_key"),
        _raw("workflow_status_categories", "name"),
    ],
    "priority_name": [
        _raw("issues", "priority_id"),
        _raw("issue_priorities", "name"),
        _raw("issues", "priority_name"),
    ],
    "resolution_name": [
        _raw("issues", "resolution_id"),
        _raw("issue_resolutions", "name"),
        _raw("issues", "resolution_name"),
    ],
    "assignee_display_name": [
        _raw("issues", "assignee_account_id"),
        _raw("users", "display_name"),
        _raw("issues", "assignee_display_name"),
    ],
    "reporter_display_name": [
        _raw("issues", "reporter_account_id"),
        _raw("users", "display_name"),
        _raw("issues", "reporter_display_name"),
    ],
    "creator_display_name": [_raw("issues", "creator_account_id"), _raw("users", "display_name")],
    "sprint_ids": [_SPRINT],
    "sprint_names": [_SPRINT, _raw("sprints", "name")],
    "current_sprint_id": [_SPRINT, _raw("sprints", "state")],
    "current_sprint_name": [_SPRINT, _raw("sprints", "name")],
    "current_sprint_state": [_SPRINT, _raw("sprints", "state")],
    "visibility": [_raw("issues", "id"), ("marts", "deleted_issues", "state")],
}


def raw_issue_columns(issues: Source) -> dict[str, pa.DataType]:
    """The raw issue columns the mart keeps: the standard ones and every typed custom field, no JSON blobs."""
    columns = {c.name: c.type for c in STANDARD_COLUMNS}
    dataset = as_dataset(issues)
    for f in dataset.schema if dataset is not None else ():
        if (
            f.name not in columns
            and f.name not in BLOB_COLUMNS
            and f.name not in (PARTITION_COLUMN, EXTRACTED_AT)
        ):
            columns[f.name] = f.type
    return columns


def latest_issues(issues: Source, columns: Optional[dict[str, pa.DataType]] = None) -> pa.Table:
    """One row per issue id, its newest version, with `date` (its partition) and `_extracted_at`."""
    columns = dict(columns or raw_issue_columns(issues))
    columns.update({PARTITION_COLUMN: STR, EXTRACTED_AT: TS})
    return latest_versions(issues, "id", "updated", columns)


def deletion_states(deleted: Source) -> dict[int, str]:
    table = read(deleted, {"issue_id": INT, "state": STR})
    return {i: s for i, s in zip(table.column("issue_id").to_pylist(), table.column("state").to_pylist())
            if i is not None}


def issues_current(issues: Source, dims: Dimensions, deleted: Source = None) -> pa.Table:
    raw_columns = raw_issue_columns(issues)
    latest = latest_issues(issues, raw_columns)
    states = deletion_states(deleted)
    if states:
        keep = [states.get(i) not in (DELETED, OUT_OF_SCOPE) for i in latest.column("id").to_pylist()]
        latest = latest.filter(pa.array(keep, type=pa.bool_()))
    latest = latest.sort_by([("id", "ascending")])
    col = latest.column

    def named(ids: str, mapping: dict, fallback: Optional[str] = None) -> pa.ChunkedArray:
        joined = lookup(col(ids), mapping)
        return pc.coalesce(joined, col(fallback)) if fallback else pa.chunked_array([joined], type=STR)

    sprints = [_sprint_summary(v, dims) for v in _sprint_values(latest, dims)]
    status_category = pc.coalesce(
        lookup(col("status_id"), dims.status_categories), col("status_category_key")
    )
    out: dict[str, Any] = {
        "issue_id": col("id"),
        "issue_key": col("key"),
        "project_id": col("project_id"),
        "project_key": named("project_id", dims.project_keys, "project_key"),
        "project_name": named("project_id", dims.project_names),
        "issue_type_id": col("issue_type_id"),
        "issue_type_name": named("issue_type_id", dims.issue_type_names, "issue_type_name"),
        "is_subtask": col("is_subtask"),
        "parent_id": col("parent_id"),
        "parent_key": col("parent_key"),
        "status_id": col("status_id"),
        "status_name": named("status_id", dims.status_names, "status_name"),
        "status_category_key": status_category,
        "status_category_name": lookup(status_category, dims.category_names),
        "priority_id": col("priority_id"),
        "priority_name": named("priority_id", dims.priority_names, "priority_name"),
        "resolution_id": col("resolution_id"),
        "resolution_name": named("resolution_id", dims.resolution_names, "resolution_name"),
        "resolution_date": col("resolution_date"),
        "assignee_account_id": col("assignee_account_id"),
        "assignee_display_name": named("assignee_account_id", dims.user_names, "assignee_display_name"),
        "reporter_account_id": col("reporter_account_id"),
        "reporter_display_name": named("reporter_account_id", dims.user_names, "reporter_display_name"),
        "creator_account_id": col("creator_account_id"),
        "creator_display_name": named("creator_account_id", dims.user_names),
        "sprint_ids": pa.array([s["ids"] for s in sprints], type=pa.list_(INT)),
        "sprint_names": pa.array([s["names"] for s in sprints], type=pa.list_(STR)),
        "current_sprint_id": pa.array([s["id"] for s in sprints], type=INT),
        "current_sprint_name": pa.array([s["name"] for s in sprints], type=STR),
        "current_sprint_state": pa.array([s["state"] for s in sprints], type=STR),
    }
    for name in raw_columns:  # every other standard column and every typed custom field, unchanged
        if name not in ("id", "key") and name not in out:
            out[name] = col(name)
    out["visibility"] = pa.array(
        [NO_LONGER_VISIBLE if states.get(i) == NO_LONGER_VISIBLE else VISIBLE for i in col("id").to_pylist()],
        type=STR)
    out["last_partition"] = col(PARTITION_COLUMN)
    out["extracted_at"] = col(EXTRACTED_AT)
    return pa.table(out)


def issues_current_lineage(columns: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Output column -> [(layer, asset name, column)] it is computed from."""
    return {
        name: ISSUES_CURRENT_LINEAGE.get(name, [_raw("issues", _RENAMED.get(name, name))]) for name in columns
    }


# ---- sprints ---------------------------------------------------------------------------------------------

_LEGACY = re.compile(r"(\w+)=([^,\]]*)")
_STATE_RANK = {"active": 0, "future": 1, "closed": 2}


def _sprint_values(latest: pa.Table, dims: Dimensions) -> list[Any]:
    """The sprint field's JSON per issue: the column of the gh-sprint field, or `sprint` if /field is unknown.
    """
    from jira_assets.issue_schema import custom_field_columns

    names = [c.name for c, _ in custom_field_columns(dims.fields)
             if (c.source or "").split(".", 1)[-1] in set(dims.sprint_field_ids())]
    if not names and "sprint" in latest.column_names:
        names = ["sprint"]
    names = [n for n in names if n in latest.column_names]
    if not names:
        return [None] * latest.num_rows
    return latest.column(names[0]).to_pylist()


def parse_sprints(value: Any) -> list[dict]:
    """The sprint field in its Cloud JSON form (objects) or the legacy `...Sprint@1a[id=1,state=CLOSED,...]`.
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = [value]
    if not isinstance(value, list):
        value = [value]
    sprints = []
    for item in value:
        if isinstance(item, dict):
            sprint = item
        elif isinstance(item, str):
            sprint = {k: (None if v == "<null>" else v) for k, v in _LEGACY.findall(item)}
        else:
            continue
        try:
            sprint_id = int(sprint.get("id"))
        except (TypeError, ValueError):
            continue
        sprints.append(
            {"id": sprint_id, "name": sprint.get("name"), "state": (sprint.get("state") or "").lower()}
        )
    return sprints


def _sprint_summary(value: Any, dims: Dimensions) -> dict:
    sprints = parse_sprints(value)
    for s in sprints:  # the sprint table is fresher than the copy embedded in the issue
        known = dims.sprints.get(s["id"])
        if known:
            s["name"] = known.get("name") or s["name"]
            s["state"] = (known.get("state") or s["state"] or "").lower()
    if not sprints:
        return {"ids": None, "names": None, "id": None, "name": None, "state": None}
    # current: the active sprint, else the next future one, else the last closed one
    current = min(enumerate(sprints), key=lambda p: (_STATE_RANK.get(p[1]["state"], 3), -p[0]))[1]
    return {"ids": [s["id"] for s in sprints], "names": [s["name"] for s in sprints], "id": current["id"],
            "name": current["name"], "state": current["state"] or None}


# ---- worklogs --------------------------------------------------------------------------------------------

WORKLOG_COLUMNS = {
    "id": STR, "issue_id": STR, "author_account_id": STR, "comment": STR, "started": TS, "created": TS,
    "updated": TS, "time_spent_seconds": INT,
}


def worklogs_current(
    worklogs: Source, deletions: Source, dims: Dimensions, deleted_issues: Source = None
) -> pa.Table:
    """The newest version of every worklog, minus those in /worklog/deleted and those of deleted issues (C10).
    """
    latest = latest_versions(worklogs, "id", "updated", {**WORKLOG_COLUMNS, PARTITION_COLUMN: STR})
    deleted_ids = set(read(deletions, {"worklog_id": STR}).column("worklog_id").to_pylist())
    issue_states = deletion_states(deleted_issues)
    keep = [
        w not in deleted_ids and issue_states.get(_int(i)) != DELETED
        for w, i in zip(latest.column("id").to_pylist(), latest.column("issue_id").to_pylist())
    ]
    latest = latest.filter(pa.array(keep, type=pa.bool_())).sort_by([("id", "ascending")])
    return pa.table({
        "worklog_id": latest.column("id"),
        "issue_id": pa.array([_int(i) for i in latest.column("issue_id").to_pylist()], type=INT),
        "author_account_id": latest.column("author_account_id"),
        "author_display_name": lookup(latest.column("author_account_id"), dims.user_names),
        "started": latest.column("started"),
        "time_spent_seconds": latest.column("time_spent_seconds"),
        "comment": latest.column("comment"),
        "created": latest.column("created"),
        "updated": latest.column("updated"),
        "last_partition": latest.column(PARTITION_COLUMN),
    })


WORKLOGS_CURRENT_LINEAGE = {
    "worklog_id": [_raw("issue_worklogs", "id"), _raw("worklog_deletions", "worklog_id")],
    "author_display_name": [_raw("issue_worklogs", "author_account_id"), _raw("users", "display_name")],
    "last_partition": [_raw("issue_worklogs", PARTITION_COLUMN)],
    **{name: [_raw("issue_worklogs", name)] for name in
       ("issue_id", "author_account_id", "started", "time_spent_seconds", "comment", "created", "updated")},
}


def _int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
