"""The small snapshot tables the marts join for readable names, each read at its latest capture. No Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from jira_assets.marts.tables import TS, Source, latest_capture, to_dict

STR = pa.string()
INT = pa.int64()
SPRINT_FIELD_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"
DONE = "done"
IN_PROGRESS = "indeterminate"


@dataclass
class Dimensions:
    """id -> name lookups from the latest capture of each dimension (empty where never materialized)."""

    project_keys: dict = field(default_factory=dict)
    project_names: dict = field(default_factory=dict)
    user_names: dict = field(default_factory=dict)
    status_names: dict = field(default_factory=dict)
    status_categories: dict = field(default_factory=dict)  # status id -> category key
    category_names: dict = field(default_factory=dict)  # category key -> name
    priority_names: dict = field(default_factory=dict)
    resolution_names: dict = field(default_factory=dict)
    issue_type_names: dict = field(default_factory=dict)
    sprints: dict = field(default_factory=dict)  # sprint id -> {name, state, start_date, end_date, ...}
    fields: list = field(default_factory=list)  # /field records rebuilt from issue_fields (for column names)
    projects_known: bool = False  # whether a project roster was captured at all

    @classmethod
    def load(
        cls,
        *,
        projects: Source = None,
        users: Source = None,
        statuses: Source = None,
        status_categories: Source = None,
        priorities: Source = None,
        resolutions: Source = None,
        issue_types: Source = None,
        sprints: Source = None,
        issue_fields: Source = None,
    ) -> "Dimensions":
        p = latest_capture(projects, {"id": STR, "key": STR, "name": STR})
        u = latest_capture(users, {"account_id": STR, "display_name": STR})
        s = latest_capture(statuses, {"id": STR, "name": STR, "status_category_key": STR})
        c = latest_capture(status_categories, {"key": STR, "name": STR})
        pr = latest_capture(priorities, {"id": STR, "name": STR})
        r = latest_capture(resolutions, {"id": STR, "name": STR})
        t = latest_capture(issue_types, {"id": STR, "name": STR})
        sp = latest_capture(sprints, {"id": INT, "name": STR, "state": STR, "start_date": TS, "end_date": TS,
                                      "complete_date": TS})
        f = latest_capture(issue_fields, {"id": STR, "name": STR, "custom": pa.bool_(), "schema_type": STR,
                                          "schema_items": STR, "schema_custom": STR})
        return cls(
            project_keys=to_dict(p, "id", "key"),
            project_names=to_dict(p, "id", "name"),
            user_names=to_dict(u, "account_id", "display_name"),
            status_names=to_dict(s, "id", "name"),
            status_categories=to_dict(s, "id", "status_category_key"),
            category_names=to_dict(c, "key", "name"),
            priority_names=to_dict(pr, "id", "name"),
            resolution_names=to_dict(r, "id", "name"),
            issue_type_names=to_dict(t, "id", "name"),
            sprints={row["id"]: row for row in sp.to_pylist() if row["id"] is not None},
            fields=[_field_record(row) for row in f.to_pylist() if row["id"] is not None],
            projects_known=p.num_rows > 0,
        )

    def sprint_field_ids(self) -> list[str]:
        return [f["id"] for f in self.fields if (f.get("schema") or {}).get("custom") == SPRINT_FIELD_TYPE]


def _field_record(row: dict) -> dict:
    """An issue_fields row back in /field's shape, as `issue_schema.custom_field_columns` expects it."""
    schema = {"type": row["schema_type"], "items": row["schema_items"], "custom": row["schema_custom"]}
    return {"id": row["id"], "name": row["name"], "custom": bool(row["custom"]),
            "schema": {k: v for k, v in schema.items() if v is not None}}
