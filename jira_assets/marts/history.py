"""`issue_field_history`: every value a field of an issue has had, from the complete changelog. No Dagster.

Parity with Fivetran's dbt_jira field history:
- one row per changed item of every changelog history, ordered by (time, history id, item index);
- plus one *initial value* row per (issue, field) at the issue's creation: the `from` of the field's first
  change, or, for a field that never changed, its current value (which then is the value it was created with);
- single-value fields fill `value_id` / `value`; multi-value fields (labels, components, versions, sprints,
  multi-selects: `/field` schema type "array") also fill `value_ids` / `values` with the whole set after the
  change, so both kinds can be queried the same way (Fivetran keeps them in two tables instead).

Each issue's changelog is read from the newest `issue_changelogs` partition that holds it (a partition holds
the complete changelog of every issue in it, so older partitions are superseded copies). Deleted issues are
left out (C10).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Optional

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from jira_assets.marts.dimensions import INT, STR, Dimensions
from jira_assets.marts.issues import DELETED, deletion_states
from jira_assets.marts.tables import (EXTRACTED_AT, PARTITION_COLUMN, TS, VERSION_ORDER, Source,
                                      first_per_key, latest_version_partitions, newest_partitions,
                                      read_located, rows_of_latest_partition)

CHANGELOG_COLUMNS = {
    "issue_id": STR,
    "history_id": STR,
    "item_index": INT,
    "author_account_id": STR,
    "created": TS,
    "field": STR,
    "field_id": STR,
    "field_type": STR,
    "from_value": STR,
    "from_string": STR,
    "to_value": STR,
    "to_string": STR,
}

# Fields Jira computes or that are not values someone set: no initial-value row when they never changed.
NOT_TRACKED = frozenset(
    {
        "created",
        "updated",
        "lastViewed",
        "statuscategorychangedate",
        "resolutiondate",
        "watches",
        "votes",
        "progress",
        "aggregateprogress",
        "aggregatetimespent",
        "aggregatetimeestimate",
        "aggregatetimeoriginalestimate",
        "timespent",
        "timeestimate",
        "timetracking",
        "workratio",
        "issuelinks",
        "subtasks",
        "attachment",
        "comment",
        "worklog",
        "thumbnail",
        "creator",
        "issuerestriction",
        "statusCategory",
    }
)
# Multi-value fields whose changelog has one item per added (`to`) or removed (`from`) value.
ADD_REMOVE_FIELDS = frozenset({"components", "fixVersions", "versions"})
ADD_REMOVE_ITEMS = frozenset({"component", "version"})
MULTI_SYSTEM_FIELDS = frozenset({"labels"}) | ADD_REMOVE_FIELDS

FIELD_HISTORY_SCHEMA = pa.schema(
    [
        pa.field("issue_id", INT),
        pa.field("issue_key", STR),
        pa.field("field_id", STR),
        pa.field("field_name", STR),
        pa.field("is_multi_value", pa.bool_()),
        pa.field(
            "is_initial_value", pa.bool_(), metadata={"description": "the value the issue was created with"}
        ),
        pa.field(
            "changed_at",
            TS,
            metadata={"description": "when the value was set (issue creation for initial values)"},
        ),
        pa.field(
            "valid_until",
            TS,
            metadata={"description": "when the next value replaced it (null: still current)"},
        ),
        pa.field("is_current", pa.bool_()),
        pa.field("history_id", STR),
        pa.field("item_index", INT),
        pa.field("author_account_id", STR),
        pa.field(
            "value_id",
            STR,
            metadata={"description": "Jira's id of the value (`to`), e.g. a status or account id"},
        ),
        pa.field("value", STR, metadata={"description": "the value as Jira displays it (`toString`)"}),
        pa.field(
            "value_ids", pa.list_(STR), metadata={"description": "multi-value fields: ids of the whole set"}
        ),
        pa.field(
            "values",
            pa.list_(STR),
            metadata={"description": "multi-value fields: the whole set, as displayed"},
        ),
    ]
)

FIELD_HISTORY_LINEAGE = {
    "issue_id": [("raw", "issue_changelogs", "issue_id"), ("raw", "issues", "id")],
    "issue_key": [("raw", "issues", "key")],
    "field_id": [("raw", "issue_changelogs", "field_id"), ("raw", "issues", "fields_json")],
    "field_name": [("raw", "issue_changelogs", "field"), ("raw", "issue_fields", "name")],
    "is_multi_value": [("raw", "issue_fields", "schema_type")],
    "changed_at": [("raw", "issue_changelogs", "created"), ("raw", "issues", "created")],
    "valid_until": [("raw", "issue_changelogs", "created")],
    "history_id": [("raw", "issue_changelogs", "history_id")],
    "item_index": [("raw", "issue_changelogs", "item_index")],
    "author_account_id": [("raw", "issue_changelogs", "author_account_id")],
    "value_id": [("raw", "issue_changelogs", "to_value"), ("raw", "issue_changelogs", "from_value"),
                 ("raw", "issues", "fields_json")],
    "value": [("raw", "issue_changelogs", "to_string"), ("raw", "issue_changelogs", "from_string"),
              ("raw", "issues", "fields_json")],
}
FIELD_HISTORY_LINEAGE["value_ids"] = FIELD_HISTORY_LINEAGE["value_id"]
FIELD_HISTORY_LINEAGE["values"] = FIELD_HISTORY_LINEAGE["value"]


CHUNK_ISSUES = 2000  # issues whose history is built (and held) at a time
# the changelog items that move an issue between statuses
STATUS_ITEMS = (ds.field("field_id") == "status") | (ds.field("field") == "status")


def changelog_items(changelogs: Source, where: Optional[ds.Expression] = None) -> pa.Table:
    """Every changelog item once (from each issue's newest partition), in order; `where` filters the rows."""
    return _ordered(rows_of_latest_partition(changelogs, "issue_id", CHANGELOG_COLUMNS, where))


def _ordered(items: pa.Table) -> pa.Table:
    """Changelog rows with integer issue ids, by issue, time, history id (as a number), item index."""
    items = items.set_column(0, "issue_id", items.column("issue_id").cast(INT))
    history_number = pa.array([_number(h) for h in items.column("history_id").to_pylist()], type=INT)
    order = ["issue_id", "created", "_history_number", "item_index"]
    return items.append_column("_history_number", history_number).sort_by([(c, "ascending") for c in order])


def _number(value: Optional[str]) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FieldKinds:
    """Names and multi-value kinds of fields, from /field (issue_fields) with sensible defaults."""

    def __init__(self, dims: Dimensions) -> None:
        self.by_id = {f["id"]: f for f in dims.fields}
        self.id_by_name = {f["name"]: f["id"] for f in dims.fields if f.get("name")}

    def field_id(self, field_id: Optional[str], name: Optional[str]) -> str:
        return field_id or self.id_by_name.get(name or "") or name or "?"

    def name(self, field_id: str, fallback: Optional[str] = None) -> Optional[str]:
        return (self.by_id.get(field_id) or {}).get("name") or fallback or field_id

    def schema(self, field_id: str) -> dict:
        return (self.by_id.get(field_id) or {}).get("schema") or {}

    def is_multi(self, field_id: str) -> bool:
        return self.schema(field_id).get("type") == "array" or field_id in MULTI_SYSTEM_FIELDS

    def is_add_remove(self, field_id: str) -> bool:
        return field_id in ADD_REMOVE_FIELDS or self.schema(field_id).get("items") in ADD_REMOVE_ITEMS

    def is_space_separated(self, field_id: str) -> bool:
        """Labels (system or custom) are listed space-separated in the changelog; other sets with commas."""
        return field_id == "labels" or str(self.schema(field_id).get("custom", "")).endswith(":labels")


ISSUE_COLUMNS = {"id": INT, "key": STR, "created": TS, "fields_json": pa.large_string(), "updated": TS,
                 EXTRACTED_AT: TS}


def field_history_batches(changelogs: Source, issues: Source, dims: Dimensions, deleted: Source = None,
                          chunk_size: int = CHUNK_ISSUES) -> Iterator[pa.RecordBatch]:
    """The history, `chunk_size` issues at a time, so memory holds one chunk of issues, not the whole table.

    Issues are taken in the order of the partition holding their newest version, so a chunk reads few files:
    the issue rows (for creation time and current values) and the changelog rows of the same issues."""
    kinds = FieldKinds(dims)
    states = deletion_states(deleted)
    issues_at = latest_version_partitions(issues, "id", INT, "updated")
    changes_at = newest_partitions(changelogs, "issue_id", STR)
    issue_dates = _dates(issues_at, "id")
    change_dates = {int(i): d for i, d in _dates(changes_at, "issue_id").items()}
    order = sorted((i for i in set(issue_dates) | set(change_dates) if states.get(i) != DELETED),
                   key=lambda i: (issue_dates.get(i) or change_dates.get(i) or "", i))
    for start in range(0, len(order), chunk_size):
        chunk = order[start:start + chunk_size]
        located = issues_at.filter(pc.is_in(issues_at.column("id"), pa.array(chunk, INT)))
        stored = first_per_key(read_located(issues, located, "id", ISSUE_COLUMNS), ["id"],
                               [("updated", "descending"), *VERSION_ORDER])
        in_chunk = pa.array([str(i) for i in chunk])
        located = changes_at.filter(pc.is_in(changes_at.column("issue_id"), in_chunk))
        items = _ordered(read_located(changelogs, located, "issue_id", CHANGELOG_COLUMNS))
        issue_rows = {r["id"]: r for r in stored.to_pylist()}
        changes: dict[int, list[dict]] = {}
        for item in items.to_pylist():
            changes.setdefault(item["issue_id"], []).append(item)
        rows = [row for issue_id in sorted(chunk) for row in
                _issue_history(issue_id, issue_rows.get(issue_id), changes.get(issue_id, []), kinds)]
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=FIELD_HISTORY_SCHEMA)


