"""The issues table's columns: typed standard fields, custom fields typed from /field, and lossless JSON.

Custom fields get readable column names (`Story Points` -> `story_points`) and an Arrow type chosen from
the field's `/field` schema; the field id stays in the column description. The embedded comment, worklog
and changelog pages are kept as their own JSON columns so the child tables can complete them without
re-reading every issue's fields. No Dagster import.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Optional, Sequence

from jira_assets.arrow import _MISSING, RecordConverter, path_getter, to_json_text
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
    custom = sorted((f for f in fields if f.get("custom")), key=lambda f: str(f.get("id")))
    # A readable name two custom fields share is given to neither: were it kept by one (say the lower id), a
    # rename elsewhere could hand the column to another field and mix two fields' values in one column.
    shared = {n for n, k in Counter(column_name(f.get("name") or str(f["id"])) for f in custom).items() if k > 1}
    taken |= shared
    out = []
    for field in custom:
        field_id = str(field["id"])
        schema = field.get("schema") or {}
        kind = (schema.get("type"), schema.get("items") if schema.get("type") == "array" else None)
        arrow_type, reduce = _CUSTOM_TYPES.get(kind, (JSON, None))
        if schema.get("custom") == _SPRINT_TYPE:
            arrow_type, reduce = JSON, None
        name = column_name(field.get("name") or field_id)
        if name in taken:  # a name shared or reserved: the id makes it unique and stable
            name = f"{name}_{field_id.rsplit('_', 1)[-1]}"
        taken.add(name)
        column = C(name, arrow_type, f"fields.{field_id}", f"custom field {field_id} ({field.get('name')})")
        out.append((column, _custom_getter(field_id, reduce)))
    return out


def _custom_getter(field_id: str, reduce: Optional[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    dig_field = path_getter(("fields", field_id))

    def get(record: Any) -> Any:
        value = dig_field(record)
        if value is _MISSING or value is None or reduce is None:
            return value
        return reduce(value)

    return get


def _fields_without_child_pages(record: Any) -> Any:
    fields = record.get("fields")
    if not isinstance(fields, dict):
        return fields
    return {k: v for k, v in fields.items() if k not in CHILD_PAGE_FIELDS}


# Standard columns of a masked field that are not text or JSON become text: they hold hex digests.
_MASKED_AS_TEXT = (INT, FLOAT, BOOL, TS, DATE)


def field_of_column(column: Column | str, fields: Sequence[dict] = ()) -> Optional[str]:
    """The Jira field id a typed column is read from (`fields.<id>...`), or None (id, key, totals, JSON)."""
    if isinstance(column, str):
        column = next((c for c in issue_columns(fields) if c.name == column), None)
        if column is None:
            return None
    if column.name.endswith("_json"):
        return None
    path = column.path
    return path[1] if len(path) >= 2 and path[0] == "fields" else None


def issue_columns(fields: Sequence[dict], dropped: frozenset = frozenset()) -> list[Column]:
    """The typed columns, before renames: standard ones always (null when their field is dropped, so the
    table's schema and downstream marts stay stable), custom ones only for fields that are not dropped."""
    custom = [c for c, _ in custom_field_columns(fields) if field_of_column(c) not in dropped]
    return [*STANDARD_COLUMNS, *custom]


def issue_column_names(fields: Sequence[dict], dropped: frozenset = frozenset()) -> list[str]:
    return [c.name for c in issue_columns(fields, dropped)] + list(_JSON_COLUMN_NAMES)


def columns_of_field(field_id: str, fields: Sequence[dict]) -> list[str]:
    """The typed columns read from one field (assignee feeds two, fixVersions none)."""
    return [c.name for c in issue_columns(fields) if field_of_column(c) == field_id]


_JSON_COLUMN_NAMES = ("fields_json", "comments_json", "worklogs_json", "changelog_json")


def issue_converter(
    fields: Sequence[dict],
    *,
    dropped: frozenset = frozenset(),
    masked: frozenset = frozenset(),
    renames: Optional[dict] = None,
    **kwargs: Any,
) -> RecordConverter:
    """A converter for search/jql issues given the site's /field list.

    `dropped` field ids get no custom column (their standard columns stay, null); columns of `masked` field ids
    hold digests, so numeric/date/boolean ones become text; `renames` maps column names to new ones. The records
    themselves must already be filtered and hashed (`jira_assets.scope.FieldPolicy.issue`).
    """
    custom = [(c, g) for c, g in custom_field_columns(fields) if field_of_column(c) not in dropped]
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
    if dropped or masked or renames:
        columns, getters = _apply_field_policy(columns, getters, dropped, masked, renames or {})
    return RecordConverter(columns, getters=getters, keep_raw=False, **kwargs)


def _apply_field_policy(columns: list[Column], getters: dict, dropped: frozenset, masked: frozenset,
                        renames: dict) -> tuple[list[Column], dict]:
    out, out_getters = [], {}
    for column in columns:
        field_id = field_of_column(column)
        new = column
        if field_id in masked:
            type_ = STR if column.type in _MASKED_AS_TEXT else column.type
            new = replace(new, type=type_, description=(new.description or f"from `{new.source}`")
                          + " - masked: salted SHA-256 hex")
        elif field_id in dropped:
            new = replace(new, description=(new.description or f"from `{new.source}`") + " - field excluded: null")
        if column.name in renames:
            new = replace(new, name=renames[column.name],
                          description=(new.description or f"from `{new.source}`") + f" (renamed from {column.name})")
        out.append(new)
        if column.name in getters:
            out_getters[new.name] = getters[column.name]
    return out, out_getters


__all__ = ["STANDARD_COLUMNS", "custom_field_columns", "issue_converter", "column_name", "to_json_text",
           "issue_columns", "issue_column_names", "columns_of_field", "field_of_column"]
