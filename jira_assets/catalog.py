"""The catalog: every Jira object the product delivers, described as data.

One `JiraObject` per table. The asset factory (`jira_assets.defs.raw`) turns each entry into a Dagster
asset and `jira_assets.extract` runs it; adding an object is one entry here plus a test. No Dagster import.

Each entry names its endpoint, how that endpoint pages, the record's primary key, whether the table is a
snapshot (state at capture time) or incremental (a time window that can be backfilled), the OAuth scopes and
Jira permission it needs, the objects it is built from, and its typed columns. Every row also keeps the whole
record as JSON text in `_raw`, so nothing Jira sent is lost even where a typed column cannot hold a value.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Optional

import orjson
import pyarrow as pa

from jira_assets.jira.paging import (
    NextPageUrl,
    OffsetLimit,
    PageBean,
    SinglePage,
    StartAtArray,
    TokenPages,
)

API = "/rest/api/2"
SORTED = orjson.OPT_SORT_KEYS
AGILE = "/rest/agile/1.0"

# Column types. JSON holds values whose JSON type varies between records (C09) or nested objects.
STR = pa.string()
INT = pa.int64()
FLOAT = pa.float64()
BOOL = pa.bool_()
TS = pa.timestamp("ms", tz="UTC")
DATE = pa.date32()
JSON = pa.large_string()  # JSON text; marked in the column description
STR_LIST = pa.list_(pa.string())

READ_WORK = "read:jira-work"
READ_USER = "read:jira-user"
MANAGE_CONFIG = "manage:jira-configuration"
MANAGE_PROJECT = "manage:jira-project"
ADMINISTER = "Administer Jira"


class Mode(enum.Enum):
    SNAPSHOT = "snapshot"  # partitioned by capture date; only today's state can be fetched
    INCREMENTAL = "incremental"  # partitioned by a UTC day of `updated`/`created`; backfillable


@dataclass(frozen=True)
class Column:
    """A typed column: `source` is a dotted path into the record (default: the column name)."""

    name: str
    type: pa.DataType
    source: Optional[str] = None
    description: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple((self.source or self.name).split("."))


def C(name: str, type_: pa.DataType = STR, source: Optional[str] = None, description: str = "") -> Column:
    return Column(name, type_, source, description)


@dataclass(frozen=True)
class JiraObject:
    name: str  # asset name, also the simulator's ground-truth name
    title: str  # AppFlow's name (or ours, for objects beyond AppFlow)
    path: str  # endpoint path under the API root
    paging: Any  # a strategy from jira_assets.jira.paging
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    mode: Mode = Mode.SNAPSHOT
    scopes: tuple[str, ...] = (READ_WORK,)
    permission: Optional[str] = None  # Jira permission needed beyond browsing (admin-only objects)
    params: Mapping[str, Any] = field(default_factory=dict)
    upstream: tuple[str, ...] = ()  # lineage-only edges: objects this one depends on but does not load
    reads: Optional[str] = None  # the upstream object whose stored rows (same partition) this one loads
    extractor: str = "pages"  # how jira_assets.extract runs it (see EXTRACTORS there)
    fan_out: Optional[Mapping[str, Any]] = None  # per-parent endpoints: {"parent": name, "id": column}
    record_transform: Optional[Callable[[Any], Any]] = None  # e.g. wrap bare strings as rows
    description: str = ""
    appflow: bool = True  # one of the 30 objects Amazon AppFlow transfers
    version: str = "1"  # bump when the extraction or columns change (Dagster code_version)

    @property
    def incremental(self) -> bool:
        return self.mode is Mode.INCREMENTAL

    @property
    def admin_only(self) -> bool:
        return self.permission == ADMINISTER

    @property
    def deps(self) -> tuple[str, ...]:
        """Every upstream object, loaded or not: the edges of the asset graph."""
        return self.upstream + ((self.reads,) if self.reads else ())

    @cached_property
    def _key_paths(self) -> tuple[tuple[str, ...], ...]:
        columns = {c.name: c for c in self.columns}
        return tuple(columns[name].path if name in columns else (name,) for name in self.primary_key)

    def record_identity(self, record: Any) -> Any:
        """The primary key of a record as Jira sent it (None when it has none), so that paging can drop a record
        a lying page repeats (C13). A bare value (a label) is its own key; nested values become JSON text."""
        if not isinstance(record, dict):
            return record if isinstance(record, (str, int)) else None
        key = []
        for path in self._key_paths:
            value: Any = record
            for step in path:
                value = value.get(step) if isinstance(value, dict) else None
            if value is None:
                return None
            key.append(value if isinstance(value, (str, int, float)) else orjson.dumps(value, option=SORTED))
        return tuple(key) if key else None


ID_NAME = (C("id"), C("name"), C("description"))
# one-request endpoints answering a bare array or a single object
ARRAY = SinglePage(expect="array")
OBJECT = SinglePage(expect="object")


def _label_row(value: Any) -> dict:
    return {"label": value}


OBJECTS: tuple[JiraObject, ...] = (
    JiraObject(
        "audit_records", "Audit Record", f"{API}/auditing/record", OffsetLimit("records", 1000), ("id",),
        (C("id", INT), C("summary"), C("category"), C("event_source", STR, "eventSource"),
         C("created", TS), C("author_account_id", STR, "authorAccountId"), C("remote_address", STR, "remoteAddress"),
         C("object_item", JSON, "objectItem"), C("changed_values", JSON, "changedValues")),
        mode=Mode.INCREMENTAL, scopes=(MANAGE_CONFIG,), permission=ADMINISTER, extractor="audit_window",
        description="Jira's audit log, one partition per UTC day of `created`.",
    ),
    JiraObject(
        "groups", "Groups", f"{API}/group/bulk", PageBean(50), ("group_id",),
        (C("group_id", STR, "groupId"), C("name")), scopes=(READ_USER,),
        description="User groups (Browse users and groups permission).",
    ),
    JiraObject(
        "issues", "Issue", f"{API}/search/jql", TokenPages("issues", 100, method="POST"), ("id",), (),
        mode=Mode.INCREMENTAL, upstream=("issue_fields",), extractor="issues",
        description="Issues updated in the partition's UTC day, with typed standard and custom fields, the "
        "embedded changelog and the raw `fields` JSON.",
    ),
    JiraObject(
        "issue_events", "Issue Events", f"{API}/events", ARRAY, ("id",),
        (C("id", INT), C("name")), scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "issue_fields", "Issue Fields", f"{API}/field", ARRAY, ("id",),
        (C("id"), C("key"), C("name"), C("custom", BOOL), C("orderable", BOOL), C("navigable", BOOL),
         C("searchable", BOOL), C("schema_type", STR, "schema.type"), C("schema_items", STR, "schema.items"),
         C("schema_custom", STR, "schema.custom"), C("schema_custom_id", INT, "schema.customId"),
         C("clause_names", STR_LIST, "clauseNames")),
    ),
    JiraObject(
        "issue_field_configurations", "Issue Field Configurations", f"{API}/fieldconfiguration", PageBean(50),
        ("id",), (C("id", INT), C("name"), C("description"), C("is_default", BOOL, "isDefault")),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "issue_link_types", "Issue Link Type", f"{API}/issueLinkType", SinglePage("issueLinkTypes"), ("id",),
        (C("id"), C("name"), C("inward"), C("outward")),
    ),
    JiraObject(
        "issue_notification_schemes", "Issue Notification Schemes", f"{API}/notificationscheme",
        PageBean(50), ("id",), (C("id", INT), C("name"), C("description")), scopes=(MANAGE_CONFIG,),
        params={"expand": "all"},
    ),
    JiraObject(
        "issue_priorities", "Issue Priority", f"{API}/priority/search", PageBean(50), ("id",),
        (*ID_NAME, C("status_color", STR, "statusColor"), C("is_default", BOOL, "isDefault")),
    ),
    JiraObject(
        "issue_resolutions", "Issue Resolution", f"{API}/resolution/search", PageBean(50), ("id",),
        (*ID_NAME, C("is_default", BOOL, "isDefault")),
    ),
    JiraObject(
        "issue_security_schemes", "Issue Security Scheme", f"{API}/issuesecurityschemes",
        SinglePage("issueSecuritySchemes"), ("id",),
        (C("id", INT), C("name"), C("description"), C("default_security_level_id", INT, "defaultSecurityLevelId")),
        scopes=(MANAGE_PROJECT,), permission=ADMINISTER,
    ),
    JiraObject(
        "issue_types", "Issue Type", f"{API}/issuetype", ARRAY, ("id",),
        (*ID_NAME, C("subtask", BOOL), C("hierarchy_level", INT, "hierarchyLevel"), C("scope", JSON)),
    ),
    JiraObject(
        "issue_type_schemes", "Issue Type Scheme", f"{API}/issuetypescheme", PageBean(50), ("id",),
        (*ID_NAME, C("default_issue_type_id", STR, "defaultIssueTypeId"), C("is_default", BOOL, "isDefault")),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "issue_type_screen_schemes", "Issue Type Screen Scheme", f"{API}/issuetypescreenscheme", PageBean(50),
        ("id",), ID_NAME, scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "jira_settings", "Jira Settings", f"{API}/application-properties", ARRAY, ("id",),
        (C("id"), C("key"), C("value"), C("name"), C("type"), C("default_value", STR, "defaultValue")),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "jira_settings_advanced", "Jira Settings Advanced", f"{API}/application-properties/advanced-settings",
        ARRAY, ("id",),
        (C("id"), C("key"), C("value"), C("name"), C("type"), C("default_value", STR, "defaultValue")),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "jira_settings_global", "Jira Settings Global", f"{API}/configuration", OBJECT, (),
        (C("voting_enabled", BOOL, "votingEnabled"), C("watching_enabled", BOOL, "watchingEnabled"),
         C("unassigned_issues_allowed", BOOL, "unassignedIssuesAllowed"),
         C("sub_tasks_enabled", BOOL, "subTasksEnabled"), C("issue_linking_enabled", BOOL, "issueLinkingEnabled"),
         C("time_tracking_enabled", BOOL, "timeTrackingEnabled"), C("attachments_enabled", BOOL, "attachmentsEnabled"),
         C("time_tracking_configuration", JSON, "timeTrackingConfiguration")),
        scopes=(READ_USER,),
    ),
    JiraObject(
        "labels", "Label", f"{API}/label", PageBean(1000), ("label",), (C("label"),),
        record_transform=_label_row,
    ),
    JiraObject(
        "myself", "Myself", f"{API}/myself", OBJECT, ("account_id",),
        (C("account_id", STR, "accountId"), C("account_type", STR, "accountType"),
         C("display_name", STR, "displayName"), C("email_address", STR, "emailAddress"),
         C("time_zone", STR, "timeZone"), C("locale"), C("active", BOOL)),
        scopes=(READ_USER,),
    ),
    JiraObject(
        "permissions", "Permission", f"{API}/mypermissions", SinglePage("permissions"), ("key",),
        (C("key"), C("id"), C("name"), C("type"), C("description"), C("have_permission", BOOL, "havePermission")),
        extractor="permissions",
        description="The connecting user's permissions, one row per permission key listed by /permissions.",
    ),
    JiraObject(
        "projects", "Project", f"{API}/project/search", PageBean(100), ("id",),
        (C("id"), C("key"), C("name"), C("project_type_key", STR, "projectTypeKey"), C("simplified", BOOL),
         C("style"), C("is_private", BOOL, "isPrivate"), C("lead_account_id", STR, "lead.accountId"),
         C("category_id", STR, "projectCategory.id"), C("description")),
        params={"expand": "description,lead,issueTypes,url,insight"},
    ),
    JiraObject(
        "project_categories", "Project Category", f"{API}/projectCategory", ARRAY, ("id",), ID_NAME,
    ),
    JiraObject(
        "project_types", "Project Type", f"{API}/project/type", ARRAY, ("key",),
        (C("key"), C("formatted_key", STR, "formattedKey"), C("description_i18n_key", STR, "descriptionI18nKey"),
         C("color")),
    ),
    JiraObject(
        "server_info", "Server Info", f"{API}/serverInfo", OBJECT, (),
        (C("base_url", STR, "baseUrl"), C("version"), C("deployment_type", STR, "deploymentType"),
         C("build_number", INT, "buildNumber"), C("server_time", TS, "serverTime"),
         C("server_time_zone", STR, "serverTimeZone"), C("server_title", STR, "serverTitle")),
        scopes=(),
    ),
    JiraObject(
        "users", "User", f"{API}/users/search", StartAtArray(100), ("account_id",),
        (C("account_id", STR, "accountId"), C("account_type", STR, "accountType"),
         C("display_name", STR, "displayName"), C("email_address", STR, "emailAddress"), C("active", BOOL),
         C("time_zone", STR, "timeZone"), C("locale")),
        scopes=(READ_USER,),
    ),
    JiraObject(
        "workflows", "Workflow", f"{API}/workflows/search", PageBean(50), ("id",),
        (C("id"), C("name"), C("description"), C("is_editable", BOOL, "isEditable"),
         C("scope_type", STR, "scope.type"), C("statuses", JSON), C("transitions", JSON)),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
        params={"expand": "values.transitions"},
    ),
    JiraObject(
        "workflow_schemes", "Workflow Scheme", f"{API}/workflowscheme", PageBean(50), ("id",),
        (C("id", INT), C("name"), C("description"), C("default_workflow", STR, "defaultWorkflow"),
         C("issue_type_mappings", JSON, "issueTypeMappings")),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER,
    ),
    JiraObject(
        "workflow_scheme_project_associations", "Workflow Scheme Project Association",
        f"{API}/workflowscheme/project", SinglePage("values"), ("project_id", "workflow_scheme_id"),
        (C("project_id"), C("workflow_scheme_id", INT), C("workflow_scheme_name", STR),
         C("default_workflow", STR)),
        scopes=(MANAGE_CONFIG,), permission=ADMINISTER, reads="projects", extractor="scheme_associations",
        fan_out={"parent": "projects", "id": "id", "param": "projectId", "chunk": 100},
        description="Which workflow scheme each company-managed project uses (projectId repeated, ≤100 a call).",
    ),
    JiraObject(
        "workflow_statuses", "Workflow Status", f"{API}/status", ARRAY, ("id",),
        (*ID_NAME, C("status_category_id", INT, "statusCategory.id"),
         C("status_category_key", STR, "statusCategory.key")),
    ),
    JiraObject(
        "workflow_status_categories", "Workflow Status Category", f"{API}/statuscategory", ARRAY,
        ("id",), (C("id", INT), C("key"), C("name"), C("color_name", STR, "colorName")),
    ),
    # ---- beyond AppFlow -------------------------------------------------------------------------------
    JiraObject(
        "issue_comments", "Issue comments", f"{API}/issue/{{issue_id}}/comment", None, ("id",),
        (C("id"), C("issue_id"), C("author_account_id", STR, "author.accountId"), C("body"),
         C("created", TS), C("updated", TS), C("visibility", JSON), C("jsd_public", BOOL, "jsdPublic")),
        mode=Mode.INCREMENTAL, reads="issues", extractor="issue_children", appflow=False,
        description="Every comment of the issues in the partition: embedded pages, completed from "
        "/issue/{id}/comment only where Jira truncated them.",
    ),
    JiraObject(
        "issue_changelogs", "Issue changelog", f"{API}/issue/{{issue_id}}/changelog", None,
        ("issue_id", "history_id", "item_index"),
        (C("issue_id"), C("history_id"), C("item_index", INT), C("author_account_id", STR, "author.accountId"),
         C("created", TS), C("field"), C("field_id", STR, "fieldId"), C("field_type", STR, "fieldtype"),
         C("from_value", STR, "from"), C("from_string", STR, "fromString"), C("to_value", STR, "to"),
         C("to_string", STR, "toString")),
        mode=Mode.INCREMENTAL, reads="issues", extractor="issue_children", appflow=False,
        description="One row per changed item of every history entry of the partition's issues (complete).",
    ),
    JiraObject(
        "issue_worklogs", "Issue worklogs", f"{API}/worklog/updated", NextPageUrl("values"), ("id",),
        (C("id"), C("issue_id", STR, "issueId"), C("author_account_id", STR, "author.accountId"),
         C("comment"), C("started", TS), C("created", TS), C("updated", TS),
         C("time_spent_seconds", INT, "timeSpentSeconds"), C("visibility", JSON)),
        mode=Mode.INCREMENTAL, extractor="worklogs", appflow=False,
        description="Worklogs updated in the partition's UTC day (/worklog/updated then POST /worklog/list).",
    ),
    JiraObject(
        "worklog_deletions", "Deleted worklogs", f"{API}/worklog/deleted", NextPageUrl("values"), ("worklog_id",),
        (C("worklog_id", STR, "worklogId"), C("updated_time", TS, "updatedTime")),
        mode=Mode.INCREMENTAL, extractor="worklog_deletions", appflow=False,
        description="Worklogs deleted in the partition's UTC day, so downstream tables can drop them (C10).",
    ),
    JiraObject(
        "boards", "Boards", f"{AGILE}/board", PageBean(50), ("id",),
        (C("id", INT), C("name"), C("type"), C("project_id", INT, "location.projectId"),
         C("project_key", STR, "location.projectKey"), C("is_private", BOOL, "isPrivate")),
        scopes=("read:board-scope:jira-software", "read:project:jira"), appflow=False,
    ),
    JiraObject(
        "sprints", "Sprints", f"{AGILE}/board/{{id}}/sprint", PageBean(50), ("id",),
        (C("id", INT), C("name"), C("state"), C("origin_board_id", INT, "originBoardId"),
         C("start_date", TS, "startDate"), C("end_date", TS, "endDate"), C("complete_date", TS, "completeDate"),
         C("goal"), C("board_ids", pa.list_(pa.int64()))),
        scopes=("read:sprint:jira-software",), reads="boards", extractor="fan_out", appflow=False,
        fan_out={"parent": "boards", "id": "id", "skip_status": 400},
        description="Sprints of every scrum board; a sprint shared by boards is one row listing all its boards.",
    ),
    JiraObject(
        "project_versions", "Project versions", f"{API}/project/{{id}}/version", PageBean(50), ("id",),
        (C("id"), C("name"), C("description"), C("project_id", INT, "projectId"), C("archived", BOOL),
         C("released", BOOL), C("release_date", DATE, "releaseDate"), C("start_date", DATE, "startDate")),
        reads="projects", extractor="fan_out", appflow=False, fan_out={"parent": "projects", "id": "id"},
    ),
    JiraObject(
        "project_components", "Project components", f"{API}/project/{{id}}/component", PageBean(50), ("id",),
        (C("id"), C("name"), C("description"), C("project_id", INT, "projectId"), C("project_key", STR, "project"),
         C("assignee_type", STR, "assigneeType"), C("lead_account_id", STR, "lead.accountId")),
        reads="projects", extractor="fan_out", appflow=False, fan_out={"parent": "projects", "id": "id"},
    ),
)

BY_NAME: dict[str, JiraObject] = {o.name: o for o in OBJECTS}


def get(name: str) -> JiraObject:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no Jira object named {name!r} in the catalog; known: {', '.join(sorted(BY_NAME))}") from None
