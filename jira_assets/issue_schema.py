"""The issues table's columns: typed standard fields, custom fields typed from /field, and lossless JSON.

Custom fields get readable column names (`Story Points` -> `story_points`) and an Arrow type chosen from
the field's `/field` schema; the field id stays in the column description. The embedded comment, worklog
and changelog pages are kept as their own JSON columns so the child tables can complete them without
re-reading every issue's fields. No Dagster import.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence

from jira_assets.arrow import _MISSING, RecordConverter, dig, to_json_text
from jira_assets.catalog import BOOL, DATE, FLOAT, INT, JSON, STR, STR_LIST, TS, Column, C

# Fields kept out of `fields_json` because they have columns of their own (the embedded child pages).
CHILD_PAGE_FIELDS = {"comment": "comments_json", "worklog": "worklogs_json"}

STANDARD_COLUMNS: tuple[Column, ...] = (
    C("id", INT),
    C("key"),
    C("project_id", STR, "fields.project.id"),
    C("project_key", STR, "fields.project.key"),
    C("issue_type_id", STR, "fields.issuetype.id"),
    C("issue_type_name", STR, "fields.issuetype.name"),
    C("is_subtask", BOOL, "fields.issuetype.subtask"),
    C("parent_id", STR, "fields.parent.id"),
    C("parent_key", STR, "fields.parent.key"),
    C("status_id", STR, "fields.status.id"),
    C("status_name", STR, "fields.status.name"),
    C("status_category_key", STR, "fields.status.statusCategory.key"),
    C("priority_id", STR, "fields.priority.id"),
    C("priority_name", STR, "fields.priority.name"),
    C("resolution_id", STR, "fields.resolution.id"),
    C("resolution_name", STR, "fields.resolution.name"),
    C("resolution_date", TS, "fields.resolutiondate"),
    C("assignee_account_id", STR, "fields.assignee.accountId"),
    C("assignee_display_name", STR, "fields.assignee.displayName"),
    C("reporter_account_id", STR, "fields.reporter.accountId"),
    C("reporter_display_name", STR, "fields.reporter.displayName"),
    C("creator_account_id", STR, "fields.creator.accountId"),
    C("summary", STR, "fields.summary"),
    C("description", STR, "fields.description"),
    C("environment", STR, "fields.environment"),
    C("labels", STR_LIST, "fields.labels"),
    C("created", TS, "fields.created"),
    C("updated", TS, "fields.updated"),
    C("due_date", DATE, "fields.duedate"),
    C("time_original_estimate_seconds", INT, "fields.timeoriginalestimate"),
    C("time_estimate_seconds", INT, "fields.timeestimate"),
    C("time_spent_seconds", INT, "fields.timespent"),
    C("votes", INT, "fields.votes.votes"),
    C("watches", INT, "fields.watches.watchCount"),
    C("security_level_id", STR, "fields.security.id"),
    C("comment_total", INT, "fields.comment.total"),
    C("worklog_total", INT, "fields.worklog.total"),
    C("changelog_total", INT, "changelog.total"),
)
_STANDARD_NAMES = {c.name for c in STANDARD_COLUMNS}
_SPRINT_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"


def _pluck(key: str) -> Callable[[Any], Any]:
    return lambda v: v.get(key) if isinstance(v, dict) else v


def _pluck_each(key: str) -> Callable[[Any], Any]:
    return lambda v: [x.get(key) if isinstance(x, dict) else x for x in v] if isinstance(v, list) else v


# (schema.type, schema.items) -> (Arrow type, how to reduce Jira's value before coercion)
_CUSTOM_TYPES: dict[tuple[str, Optional[str]], tuple[Any, Optional[Callable[[Any], Any]]]] = {
    ("number", None): (FLOAT, None),
    ("datetime", None): (TS, None),
    ("date", None): (DATE, None),
    ("string", None): (STR, None),
    ("option", None): (STR, _pluck("value")),
    ("user", None): (STR, _pluck("accountId")),
    ("array", "option"): (STR_LIST, _pluck_each("value")),
    ("array", "string"): (STR_LIST, None),
    ("array", "user"): (STR_LIST, _pluck_each("accountId")),
}


def column_name(field_name: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", field_name).strip("_").lower()
    return name if name and not name[0].isdigit() else f"f_{name}"


def custom_field_columns(fields: Sequence[dict]) -> list[tuple[Column, Callable[[Any], Any]]]:
    """Columns for the custom fields listed by /field, ordered by field id so partitions line up."""
    taken = set(_STANDARD_NAMES) | {"fields_json", "comments_json", "worklogs_json", "changelog_json"}
    out = []
    for field in sorted((f for f in fields if f.get("custom")), key=lambda f: str(f.get("id"))):
        field_id = str(field["id"])
        schema = field.get("schema") or {}
        kind = (schema.get("type"), schema.get("items") if schema.get("type") == "array" else None)
        arrow_type, reduce = _CUSTOM_TYPES.get(kind, (JSON, None))
        if schema.get("custom") == _SPRINT_TYPE:
            arrow_type, reduce = JSON, None
        name = column_name(field.get("name") or field_id)
        if name in taken:  # two fields with one readable name: the id makes it unique and stable
            name = f"{name}_{field_id.rsplit('_', 1)[-1]}"
        taken.add(name)
        column = C(name, arrow_type, f"fields.{field_id}", f"custom field {field_id} ({field.get('name')})")
        out.append((column, _custom_getter(field_id, reduce)))
    return out


def _custom_getter(field_id: str, reduce: Optional[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    path = ("fields", field_id)

    def get(record: Any) -> Any:
        value = dig(record, path)
        if value is _MISSING or value is None or reduce is None:
            return value
        return reduce(value)

    return get


def _fields_without_child_pages(record: Any) -> Any:
    fields = record.get("fields")
    if not isinstance(fields, dict):
        return fields
    return {k: v for k, v in fields.items() if k not in CHILD_PAGE_FIELDS}


def issue_converter(fields: Sequence[dict], **kwargs: Any) -> RecordConverter:
    """A converter for search/jql issues given the site's /field list."""
    custom = custom_field_columns(fields)
    json_columns = [
        (C("fields_json", JSON, "fields", "every field as Jira sent it, minus the embedded child pages"),
         _fields_without_child_pages),
        (C("comments_json", JSON, "fields.comment", "the embedded comment page (may be truncated)"), None),
        (C("worklogs_json", JSON, "fields.worklog", "the embedded worklog page (may be truncated)"), None),
        (C("changelog_json", JSON, "changelog", "the embedded changelog page (may be truncated)"), None),
    ]
    columns = [*STANDARD_COLUMNS, *(c for c, _ in custom), *(c for c, _ in json_columns)]
    getters = {c.name: g for c, g in custom}
    getters.update({c.name: g for c, g in json_columns if g})
    return RecordConverter(columns, getters=getters, keep_raw=False, **kwargs)


__all__ = ["STANDARD_COLUMNS", "custom_field_columns", "issue_converter", "column_name", "to_json_text"]
