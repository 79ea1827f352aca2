"""Ground truth: exactly what exists on the simulated site, as the demo admin sees it.

Tests compare an extraction against this. Records are returned in the shape their endpoint sends them
(v2), as fresh copies, so callers may modify them freely.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Union

import numpy as np
import orjson

from .clock import to_epoch_ms
from .issues import select_fields
from .jira_site import JiraSite

Instant = Union[int, float, str, datetime, None]

#: names served by `records` besides the snapshot objects
CHILD_OBJECTS = ("issues", "issue_comments", "issue_changelogs", "issue_worklogs", "worklog_deletions")
#: primary key of each object (a tuple means a composite key)
PRIMARY_KEYS: dict[str, Any] = {
    "audit_records": "id", "groups": "groupId", "issues": "id", "issue_events": "id", "issue_fields": "id",
    "issue_field_configurations": "id", "issue_link_types": "id", "issue_notification_schemes": "id",
    "issue_priorities": "id", "issue_resolutions": "id", "issue_security_schemes": "id", "issue_types": "id",
    "issue_type_schemes": "id", "issue_type_screen_schemes": "id", "jira_settings": "id",
    "jira_settings_advanced": "id", "jira_settings_global": None, "labels": "label", "myself": "accountId",
    "permissions": "key", "projects": "id", "project_categories": "id", "project_types": "key", "server_info": None,
    "users": "accountId", "workflows": "id", "workflow_schemes": "id",
    "workflow_scheme_project_associations": ("projectIds", "workflowScheme.id"), "workflow_statuses": "id",
    "workflow_status_categories": "id", "issue_comments": "id", "issue_changelogs": ("issueId", "id"),
    "issue_worklogs": "id", "worklog_deletions": "worklogId", "boards": "id", "sprints": "id",
    "project_versions": "id", "project_components": "id", "dashboards": "id",
}
_HIDDEN = {"permission_definitions"}


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


class GroundTruth:
    def __init__(self, site: JiraSite):
        self.site = site

    def names(self) -> list[str]:
        """Every object name `records` accepts (the catalog's asset names)."""
        return sorted({n for n in self.site.snapshot_names() if n not in _HIDDEN} | set(CHILD_OBJECTS))

    def records(self, name: str) -> list[Any]:
        """Records of one object as the endpoint sends them (labels are bare strings, permissions are the
        `/mypermissions` entries); comments and changelog histories carry an added `issueId`."""
        if name == "issues":
            return self.issues()
        if name == "issue_comments":
            return [{**c, "issueId": str(issue_id)} for issue_id in self._live_issue_ids() for c in self.comments(issue_id)]
        if name == "issue_changelogs":
            return [{**h, "issueId": str(issue_id)} for issue_id in self._live_issue_ids() for h in self.changelog(issue_id)]
        if name == "issue_worklogs":
            return self.worklogs()
        if name == "worklog_deletions":
            ids, stamps = self.site.worklog_feed(deleted=True)
            return [{"worklogId": i, "updatedTime": t, "properties": []} for i, t in zip(ids.tolist(), stamps.tolist())]
        if name not in self.site.snapshot_names() or name in _HIDDEN:
            raise KeyError(f"unknown object {name!r}; known: {self.names()}")
        return _copy(self.site.snapshot(name))

    def ids(self, name: str) -> list[Any]:
        """Primary keys of an object's rows, in row order."""
        key = PRIMARY_KEYS.get(name)
        rows = self.records(name)
        if key is None:
            return list(range(len(rows)))
        if name == "labels":
            return list(rows)
        if isinstance(key, tuple):
            return [tuple(_dig(row, k) for k in key) for row in rows]
        return [_dig(row, key) for row in rows]

    # --- issues and children ----------------------------------------------------------------------
    def issues(self, updated_from: Instant = None, updated_to: Instant = None) -> list[dict[str, Any]]:
        """Live issues with every field (as `/search/jql?fields=*all` renders them), updated in [from, to), by id."""
        site = self.site
        if site.replayed_issues is not None:
            return _copy(site.replayed_issues.all_issues())
        store = site.store
        col = store.col
        mask = ~col["deleted"]
        if updated_from is not None:
            mask &= col["updated"] >= to_epoch_ms(updated_from)
        if updated_to is not None:
            mask &= col["updated"] < to_epoch_ms(updated_to)
        selection = select_fields(["*all"], store.catalog, default="*all")
        view = site.admin_view()
        return _copy(site.renderer.issues(np.flatnonzero(mask), selection, view, set()))

    def comments(self, issue: Union[int, str]) -> list[dict[str, Any]]:
        return _copy(self.site.comments(self._idx(issue), self.site.admin_view()))

    def changelog(self, issue: Union[int, str]) -> list[dict[str, Any]]:
        return _copy(self.site.histories(self._idx(issue), self.site.admin_view())[:])

    def worklogs(self) -> list[dict[str, Any]]:
        """Every live worklog, ordered by id."""
        site = self.site
        if "issue_worklogs" in site.replayed:
            return _copy(site.replayed["issue_worklogs"])
        ids, _stamps = site.worklog_feed(deleted=False)
        return _copy(site.worklogs_by_id(sorted(ids.tolist()), site.admin_view()))

    def deleted_worklog_ids(self) -> list[int]:
        ids, _stamps = self.site.worklog_feed(deleted=True)
        return sorted(ids.tolist())

    def deleted_issue_ids(self) -> list[int]:
        store = self.site.store
        return sorted(int(store.col["id"][idx]) for idx in store.deleted_at)

    def updated_ms(self) -> dict[int, int]:
        """Issue id -> `updated` in epoch ms, for every live issue."""
        col = self.site.store.col
        live = ~col["deleted"]
        return dict(zip(col["id"][live].tolist(), col["updated"][live].tolist()))

    def _live_issue_ids(self) -> list[int]:
        col = self.site.store.col
        return col["id"][~col["deleted"]].tolist()

    def _idx(self, issue: Union[int, str]) -> int:
        idx = self.site.find_issue(str(issue))
        if idx is None:
            raise KeyError(f"no live issue {issue!r}")
        return idx

    # --- export -----------------------------------------------------------------------------------
    def dump(self, path: str) -> None:
        """Everything as one JSON file: {name: rows}, plus deletions."""
        document = {name: self.records(name) for name in self.names()}
        document["deleted_issue_ids"] = self.deleted_issue_ids()
        document["deleted_worklog_ids"] = self.deleted_worklog_ids()
        with open(path, "wb") as handle:
            handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def _dig(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, list):
        return tuple(value)
    return value
