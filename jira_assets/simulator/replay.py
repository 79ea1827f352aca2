"""Replay mode: recorded Jira payloads served as the content of their endpoints, paginated like Jira.

Files are matched by name: the recorded set's names (recorded/MANIFEST.md, e.g. `issue_type.json` holds
issue type *schemes*) and the examples' path-derived names (`project_search.json`, `field.json`, ...).
Snapshot objects are replaced by what the files hold. Recorded issues, comments and worklogs are only
served when the site generates no issues (`issues=0`); otherwise generated issues supply the volume and
`/field` keeps describing them.
"""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
import orjson

from .adf import adf_to_text
from .issues import FieldSelection, ViewContext
from .timeutil import parse_jira_datetime
from .world import PRIORITIES, STATUSES, ISSUE_TYPES

PACKAGED = os.path.join(os.path.dirname(__file__), "recorded")

#: file name -> (snapshot name, key holding the records; None = the file is the list or the one object)
FILES: dict[str, tuple[str, Optional[str]]] = {
    # recorded/ (see MANIFEST.md for the quirks these keep on purpose)
    "groups.json": ("groups", "values"),
    "issue_fields.json": ("issue_fields", None),
    "issue_notification_schemas.json": ("issue_notification_schemes", "values"),
    "issue_resolutions.json": ("issue_resolutions", "values"),
    "issue_security_schemes.json": ("issue_security_schemes", "issueSecuritySchemes"),
    "issue_type.json": ("issue_type_schemes", "values"),
    "issues_field_configurations.json": ("issue_field_configurations", "values"),
    "issues_link_types.json": ("issue_link_types", "issueLinkTypes"),
    "jira_settings.json": ("jira_settings", None),
    "labels.json": ("labels", "values"),
    "permissions.json": ("permission_definitions", "permissions"),
    "projects.json": ("projects", "values"),
    "projects_categories.json": ("project_categories", None),
    "workflow_status_categories.json": ("workflow_status_categories", None),
    "workflow_statuses.json": ("workflow_statuses", None),
    "workflow_schemas.json": ("workflow_schemes", "values"),
    "board.json": ("boards", "values"),
    "sprints.json": ("sprints", "values"),
    "projects_versions.json": ("project_versions", "values"),
    "project_components.json": ("project_components", "values"),
    "dashboard.json": ("dashboards", "dashboards"),
    "application_role.json": ("application_roles", None),
    "time_tracking.json": ("time_tracking", None),
    "issue_comments.json": ("issue_comments", "comments"),
    "issue_worklogs.json": ("issue_worklogs", "worklogs"),
    "issues.json": ("issues", "issues"),
    # examples/ (path-derived names)
    "field.json": ("issue_fields", None),
    "group_bulk.json": ("groups", "values"),
    "project_search.json": ("projects", "values"),
    "projectCategory.json": ("project_categories", None),
    "project_type.json": ("project_types", None),
    "priority_search.json": ("issue_priorities", "values"),
    "resolution_search.json": ("issue_resolutions", "values"),
    "issuetype.json": ("issue_types", None),
    "issuetypescheme.json": ("issue_type_schemes", "values"),
    "issuetypescreenscheme.json": ("issue_type_screen_schemes", "values"),
    "issueLinkType.json": ("issue_link_types", "issueLinkTypes"),
    "issuesecurityschemes.json": ("issue_security_schemes", "issueSecuritySchemes"),
    "notificationscheme.json": ("issue_notification_schemes", "values"),
    "fieldconfiguration.json": ("issue_field_configurations", "values"),
    "application-properties.json": ("jira_settings", None),
    "application-properties_advanced-settings.json": ("jira_settings_advanced", None),
    "configuration.json": ("jira_settings_global", None),
    "myself.json": ("myself", None),
    "serverInfo.json": ("server_info", None),
    "events.json": ("issue_events", None),
    "label.json": ("labels", "values"),
    "status.json": ("workflow_statuses", None),
    "statuscategory.json": ("workflow_status_categories", None),
    "users_search.json": ("users", None),
    "workflows_search.json": ("workflows", "values"),
    "workflowscheme.json": ("workflow_schemes", "values"),
    "workflowscheme_project.json": ("workflow_scheme_project_associations", "values"),
    "auditing_record.json": ("audit_records", "records"),
    "search_jql.json": ("issues", "issues"),
    "issue_ISSUE_comment.json": ("issue_comments", "comments"),
    "issue_ISSUE_worklog.json": ("issue_worklogs", "worklogs"),
}
ISSUE_LEVEL = {"issues", "issue_comments", "issue_worklogs"}
#: objects that describe the issues themselves: kept generated while generated issues are served
DESCRIBES_ISSUES = {"issue_fields"}


def resolve_dir(replay_dir: str) -> str:
    if replay_dir in ("recorded", "packaged", "bundled"):
        return PACKAGED
    return replay_dir


def read_folder(folder: str) -> dict[str, Any]:
    """{snapshot name: records} for every known file in the folder."""
    loaded: dict[str, Any] = {}
    for file_name in sorted(os.listdir(folder)):
        target = FILES.get(file_name)
        if target is None:
            continue
        name, key = target
        with open(os.path.join(folder, file_name), "rb") as handle:
            document = orjson.loads(handle.read())
        if key is None:
            records = document if isinstance(document, list) else [document]
        elif isinstance(document, dict) and key in document:
            records = document[key]
        else:
            records = document
        loaded[name] = records
    return loaded


