"""`issue_status_transitions` (time in each status, lead and cycle time) and `open_issues_daily`. No Dagster.

An issue's status timeline starts at its creation in its initial status (the `from` of its first status
change, or its current status if it never moved) and changes at every `status` item of its changelog. Status
categories come from the latest `workflow_statuses` capture, so a renamed status or a status moved to another
category is read the way Jira shows it today.

- lead time: creation -> the moment the issue entered the done category for the last time (only when it is
  done now; an issue reopened after being done is not done);
- cycle time: the first time it entered the "indeterminate" (in progress) category -> that same moment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import pyarrow as pa
import pyarrow.compute as pc

from jira_assets.marts.dimensions import DONE, IN_PROGRESS, INT, STR, Dimensions
from jira_assets.marts.history import STATUS_ITEMS, changelog_items
from jira_assets.marts.tables import TS, Source, read

TRANSITIONS_SCHEMA = pa.schema(
    [
        pa.field("issue_id", INT),
        pa.field("issue_key", STR),
        pa.field("project_id", STR),
        pa.field("project_key", STR),
        pa.field(
            "sequence",
            INT,
            metadata={"description": "1 for the status the issue was created in, then +1 a move"},
        ),
        pa.field("status_id", STR),
        pa.field("status_name", STR),
        pa.field("status_category_key", STR),
        pa.field(
            "visit", INT, metadata={"description": "how many times the issue has been in this status so far"}
        ),
        pa.field("entered_at", TS),
        pa.field("exited_at", TS, metadata={"description": "null while the issue is still in this status"}),
        pa.field("is_current", pa.bool_()),
        pa.field(
            "seconds_in_status", INT, metadata={"description": "this visit; open visits are counted to as_of"}
        ),
        pa.field(
            "total_seconds_in_status",
            INT,
            metadata={"description": "every visit of the issue to this status"},
        ),
        pa.field("created", TS),
        pa.field(
            "done_at",
            TS,
            metadata={"description": "when the issue last entered the done category (done now)"},
        ),
        pa.field("lead_time_seconds", INT, metadata={"description": "created -> done_at"}),
        pa.field(
            "cycle_time_seconds", INT, metadata={"description": "first entry into In Progress -> done_at"}
        ),
        pa.field("as_of", TS),
    ]
)

TRANSITIONS_LINEAGE = {
    "issue_id": [("marts", "issues_current", "issue_id")],
    "issue_key": [("marts", "issues_current", "issue_key")],
    "project_id": [("marts", "issues_current", "project_id")],
    "project_key": [("marts", "issues_current", "project_key")],
    "status_id": [("raw", "issue_changelogs", "to_value"), ("raw", "issue_changelogs", "from_value"),
                  ("marts", "issues_current", "status_id")],
    "status_name": [("raw", "workflow_statuses", "name"), ("raw", "issue_changelogs", "to_string")],
    "status_category_key": [("raw", "workflow_statuses", "status_category_key")],
    "entered_at": [("raw", "issue_changelogs", "created"), ("marts", "issues_current", "created")],
    "exited_at": [("raw", "issue_changelogs", "created")],
    "created": [("marts", "issues_current", "created")],
}
for _name in (
    "seconds_in_status",
    "total_seconds_in_status",
    "done_at",
    "lead_time_seconds",
    "cycle_time_seconds",
):
    TRANSITIONS_LINEAGE[_name] = (
        TRANSITIONS_LINEAGE["entered_at"] + TRANSITIONS_LINEAGE["status_category_key"]
    )

ISSUE_COLUMNS = {"issue_id": INT, "issue_key": STR, "project_id": STR, "project_key": STR, "created": TS,
                 "status_id": STR, "status_name": STR, "status_category_key": STR}


def issue_status_transitions(changelogs: Source, issues_current: Source, dims: Dimensions,
                             as_of: dt.datetime) -> pa.Table:
    issues = read(issues_current, ISSUE_COLUMNS).to_pylist()
    status_items = changelog_items(changelogs, STATUS_ITEMS)
    changes: dict[int, list[dict]] = {}
    for item in status_items.to_pylist():
        changes.setdefault(item["issue_id"], []).append(item)
    rows: list[dict] = []
    for issue in sorted(issues, key=lambda i: i["issue_id"]):
        rows.extend(_timeline(issue, changes.get(issue["issue_id"], []), dims, as_of))
    return pa.Table.from_pylist(rows, schema=TRANSITIONS_SCHEMA)


def _timeline(issue: dict, changes: list[dict], dims: Dimensions, as_of: dt.datetime) -> list[dict]:
    changes = [c for c in changes if c["created"] is not None]  # a change Jira gave no time cannot be placed
    created = issue["created"] or (changes[0]["created"] if changes else None)
    if created is None:
        return []
    if changes:
        first = changes[0]
        steps = [(first["from_value"], first["from_string"], min(created, first["created"]))]
        steps += [(c["to_value"], c["to_string"], c["created"]) for c in changes]
    else:
        steps = [(issue["status_id"], issue["status_name"], created)]

    def category(status_id: Optional[str]) -> Optional[str]:
        known = dims.status_categories.get(status_id)
        if known is None and status_id == issue["status_id"]:
            return issue["status_category_key"]
        return known

    rows = []
    visits: dict[Any, int] = {}
    for index, (status_id, name, entered) in enumerate(steps):
        exited = steps[index + 1][2] if index + 1 < len(steps) else None
        visits[status_id] = visits.get(status_id, 0) + 1
        rows.append(
            {
                "issue_id": issue["issue_id"],
                "issue_key": issue["issue_key"],
                "project_id": issue["project_id"],
                "project_key": issue["project_key"],
                "sequence": index + 1,
                "status_id": status_id,
                "status_name": dims.status_names.get(status_id) or name,
                "status_category_key": category(status_id),
                "visit": visits[status_id],
                "entered_at": entered,
                "exited_at": exited,
                "is_current": exited is None,
                "seconds_in_status": _seconds(entered, exited or as_of),
                "created": created,
                "as_of": as_of,
            }
        )
    totals: dict[Any, int] = {}
    for row in rows:
        totals[row["status_id"]] = totals.get(row["status_id"], 0) + row["seconds_in_status"]
    done_at = None
    for row in reversed(rows):  # the start of the trailing run of done-category statuses
        if row["status_category_key"] != DONE:
            break
        done_at = row["entered_at"]
    started = next((r["entered_at"] for r in rows if r["status_category_key"] == IN_PROGRESS), None)
    for row in rows:
        row["total_seconds_in_status"] = totals[row["status_id"]]
        row["done_at"] = done_at
        row["lead_time_seconds"] = _seconds(created, done_at) if done_at else None
        row["cycle_time_seconds"] = (
            _seconds(started, done_at) if done_at and started and started <= done_at else None
        )
    return rows


def _seconds(start: dt.datetime, end: dt.datetime) -> int:
    return max(0, int((end - start).total_seconds()))


OPEN_ISSUES_SCHEMA = pa.schema(
    [
        pa.field("date", STR),
        pa.field("project_id", STR),
        pa.field("project_key", STR),
        pa.field("status_id", STR),
        pa.field("status_name", STR),
        pa.field("status_category_key", STR),
        pa.field("open_issues", INT),
        pa.field(
            "as_of", TS, metadata={"description": "the instant counted: the end of the day, or now for today"}
        ),
    ]
)

OPEN_ISSUES_LINEAGE = {
    **{name: [("marts", "issue_status_transitions", name)]
       for name in ("project_id", "project_key", "status_id", "status_name", "status_category_key")},
    "open_issues": [("marts", "issue_status_transitions", "issue_id"),
                    ("marts", "issue_status_transitions", "entered_at"),
                    ("marts", "issue_status_transitions", "exited_at"),
                    ("marts", "issue_status_transitions", "status_category_key")],
}


def status_spans(transitions: Source) -> pa.Table:
    """The columns of `transitions` that `open_issues_daily` counts: a run over many days reads them once."""
    return read(transitions, {name: TRANSITIONS_SCHEMA.field(name).type for name in
                              ("issue_id", "project_id", "project_key", "status_id", "status_name",
                               "status_category_key", "entered_at", "exited_at")})


def open_issues_daily(transitions: Source, day: dt.date, as_of: dt.datetime) -> pa.Table:
    """Issues not in the done category at the end of `day` (or at `as_of` if earlier), per project and status.
    `transitions` may be the table `status_spans` already read."""
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    instant = min(end_of_day, as_of)
    table = status_spans(transitions)
    moment = pa.scalar(instant, type=TS)
    open_now = pc.and_(
        pc.less(table.column("entered_at"), moment),
        pc.and_(
            pc.or_kleene(
                pc.is_null(table.column("exited_at")), pc.greater_equal(table.column("exited_at"), moment)
            ),
            pc.not_equal(pc.coalesce(table.column("status_category_key"), ""), DONE),
        ),
    )
    keys = ["project_id", "project_key", "status_id", "status_name", "status_category_key"]
    counts = table.filter(open_now).group_by(keys).aggregate([("issue_id", "count_distinct")])
    counts = counts.sort_by([(k, "ascending") for k in keys])
    n = counts.num_rows
    return pa.table({
        "date": pa.array([day.isoformat()] * n, type=STR),
        **{k: counts.column(k) for k in keys},
        "open_issues": counts.column("issue_id_count_distinct").cast(INT),
        "as_of": pa.array([instant] * n, type=TS),
    }, schema=OPEN_ISSUES_SCHEMA)