def _dates(located: pa.Table, key: str) -> dict:
    return dict(zip(located.column(key).to_pylist(), located.column(PARTITION_COLUMN).to_pylist()))


def issue_field_history(changelogs: Source, issues: Source, dims: Dimensions, deleted: Source = None,
                        chunk_size: int = CHUNK_ISSUES) -> pa.Table:
    batches = list(field_history_batches(changelogs, issues, dims, deleted, chunk_size))
    return pa.Table.from_batches(batches, schema=FIELD_HISTORY_SCHEMA)


def _issue_history(
    issue_id: int, issue: Optional[dict], changes: list[dict], kinds: FieldKinds
) -> list[dict]:
    issue_key = (issue or {}).get("key")
    changes = [c for c in changes if c["created"] is not None]  # a change Jira gave no time cannot be placed
    created = (issue or {}).get("created") or (changes[0]["created"] if changes else None)
    current = _fields(issue)
    by_field: dict[str, list[dict]] = {}
    for change in changes:
        by_field.setdefault(kinds.field_id(change["field_id"], change["field"]), []).append(change)
    rows = []
    for field_id, field_changes in by_field.items():
        rows.extend(
            _changed_field(
                issue_id, issue_key, created, field_id, field_changes, current.get(field_id), kinds
            )
        )
    for field_id in sorted(set(current) - set(by_field) - NOT_TRACKED):
        value = describe_value(current[field_id], kinds.is_space_separated(field_id))
        if value is None or created is None:
            continue
        rows.append(
            _row(
                issue_id,
                issue_key,
                field_id,
                kinds.name(field_id),
                kinds.is_multi(field_id),
                created,
                None,
                value,
                initial=True,
            )
        )
    return rows