def load_replay(site: Any, replay_dir: str) -> list[str]:
    """Install recorded payloads into the site; returns the snapshot names that are now replayed."""
    loaded = read_folder(resolve_dir(replay_dir))
    issue_level = {name: loaded.pop(name) for name in ISSUE_LEVEL if name in loaded}
    for name in ("issue_comments", "issue_worklogs"):
        for record in issue_level.get(name, []):  # v3 recordings carry ADF; v2 is plain text
            for key in ("body", "comment"):
                if isinstance(record.get(key), dict):
                    record[key] = adf_to_text(record[key])
    if site.config.issues > 0:
        for name in DESCRIBES_ISSUES:
            loaded.pop(name, None)
    site.replayed.update(loaded)
    if site.config.issues == 0:
        site.replayed.update({k: v for k, v in issue_level.items() if k != "issues"})
        if "issues" in issue_level:
            site.replayed_issues = RecordedIssues(issue_level["issues"], site)
    return sorted(site.replayed)


class RecordedIssues:
    """Recorded issues behind the same interface the generated store offers to search and rendering."""

    def __init__(self, issues: list[dict[str, Any]], site: Any):
        self.issues = [dict(issue, fields=dict(issue.get("fields") or {})) for issue in issues]
        for issue in self.issues:
            if isinstance(issue["fields"].get("description"), dict):
                issue["fields"]["description"] = adf_to_text(issue["fields"]["description"])
        projects: dict[str, Any] = {}
        self.labels_vocab: list[str] = []
        columns: dict[str, list[int]] = {k: [] for k in (
            "id", "project", "key_num", "type", "status", "priority", "assignee", "reporter", "created", "updated",
            "resolution", "resolved", "labels", "parent", "salt")}
        users = site.world.users_by_account
        for issue in self.issues:
            fields = issue["fields"]
            project = fields.get("project") or {}
            key = issue.get("key", "X-0")
            project_key = project.get("key") or key.rsplit("-", 1)[0]
            if project_key not in projects:
                projects[project_key] = SimpleNamespace(index=len(projects), key=project_key,
                                                        id=str(project.get("id", "")), name=project.get("name", project_key))
            mask = 0
            for label in fields.get("labels") or []:
                if label not in self.labels_vocab:
                    self.labels_vocab.append(label)
                mask |= 1 << self.labels_vocab.index(label)
            values = {
                "id": int(issue["id"]), "project": projects[project_key].index,
                "key_num": int(key.rsplit("-", 1)[1]) if key.rsplit("-", 1)[-1].isdigit() else 0,
                "type": _index(ISSUE_TYPES, (fields.get("issuetype") or {}).get("name")),
                "status": _index(STATUSES, (fields.get("status") or {}).get("name")),
                "priority": _index(PRIORITIES, (fields.get("priority") or {}).get("name")),
                "assignee": _user(users, fields.get("assignee")), "reporter": _user(users, fields.get("reporter")),
                "created": _ms(fields.get("created")), "updated": _ms(fields.get("updated")),
                "resolution": 0 if fields.get("resolution") else -1, "resolved": _ms(fields.get("resolutiondate")),
                "labels": mask, "parent": -1, "salt": 0,
            }
            for name, value in values.items():
                columns[name].append(value)
        self.col = {name: np.array(values, dtype=np.int64) for name, values in columns.items()}
        self.col["deleted"] = np.zeros(len(self.issues), dtype=bool)
        project_list = list(projects.values())
        self.world = SimpleNamespace(projects=project_list, projects_by_key={p.key: p for p in project_list},
                                     projects_by_id={p.id: p for p in project_list}, users_by_account=users)
        self._by_key = {str(i["id"]): n for n, i in enumerate(self.issues)}
        self._by_key.update({i.get("key", ""): n for n, i in enumerate(self.issues)})

    def find(self, id_or_key: str) -> Optional[int]:
        return self._by_key.get(str(id_or_key).strip())

    def render(self, idx: int, selection: FieldSelection, view: ViewContext, expand: set[str]) -> dict[str, Any]:
        issue = self.issues[idx]
        if selection.ids_only and not selection.want_key:
            return {"id": str(issue["id"])}
        record = {k: v for k, v in issue.items() if k not in ("fields", "changelog")}
        wanted = set(selection.fields)
        record["fields"] = {k: v for k, v in issue["fields"].items() if selection.everything or k in wanted}
        if "changelog" in expand:
            record["changelog"] = issue.get("changelog") or {"startAt": 0, "maxResults": 0, "total": 0, "histories": []}
        return record

    def histories(self, idx: int) -> list[dict[str, Any]]:
        return list((self.issues[idx].get("changelog") or {}).get("histories", []))

    def all_issues(self) -> list[dict[str, Any]]:
        return self.issues


def _index(table: tuple, name: Optional[str]) -> int:
    return next((n for n, row in enumerate(table) if row[1] == name), -1)


def _user(users: dict[str, Any], ref: Optional[dict[str, Any]]) -> int:
    user = users.get((ref or {}).get("accountId", ""))
    return user.index if user else -1


def _ms(value: Optional[str]) -> int:
    if not value:
        return 0
    try:
        return parse_jira_datetime(value)
    except ValueError:
        return 0