def _fields(issue: Optional[dict]) -> dict:
    text = (issue or {}).get("fields_json")
    if not text:
        return {}
    fields = orjson.loads(text)
    return fields if isinstance(fields, dict) else {}


def _changed_field(issue_id: int, issue_key: Optional[str], created: Any, field_id: str, changes: list[dict],
                   current_value: Any, kinds: FieldKinds) -> list[dict]:
    multi = kinds.is_multi(field_id)
    name = kinds.name(field_id, changes[0]["field"])
    if multi and kinds.is_add_remove(field_id):
        values = _add_remove_sets(changes, current_value)
    else:
        spaces = kinds.is_space_separated(field_id)
        first = changes[0]
        values = [_from_strings(first["from_value"], first["from_string"], multi, spaces)]
        values += [_from_strings(c["to_value"], c["to_string"], multi, spaces) for c in changes]
    first = changes[0]
    initial_at = created if created is not None and created <= first["created"] else first["created"]
    rows = [_row(issue_id, issue_key, field_id, name, multi, initial_at, None, values[0], initial=True)]
    rows += [_row(issue_id, issue_key, field_id, name, multi, c["created"], c, v, initial=False)
             for c, v in zip(changes, values[1:])]
    for row, following in zip(rows, rows[1:]):
        row["valid_until"], row["is_current"] = following["changed_at"], False
    return rows


def _row(issue_id: int, issue_key: Optional[str], field_id: str, name: Optional[str], multi: bool, at: Any,
         change: Optional[dict], value: tuple, initial: bool) -> dict:
    value_id, text, ids, texts = value
    return {
        "issue_id": issue_id, "issue_key": issue_key, "field_id": field_id, "field_name": name,
        "is_multi_value": multi, "is_initial_value": initial, "changed_at": at, "valid_until": None,
        "is_current": True, "history_id": change["history_id"] if change else None,
        "item_index": change["item_index"] if change else None,
        "author_account_id": change["author_account_id"] if change else None,
        "value_id": value_id, "value": text,
        "value_ids": ids if multi else None, "values": texts if multi else None,
    }


def _split(text: Optional[str], spaces: bool) -> list[str]:
    if not text:
        return []
    parts = text.split() if spaces else re.split(r"\s*,\s*", text.strip().strip("[]"))
    return [p for p in parts if p]


def _from_strings(value_id: Optional[str], text: Optional[str], multi: bool, spaces: bool) -> tuple:
    if not multi:
        return value_id, text, None, None
    ids = _split(value_id, False) or None
    return value_id, text, ids, _split(text, spaces)


def _add_remove_sets(changes: list[dict], current_value: Any) -> list[tuple]:
    """Components/versions: one item per added (`to`) or removed (`from`) value. The set at creation is the
    current set with every later addition taken out and every removal put back; then replay forwards."""
    current = [(i, n) for i, n in zip(*_ids_and_names(current_value))]
    state = list(current)
    for c in reversed(changes):
        if c["to_value"] is not None:
            state = [p for p in state if p[0] != c["to_value"]]
        if c["from_value"] is not None and all(p[0] != c["from_value"] for p in state):
            state.append((c["from_value"], c["from_string"]))
    sets = [list(state)]
    for c in changes:
        if c["from_value"] is not None:
            state = [p for p in state if p[0] != c["from_value"]]
        if c["to_value"] is not None and all(p[0] != c["to_value"] for p in state):
            state.append((c["to_value"], c["to_string"]))
        sets.append(list(state))
    result = []
    for index, members in enumerate(sets):
        change = changes[index - 1] if index else changes[0]
        value_id, text = ((change["to_value"], change["to_string"]) if index
                          else (change["from_value"], change["from_string"]))
        result.append((value_id, text, [m[0] for m in members], [m[1] for m in members]))
    return result


def _ids_and_names(value: Any) -> tuple[list, list]:
    items = value if isinstance(value, list) else ([] if value is None else [value])
    ids, names = [], []
    for item in items:
        value_id, name = _scalar(item)
        ids.append(value_id)
        names.append(name)
    return ids, names


def _scalar(value: Any) -> tuple[Optional[str], Optional[str]]:
    """(id, display text) of one Jira field value: users, named objects, options, or plain values."""
    if isinstance(value, dict):
        value_id = value.get("accountId") or value.get("id") or value.get("key")
        name = value.get("displayName") or value.get("name") or value.get("value") or value.get("key")
        if isinstance(value.get("child"), dict):  # cascading select: "parent - child" (Jira's display form)
            name = f"{name} - {value['child'].get('value')}"
        return (None if value_id is None else str(value_id)), (None if name is None else str(name))
    if isinstance(value, bool):
        return None, "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return None, str(int(value))  # the changelog shows story points 5.0 as "5"
    if isinstance(value, (int, float, str)):
        return None, str(value)
    return None, orjson.dumps(value).decode()


def describe_value(value: Any, spaces: bool = False) -> Optional[tuple]:
    """A current field value as (value_id, value, value_ids, values); None for an empty value."""
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, list):
        ids, names = _ids_and_names(value)
        known_ids = [i for i in ids if i is not None]
        texts = [n for n in names if n is not None]
        return (", ".join(known_ids) or None, (" " if spaces else ", ").join(texts), known_ids or None, texts)
    value_id, text = _scalar(value)
    return value_id, text, None, None
