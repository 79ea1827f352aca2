"""The seeded site: people, projects and every configuration object, consistent with the issues.

Everything here is small (hundreds of rows), so it is built eagerly as plain JSON-able dicts in Jira's v2
shapes with `self` links on the site host. Issues live in `issues.py` (they can be 200 000).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import text
from .config import SimulatorConfig
from .rand import hex_id, rng, uuid_like
from .timeutil import MS_PER_DAY, jira_datetime, utc_iso, utc_plus0000

AVATAR_BASE = "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net"
PROJECT_KEYS = ("DEMO", "OPS", "WEB", "DATA", "MOB", "API", "SEC", "INFRA", "HR", "FIN", "LEGAL", "SALES")
TEAM_MANAGED_PROJECT = 2  # index of the team-managed ("next-gen") project, when it exists

APP_USERS = (
    ("557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "Automation for Jira"),
    ("557058:0f5b3b6c-7a2f-4c58-9a1f-000000000002", "Tempo Timesheets"),
    ("557058:0f5b3b6c-7a2f-4c58-9a1f-000000000003", "Jira Outlook"),
)
ZONES = (
    "America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Kolkata",
    "Australia/Sydney", "Asia/Tokyo", "America/Sao_Paulo", "UTC", "Pacific/Auckland",
)

# (id, name, hierarchyLevel, subtask, description, icon)
ISSUE_TYPES = (
    ("10000", "Epic", 1, False, "A big user story that needs to be broken down.", "epic.svg"),
    ("10001", "Story", 0, False, "Functionality or a feature expressed as a user goal.", "story.svg"),
    ("10002", "Task", 0, False, "A small, distinct piece of work.", "task.svg"),
    ("10003", "Sub-task", -1, True, "A small piece of work that's part of a larger task.", "subtask.svg"),
    ("10004", "Bug", 0, False, "A problem or error.", "bug.svg"),
)
EPIC, STORY, TASK, SUBTASK, BUG = range(5)

# (id, key, colorName, name)
STATUS_CATEGORIES = (
    (1, "undefined", "medium-gray", "No Category"),
    (2, "new", "blue-gray", "To Do"),
    (4, "indeterminate", "yellow", "In Progress"),
    (3, "done", "green", "Done"),
)
# (id, name, category index into STATUS_CATEGORIES, description)
STATUSES = (
    ("10000", "To Do", 1, ""),
    ("3", "In Progress", 2, "This issue is being actively worked on at the moment by the assignee."),
    ("10001", "In Review", 2, "Waiting for a reviewer."),
    ("10002", "Done", 3, ""),
    ("10003", "Backlog", 1, "Not yet planned."),
)
DONE_STATUS = 3
PRIORITIES = (
    ("1", "Highest", "#d04437", "highest.svg"),
    ("2", "High", "#f15C75", "high.svg"),
    ("3", "Medium", "#f79232", "medium.svg"),
    ("4", "Low", "#707070", "low.svg"),
    ("5", "Lowest", "#999999", "lowest.svg"),
)
DEFAULT_PRIORITY = 2
RESOLUTIONS = (
    ("10000", "Done", "Work has been completed on this issue."),
    ("10001", "Won't Do", "This issue won't be actioned."),
    ("10002", "Duplicate", "The problem is a duplicate of an existing issue."),
    ("10003", "Cannot Reproduce", "All attempts at reproducing this issue failed, or not enough information was available."),
)
LINK_TYPES = (
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
)
LABELS = (
    "backend", "frontend", "customer", "tech-debt", "security", "performance", "ux", "infra", "data",
    "mobile", "regression", "hotfix", "needs-triage", "q3-goal", "docs", "accessibility", "billing",
    "api", "flaky-test", "i18n", "ünïcødé", "日本語", "ops", "release-blocker",
)
GROUP_NAMES = (
    "jira-admins-demo", "site-admins", "jira-software-users-demo", "jira-servicemanagement-users-demo",
    "confluence-users-demo", "administrators", "developers", "qa", "support", "product", "org-admins",
    "trusted-users-demo",
)
ADMIN_GROUPS = ("jira-admins-demo", "site-admins", "administrators", "org-admins")

# Permission keys Jira Cloud reports (a representative, realistic subset), key -> (name, type, description)
PERMISSIONS = {
    "ADMINISTER": ("Administer Jira", "GLOBAL", "Create and administer projects, issue types, fields, workflows, and schemes for all projects. Users with this permission can perform most administration tasks, except: managing users, importing data, and editing system email settings."),
    "SYSTEM_ADMIN": ("Jira System Administrators", "GLOBAL", "Ability to perform all administration functions. There must be at least one group with this permission."),
    "USER_PICKER": ("Browse users and groups", "GLOBAL", "View and select users or groups from the user picker, and share issues. Users with this permission can see the names of all users and groups on your site."),
    "CREATE_SHARED_OBJECTS": ("Share dashboards and filters", "GLOBAL", "Share dashboards and filters with other users."),
    "MANAGE_GROUP_FILTER_SUBSCRIPTIONS": ("Manage group filter subscriptions", "GLOBAL", "Create and delete group filter subscriptions."),
    "BULK_CHANGE": ("Make bulk changes", "GLOBAL", "Modify collections of issues at once. For example, resolve multiple issues in one step."),
    "ADMINISTER_PROJECTS": ("Administer Projects", "PROJECT", "Ability to administer a project in Jira."),
    "BROWSE_PROJECTS": ("Browse Projects", "PROJECT", "Ability to browse projects and the issues within them."),
    "VIEW_DEV_TOOLS": ("View Development Tools", "PROJECT", "Allows users in a software project to view development-related information on the issue, such as commits, reviews and build information."),
    "VIEW_READONLY_WORKFLOW": ("View Read-Only Workflow", "PROJECT", "Users with this permission may view a read-only version of a workflow."),
    "CREATE_ISSUES": ("Create Issues", "PROJECT", "Ability to create issues."),
    "EDIT_ISSUES": ("Edit Issues", "PROJECT", "Ability to edit issues."),
    "TRANSITION_ISSUES": ("Transition Issues", "PROJECT", "Ability to transition issues."),
    "SCHEDULE_ISSUES": ("Schedule Issues", "PROJECT", "Ability to view or edit an issue's due date."),
    "MOVE_ISSUES": ("Move Issues", "PROJECT", "Ability to move issues between projects or between workflows of the same project (if applicable). Note the user can only move issues to a project they have the create permission for."),
    "ASSIGN_ISSUES": ("Assign Issues", "PROJECT", "Ability to assign issues to other people."),
    "ASSIGNABLE_USER": ("Assignable User", "PROJECT", "Users with this permission may be assigned to issues."),
    "RESOLVE_ISSUES": ("Resolve Issues", "PROJECT", "Ability to resolve and reopen issues. This includes the ability to set a fix version."),
    "CLOSE_ISSUES": ("Close Issues", "PROJECT", "Ability to close issues. Often useful where your developers resolve issues, and a QA department closes them."),
    "MODIFY_REPORTER": ("Modify Reporter", "PROJECT", "Ability to modify the reporter when creating or editing an issue."),
    "DELETE_ISSUES": ("Delete Issues", "PROJECT", "Ability to delete issues."),
    "LINK_ISSUES": ("Link Issues", "PROJECT", "Ability to link issues together and create linked issues. Only useful if issue linking is turned on."),
    "SET_ISSUE_SECURITY": ("Set Issue Security", "PROJECT", "Ability to set the level of security on an issue so that only people in that security level can see the issue."),
    "VIEW_VOTERS_AND_WATCHERS": ("View Voters and Watchers", "PROJECT", "Ability to view the voters and watchers of an issue."),
    "MANAGE_WATCHERS": ("Manage Watchers", "PROJECT", "Ability to manage the watchers of an issue."),
    "ADD_COMMENTS": ("Add Comments", "PROJECT", "Ability to comment on issues."),
    "EDIT_ALL_COMMENTS": ("Edit All Comments", "PROJECT", "Ability to edit all comments made on issues."),
    "EDIT_OWN_COMMENTS": ("Edit Own Comments", "PROJECT", "Ability to edit own comments made on issues."),
    "DELETE_ALL_COMMENTS": ("Delete All Comments", "PROJECT", "Ability to delete all comments made on issues."),
    "DELETE_OWN_COMMENTS": ("Delete Own Comments", "PROJECT", "Ability to delete own comments made on issues."),
    "CREATE_ATTACHMENTS": ("Create Attachments", "PROJECT", "Users with this permission may create attachments."),
    "DELETE_ALL_ATTACHMENTS": ("Delete All Attachments", "PROJECT", "Users with this permission may delete all attachments."),
    "DELETE_OWN_ATTACHMENTS": ("Delete Own Attachments", "PROJECT", "Users with this permission may delete own attachments."),
    "WORK_ON_ISSUES": ("Work On Issues", "PROJECT", "Ability to log work done against an issue. Only useful if Time Tracking is turned on."),
    "EDIT_OWN_WORKLOGS": ("Edit Own Worklogs", "PROJECT", "Ability to edit own worklogs made on issues."),
    "EDIT_ALL_WORKLOGS": ("Edit All Worklogs", "PROJECT", "Ability to edit all worklogs made on issues."),
    "DELETE_OWN_WORKLOGS": ("Delete Own Worklogs", "PROJECT", "Ability to delete own worklogs made on issues."),
    "DELETE_ALL_WORKLOGS": ("Delete All Worklogs", "PROJECT", "Ability to delete all worklogs made on issues."),
    "MANAGE_SPRINTS_PERMISSION": ("Manage sprints", "PROJECT", "Ability to manage sprints."),
}
#: global permissions only administrators hold
ADMIN_ONLY_PERMISSIONS = {"ADMINISTER", "SYSTEM_ADMIN", "ADMINISTER_PROJECTS", "BULK_CHANGE", "MANAGE_GROUP_FILTER_SUBSCRIPTIONS", "DELETE_ALL_COMMENTS", "DELETE_ALL_WORKLOGS", "EDIT_ALL_WORKLOGS", "DELETE_ALL_ATTACHMENTS"}

EVENTS = (
    (1, "Issue Created"), (2, "Issue Updated"), (3, "Issue Assigned"), (4, "Issue Resolved"), (5, "Issue Closed"),
    (6, "Issue Commented"), (7, "Issue Reopened"), (8, "Issue Deleted"), (9, "Issue Moved"), (10, "Work Logged On Issue"),
    (11, "Work Started On Issue"), (12, "Work Stopped On Issue"), (13, "Generic Event"), (14, "Issue Comment Edited"),
    (15, "Issue Worklog Updated"), (16, "Issue Worklog Deleted"), (17, "Issue Comment Deleted"),
)


@dataclass
class User:
    index: int
    account_id: str
    display_name: str
    email: Optional[str]
    active: bool
    account_type: str
    time_zone: str
    locale: str
    is_admin: bool
    groups: list[str] = field(default_factory=list)


@dataclass
class Project:
    index: int
    id: str
    key: str
    name: str
    simplified: bool
    category: Optional[int]
    lead: int
    description: str


@dataclass
class Board:
    id: int
    name: str
    type: str
    project: Optional[int]
    #: boards whose filter covers this project show the project's sprints too
    sprint_source: Optional[int] = None


@dataclass
class Sprint:
    id: int
    name: str
    state: str
    origin_board: int
    project: int
    start_ms: Optional[int]
    end_ms: Optional[int]
    complete_ms: Optional[int]
    created_ms: int
    goal: str


class World:
    """Every non-issue object of the site, in the demo admin's view, as v2 JSON dicts."""

    def __init__(self, config: SimulatorConfig, site_url: str, start_ms: int):
        self.config = config
        self.site_url = site_url
        self.api = f"{site_url}/rest/api/2"
        self.agile = f"{site_url}/rest/agile/1.0"
        self.start_ms = start_ms
        self.seed = config.seed
        self._user_refs: dict[int, dict[str, Any]] = {}
        self._build_users()
        self._build_groups()
        self._build_projects()
        self._build_versions_and_components()
        self._build_boards_and_sprints()

    # --- people -----------------------------------------------------------------------------------
    def _build_users(self) -> None:
        cfg = self.config
        users: list[User] = []

        def account_id(i: int) -> str:
            return "5b" + hex_id(self.seed, 101, i, length=22)

        users.append(User(0, account_id(0), "Demo Admin", "admin@example.com", True, "atlassian", cfg.time_zone,
                          "en_US", True))
        users.append(User(1, account_id(1), "Nora Member", "member@example.com", True, "atlassian",
                          cfg.non_admin_time_zone, "de_DE", False))
        users.append(User(2, account_id(2), "Former Employee", None, False, "atlassian", "Europe/London", "en_GB", False))
        for offset, (app_id, name) in enumerate(APP_USERS):
            users.append(User(3 + offset, app_id, name, None, True, "app", "UTC", "en_US", False))
        # a service account (client_credentials grant): an app-type identity that administers the site
        users.append(User(6, "712020:" + uuid_like(self.seed, 103), "Jira sync service account", None, True, "app",
                          "UTC", "en_US", True))
        users.append(User(7, account_id(7), "Customer Portal User", None, True, "customer", "UTC", "en_US", False))
        for i in range(8, cfg.users):
            r = rng(self.seed, 102, i)
            name = text.person_name(r)
            email = None if r.random() < 0.3 else f"{name.lower().replace(' ', '.').replace('ü', 'u')}.{i}@example.com"
            active = r.random() > 0.05
            users.append(User(i, account_id(i), name, email, active, "atlassian", r.choice(ZONES),
                              r.choice(("en_US", "en_GB", "de_DE", "fr_FR", "ja_JP")), False))
        self.users = users
        self.users_by_account = {u.account_id: u for u in users}
        #: people who do work on issues: active, human
        self.workers = [u.index for u in users if u.active and u.account_type == "atlassian"]

    def _build_groups(self) -> None:
        self.groups = [{"name": name, "groupId": uuid_like(self.seed, 201, i)} for i, name in enumerate(GROUP_NAMES)]
        for user in self.users:
            if user.account_type != "atlassian":
                continue
            names = ["jira-software-users-demo", "confluence-users-demo"]
            if user.is_admin:
                names += list(ADMIN_GROUPS)
            elif user.index % 3 == 0:
                names.append("developers")
            elif user.index % 3 == 1:
                names.append("qa")
            user.groups = names

    def avatar_urls(self, user: User) -> dict[str, str]:
        initials = "".join(part[0] for part in user.display_name.split()[:2]).upper()
        base = f"{AVATAR_BASE}/initials/{initials}-{user.index % 6}.png"
        return {size: f"{base}?size={n}&s={n}" for size, n in
                (("48x48", 48), ("24x24", 24), ("16x16", 16), ("32x32", 32))}

    def user_ref(self, index: int) -> dict[str, Any]:
        """A user as embedded in issues, comments and worklogs (shared dict: never mutate it)."""
        ref = self._user_refs.get(index)
        if ref is None:
            user = self.users[index]
            ref = {"self": f"{self.api}/user?accountId={user.account_id}", "accountId": user.account_id}
            if user.email:
                ref["emailAddress"] = user.email
            ref.update({"avatarUrls": self.avatar_urls(user), "displayName": user.display_name,
                        "active": user.active, "timeZone": user.time_zone, "accountType": user.account_type})
            self._user_refs[index] = ref
        return ref

    def user_search_record(self, user: User) -> dict[str, Any]:
        record = {"self": f"{self.api}/user?accountId={user.account_id}", "accountId": user.account_id,
                  "accountType": user.account_type}
        if user.email:
            record["emailAddress"] = user.email
        record.update({"avatarUrls": self.avatar_urls(user), "displayName": user.display_name,
                       "active": user.active, "locale": user.locale})
        return record

    def myself(self, user: User, expand: set[str]) -> dict[str, Any]:
        record = self.user_search_record(user)
        record["timeZone"] = user.time_zone
        groups = [g for g in self.groups if g["name"] in user.groups]
        roles = [{"key": "jira-software", "name": "Jira Software"}]
        record["groups"] = {"size": len(groups), "items": [
            {"name": g["name"], "groupId": g["groupId"], "self": f"{self.api}/group?groupId={g['groupId']}"}
            for g in groups] if "groups" in expand else []}
        record["applicationRoles"] = {"size": len(roles), "items": roles if "applicationRoles" in expand else []}
        record["expand"] = "groups,applicationRoles"
        return record

    def group_records(self) -> list[dict[str, Any]]:
        return [dict(g) for g in self.groups]

    # --- projects ---------------------------------------------------------------------------------
    def _build_projects(self) -> None:
        projects = []
        cfg_users = self.config.users
        for i in range(self.config.projects):
            key = PROJECT_KEYS[i] if i < len(PROJECT_KEYS) else f"P{i}"
            simplified = i == TEAM_MANAGED_PROJECT
            projects.append(Project(
                index=i, id=str(10000 + i), key=key, name=f"{key.title()} project" if i else "Demo project",
                simplified=simplified, category=None if i % 3 == 2 else i % 2, lead=0 if i == 0 else min(8 + i, cfg_users - 1),
                description="" if i % 2 else f"The {key} team's work.\nSecond line: ünïcødé ✓"))
        self.projects = projects
        self.projects_by_key = {p.key: p for p in projects}
        self.projects_by_id = {p.id: p for p in projects}
        self.categories = [
            {"self": f"{self.api}/projectCategory/10000", "id": "10000", "name": "Engineering",
             "description": "Product engineering teams"},
            {"self": f"{self.api}/projectCategory/10001", "id": "10001", "name": "Operations",
             "description": "Run the business"},
        ]

    def project_avatar_urls(self, project: Project) -> dict[str, str]:
        base = f"{self.api}/universal_avatar/view/type/project/avatar/{10400 + project.index}"
        return {"48x48": base, "24x24": base + "?size=small", "16x16": base + "?size=xsmall",
                "32x32": base + "?size=medium"}

    def project_ref(self, project: Project) -> dict[str, Any]:
        """A project as embedded in an issue."""
        ref = {"self": f"{self.api}/project/{project.id}", "id": project.id, "key": project.key,
               "name": project.name, "projectTypeKey": "software", "simplified": project.simplified,
               "avatarUrls": self.project_avatar_urls(project)}
        if project.category is not None:
            ref["projectCategory"] = self.categories[project.category]
        return ref

    def project_record(self, project: Project, expand: set[str], insight: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """A project as /project/search returns it, honouring `expand`."""
        record: dict[str, Any] = {"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                                  "self": f"{self.api}/project/{project.id}", "id": project.id,
                                  "key": project.key}
        if "description" in expand:
            record["description"] = project.description
        if "lead" in expand:
            record["lead"] = self.user_ref(project.lead)
        if "issueTypes" in expand:
            record["issueTypes"] = [self.issue_type(t) for t in range(len(ISSUE_TYPES))]
        record["name"] = project.name
        if "url" in expand:
            record["url"] = f"https://{project.key.lower()}.example.com"
        if "projectKeys" in expand:
            record["projectKeys"] = [project.key]
        record["avatarUrls"] = self.project_avatar_urls(project)
        if project.category is not None:
            record["projectCategory"] = self.categories[project.category]
        record["projectTypeKey"] = "software"
        record["simplified"] = project.simplified
        record["style"] = "next-gen" if project.simplified else "classic"
        record["isPrivate"] = False
        record["properties"] = {}
        if project.simplified:
            record["entityId"] = uuid_like(self.seed, 301, project.index)
            record["uuid"] = record["entityId"]
        if "insight" in expand and insight is not None:
            record["insight"] = insight
        return record

    def project_types(self) -> list[dict[str, Any]]:
        return [
            {"key": "business", "formattedKey": "Business", "descriptionI18nKey": "jira.project.type.business.description",
             "icon": "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=", "color": "#FFFFFF"},
            {"key": "software", "formattedKey": "Software", "descriptionI18nKey": "jira.project.type.software.description",
             "icon": "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=", "color": "#AAAAAA"},
            {"key": "service_desk", "formattedKey": "Service Desk", "descriptionI18nKey": "jira.project.type.servicedesk.description",
             "icon": "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=", "color": "#67AB49"},
        ]

    # --- issue metadata ---------------------------------------------------------------------------
    def issue_type(self, index: int) -> dict[str, Any]:
        type_id, name, level, subtask, description, icon = ISSUE_TYPES[index]
        return {"self": f"{self.api}/issuetype/{type_id}", "id": type_id, "description": description,
                "iconUrl": f"{self.site_url}/images/icons/issuetypes/{icon}", "name": name,
                "subtask": subtask, "avatarId": 10300 + index, "hierarchyLevel": level}

    def status_category(self, index: int) -> dict[str, Any]:
        cat_id, key, color, name = STATUS_CATEGORIES[index]
        return {"self": f"{self.api}/statuscategory/{cat_id}", "id": cat_id, "key": key, "colorName": color,
                "name": name}

    def status(self, index: int) -> dict[str, Any]:
        status_id, name, category, description = STATUSES[index]
        return {"self": f"{self.api}/status/{status_id}", "description": description,
                "iconUrl": f"{self.site_url}/", "name": name, "id": status_id,
                "statusCategory": self.status_category(category)}

    def priority(self, index: int, full: bool = False) -> dict[str, Any]:
        prio_id, name, color, icon = PRIORITIES[index]
        record = {"self": f"{self.api}/priority/{prio_id}", "iconUrl": f"{self.site_url}/images/icons/priorities/{icon}",
                  "name": name, "id": prio_id}
        if full:
            record.update({"statusColor": color, "description": f"{name} priority.", "isDefault": index == DEFAULT_PRIORITY})
        return record

    def resolution(self, index: int, full: bool = False) -> dict[str, Any]:
        res_id, name, description = RESOLUTIONS[index]
        record = {"self": f"{self.api}/resolution/{res_id}", "id": res_id, "description": description, "name": name}
        if full:
            record["isDefault"] = False
        return record

    def link_type(self, index: int) -> dict[str, Any]:
        link_id, name, inward, outward = LINK_TYPES[index]
        return {"id": link_id, "name": name, "inward": inward, "outward": outward,
                "self": f"{self.api}/issueLinkType/{link_id}"}

    # --- versions, components, boards, sprints ----------------------------------------------------
    def _build_versions_and_components(self) -> None:
        self.versions: dict[int, list[dict[str, Any]]] = {}
        self.components: dict[int, list[dict[str, Any]]] = {}
        version_id, component_id = 10000, 10000
        for project in self.projects:
            versions = []
            plan = (("0.9", True, True, -60), ("1.0", True, False, -20), ("1.1", True, False, -3),
                    ("2.0", False, False, 25))
            for name, released, archived, day in plan:
                release_ms = self.start_ms + day * MS_PER_DAY
                version = {"self": f"{self.api}/version/{version_id}", "id": str(version_id),
                           "description": f"{project.key} {name}", "name": f"{project.key} {name}",
                           "archived": archived, "released": released,
                           "startDate": jira_date_only(release_ms - 14 * MS_PER_DAY),
                           "releaseDate": jira_date_only(release_ms),
                           "overdue": (not released) and day < 0,
                           "userStartDate": user_date(release_ms - 14 * MS_PER_DAY),
                           "userReleaseDate": user_date(release_ms), "projectId": int(project.id)}
                versions.append(version)
                version_id += 1
            self.versions[project.index] = versions
            components = []
            for name, lead in (("Backend", 0), ("Frontend", 8 + project.index % (len(self.users) - 8)), ("Infrastructure", None)):
                component = {"self": f"{self.api}/component/{component_id}", "id": str(component_id),
                             "name": name, "description": f"{name} of {project.name}"}
                if lead is not None and lead < len(self.users):
                    component["lead"] = self.user_ref(lead)
                    component["assigneeType"] = "COMPONENT_LEAD"
                    component["assignee"] = self.user_ref(lead)
                    component["realAssigneeType"] = "COMPONENT_LEAD"
                    component["realAssignee"] = self.user_ref(lead)
                    component["isAssigneeTypeValid"] = True
                else:
                    component["assigneeType"] = "PROJECT_DEFAULT"
                    component["realAssigneeType"] = "PROJECT_DEFAULT"
                    component["isAssigneeTypeValid"] = False
                component["project"] = project.key
                component["projectId"] = int(project.id)
                components.append(component)
                component_id += 1
            self.components[project.index] = components

    def version_ref(self, version: dict[str, Any]) -> dict[str, Any]:
        keys = ("self", "id", "description", "name", "archived", "released", "releaseDate")
        return {k: version[k] for k in keys if k in version}

    def component_ref(self, component: dict[str, Any]) -> dict[str, Any]:
        return {k: component[k] for k in ("self", "id", "name", "description")}

    def _build_boards_and_sprints(self) -> None:
        boards: list[Board] = []
        sprints: list[Sprint] = []
        next_board, next_sprint = 1, 1
        sprint_days = 14
        for project in self.projects:
            for n in range(max(1, self.config.boards_per_project)):
                if n == 0:
                    kind = "simple" if project.simplified else "scrum"
                    name = f"{project.key} board"
                else:
                    kind, name = "kanban", f"{project.key} Kanban {n}"
                boards.append(Board(next_board, name, kind, project.index))
                if kind == "scrum":
                    origin = next_board
                    # closed sprints cover the data window, then one active and one future sprint
                    window_days = self.config.days + sprint_days
                    count = max(1, window_days // sprint_days)
                    first_start = self.start_ms - count * sprint_days * MS_PER_DAY + 2 * MS_PER_DAY
                    for s in range(count + 2):
                        start = first_start + s * sprint_days * MS_PER_DAY
                        end = start + sprint_days * MS_PER_DAY
                        if end <= self.start_ms:
                            state, complete = "closed", end + 3_600_000
                        elif start <= self.start_ms:
                            state, complete = "active", None
                        else:
                            state, complete = "future", None
                        future = state == "future"
                        sprints.append(Sprint(next_sprint, f"{project.key} Sprint {s + 1}", state, origin,
                                              project.index, None if future else start, None if future else end,
                                              complete, start - 2 * MS_PER_DAY,
                                              "" if s % 3 else f"Ship {project.key} milestone {s + 1}"))
                        next_sprint += 1
                next_board += 1
        # a cross-team scrum board over the first project: it shows the same sprints (one id, two boards)
        boards.append(Board(next_board, f"{self.projects[0].key} cross-team board", "scrum", 0, sprint_source=0))
        self.boards = boards
        self.boards_by_id = {b.id: b for b in boards}
        self.sprints = sprints
        self.sprints_by_project: dict[int, list[Sprint]] = {}
        for sprint in sprints:
            self.sprints_by_project.setdefault(sprint.project, []).append(sprint)

    def board_record(self, board: Board) -> dict[str, Any]:
        record: dict[str, Any] = {"id": board.id, "self": f"{self.agile}/board/{board.id}", "name": board.name,
                                  "type": board.type}
        if board.project is not None:
            project = self.projects[board.project]
            record["location"] = {"projectId": int(project.id), "displayName": f"{project.name} ({project.key})",
                                  "projectName": project.name, "projectKey": project.key,
                                  "projectTypeKey": "software",
                                  "avatarURI": f"/rest/api/2/universal_avatar/view/type/project/avatar/{10400 + project.index}?size=small",
                                  "name": f"{project.name} ({project.key})"}
        record["isPrivate"] = False
        return record

    def sprint_record(self, sprint: Sprint) -> dict[str, Any]:
        record: dict[str, Any] = {"id": sprint.id, "self": f"{self.agile}/sprint/{sprint.id}", "state": sprint.state,
                                  "name": sprint.name}
        if sprint.start_ms is not None:
            record["startDate"] = utc_iso(sprint.start_ms)
            record["endDate"] = utc_iso(sprint.end_ms)
        if sprint.complete_ms is not None:
            record["completeDate"] = utc_iso(sprint.complete_ms)
        record["createdDate"] = utc_iso(sprint.created_ms)
        record["originBoardId"] = sprint.origin_board
        record["goal"] = sprint.goal
        return record

    def sprint_field_value(self, sprint: Sprint) -> dict[str, Any]:
        """The Cloud form of one entry of the Sprint custom field (not the agile SprintBean)."""
        value: dict[str, Any] = {"id": sprint.id, "name": sprint.name, "state": sprint.state,
                                 "boardId": sprint.origin_board, "goal": sprint.goal}
        if sprint.start_ms is not None:
            value["startDate"] = utc_iso(sprint.start_ms)
            value["endDate"] = utc_iso(sprint.end_ms)
        if sprint.complete_ms is not None:
            value["completeDate"] = utc_iso(sprint.complete_ms)
        return value

    def board_sprints(self, board: Board) -> list[Sprint]:
        """Sprints a scrum board shows: closed, then active, then future (AGILE.md §2)."""
        project = board.sprint_source if board.sprint_source is not None else board.project
        order = {"closed": 0, "active": 1, "future": 2}
        return sorted(self.sprints_by_project.get(project, []), key=lambda s: (order[s.state], s.id))

    # --- schemes, settings, audit -----------------------------------------------------------------
    def classic_projects(self) -> list[Project]:
        return [p for p in self.projects if not p.simplified]

    def workflows(self) -> list[dict[str, Any]]:
        """/workflows/search `values` (the replacement of the removed /workflow)."""
        records = []
        names = ["Software Simplified Workflow for Project DEMO", "jira", "Bug workflow"]
        for i, name in enumerate(names):
            used = STATUSES if i != 1 else STATUSES[:4]
            records.append({
                "id": uuid_like(self.seed, 401, i), "name": name,
                "description": "" if i else "Generated by Jira Software version 1001.0.0-SNAPSHOT.",
                "version": {"id": uuid_like(self.seed, 402, i), "versionNumber": 3 + i},
                "scope": {"type": "GLOBAL"}, "isEditable": i != 1,
                "statuses": [{"statusReference": s[0], "deprecated": False, "properties": {},
                              "layout": {"x": 100.0 * n, "y": 0.0}} for n, s in enumerate(used)],
                "transitions": [{"id": str(11 + n * 10), "name": f"Move to {s[1]}", "description": "",
                                 "type": "GLOBAL", "toStatusReference": s[0], "links": [], "actions": [],
                                 "validators": [], "triggers": [], "properties": {}}
                                for n, s in enumerate(used)],
                "created": jira_datetime(self.start_ms - 400 * MS_PER_DAY + i * MS_PER_DAY, "UTC"),
                "updated": jira_datetime(self.start_ms - 40 * MS_PER_DAY + i * MS_PER_DAY, "UTC"),
            })
        return records

    def workflow_search_statuses(self) -> list[dict[str, Any]]:
        cat_names = {1: "UNDEFINED", 2: "TODO", 4: "IN_PROGRESS", 3: "DONE"}
        return [{"id": s[0], "name": s[1], "description": s[3], "scope": {"type": "GLOBAL"},
                 "statusCategory": cat_names[STATUS_CATEGORIES[s[2]][0]], "statusReference": s[0]}
                for s in STATUSES]

    def workflow_schemes(self) -> list[dict[str, Any]]:
        records = [{"id": 10000, "name": "Default Workflow Scheme", "description": "Default Workflow Scheme",
                    "defaultWorkflow": "jira", "issueTypeMappings": {}, "self": f"{self.api}/workflowscheme/10000"}]
        for project in self.classic_projects():
            if project.index == 0:
                continue  # the first project keeps the default scheme (no id in its association)
            scheme_id = 10000 + 10 * (project.index + 1)
            records.append({"id": scheme_id, "name": f"{project.key}: Software Simplified Workflow Scheme",
                            "description": f"Workflows of {project.name}",
                            "defaultWorkflow": "Software Simplified Workflow for Project DEMO",
                            "issueTypeMappings": {"10004": "Bug workflow"},
                            "self": f"{self.api}/workflowscheme/{scheme_id}"})
        return records

    def workflow_scheme_for(self, project: Project) -> Optional[dict[str, Any]]:
        """The scheme of a classic project (None for a team-managed one, which Jira ignores)."""
        if project.simplified:
            return None
        if project.index == 0:
            default = dict(self.workflow_schemes()[0])
            default.pop("id")  # the Default Workflow Scheme has no id in /workflowscheme/project
            default.pop("self")
            return default
        scheme_id = 10000 + 10 * (project.index + 1)
        return next(s for s in self.workflow_schemes() if s["id"] == scheme_id)

    def notification_schemes(self) -> list[dict[str, Any]]:
        records = []
        for i, name in enumerate(("Default Notification Scheme", "Quiet notifications")):
            scheme_id = 10000 + i
            records.append({
                "expand": "notificationSchemeEvents,user,group,projectRole,field,all", "id": scheme_id,
                "self": f"{self.api}/notificationscheme/{scheme_id}", "name": name,
                "description": "" if i == 0 else "Only the assignee is notified",
                "notificationSchemeEvents": [
                    {"event": {"id": event_id, "name": event_name, "description": f"Event published on {event_name.lower()}"},
                     "notifications": [{"id": 100 * event_id + i, "notificationType": "CurrentAssignee"}]
                     + ([] if i else [{"id": 100 * event_id + 9, "notificationType": "Reporter"}])}
                    for event_id, event_name in EVENTS[: (9 if i == 0 else 3)]],
                "scope": {"type": "GLOBAL"},
            })
        return records

    def issue_security_schemes(self) -> list[dict[str, Any]]:
        return [
            {"self": f"{self.api}/issuesecurityschemes/10000", "id": 10000, "name": "Default Issue Security Scheme",
             "description": "Who may see issues marked confidential", "defaultSecurityLevelId": 10021},
            {"self": f"{self.api}/issuesecurityschemes/10001", "id": 10001, "name": "Partner scheme",
             "description": ""},
        ]

    def issue_type_schemes(self) -> list[dict[str, Any]]:
        return [
            {"id": "10000", "name": "Default Issue Type Scheme",
             "description": "Default issue type scheme is the list of global issue types. All newly created issue types will automatically be added to this scheme.",
             "isDefault": True},
            {"id": "10001", "name": "DEMO: Scrum Issue Type Scheme", "description": "", "defaultIssueTypeId": "10001"},
            {"id": "10002", "name": "OPS: Kanban Issue Type Scheme",
             "description": "A collection of issue types suited to use in a kanban style project.",
             "defaultIssueTypeId": "10002"},
        ]

    def issue_type_screen_schemes(self) -> list[dict[str, Any]]:
        return [{"id": "1", "name": "Default Issue Type Screen Scheme", "description": "The default issue type screen scheme"}] + [
            {"id": str(10000 + p.index), "name": f"{p.key}: Scrum Issue Type Screen Scheme", "description": ""}
            for p in self.classic_projects()]

    def field_configurations(self) -> list[dict[str, Any]]:
        return [{"id": 10000, "name": "Default Field Configuration", "description": "The default field configuration",
                 "isDefault": True},
                {"id": 10001, "name": "Bug field configuration", "description": "Environment required for bugs"}]

    def application_properties(self) -> list[dict[str, Any]]:
        def prop(key: str, value: str, name: str, kind: str = "string", default: str = "", desc: Optional[str] = None):
            record = {"id": key, "key": key, "value": value, "name": name}
            if desc:
                record["desc"] = desc
            record.update({"type": kind, "defaultValue": default})
            return record

        return [
            prop("jira.clone.prefix", "CLONE -", "The prefix added to the Summary field of cloned issues", default="CLONE -"),
            prop("jira.date.picker.java.format", "d/MMM/yy", "Date picker Java format", default="d/MMM/yy",
                 desc="This part is only for the Java (server side) generated dates."),
            prop("jira.date.time.picker.java.format", "dd/MMM/yy h:mm a", "Date time picker Java format", default="dd/MMM/yy h:mm a"),
            prop("jira.issue.actions.order", "asc", "Default issue actions order", "enum", "asc"),
            prop("jira.option.allowunassigned", "true", "Allow unassigned issues", "boolean", "false"),
            prop("jira.option.watching", "true", "Watching", "boolean", "true"),
            prop("jira.option.voting", "true", "Voting", "boolean", "true"),
            prop("jira.title", "Demo Jira (simulated)", "Jira title", default="Jira"),
            prop("jira.lf.date.dmy", "dd/MMM/yy", "Day/Month/Year format", default="dd/MMM/yy"),
            prop("jira.timetracking.hours.per.day", "8", "Working hours per day", "number", "8"),
        ]

    def advanced_settings(self) -> list[dict[str, Any]]:
        keys = {"jira.clone.prefix", "jira.date.picker.java.format", "jira.date.time.picker.java.format",
                "jira.issue.actions.order", "jira.title", "jira.lf.date.dmy"}
        return [p for p in self.application_properties() if p["id"] in keys]

    def global_configuration(self) -> dict[str, Any]:
        return {"votingEnabled": True, "watchingEnabled": True, "unassignedIssuesAllowed": True,
                "subTasksEnabled": True, "issueLinkingEnabled": True, "timeTrackingEnabled": True,
                "attachmentsEnabled": True,
                "timeTrackingConfiguration": {"workingHoursPerDay": 8.0, "workingDaysPerWeek": 5.0,
                                              "timeFormat": "pretty", "defaultUnit": "minute"}}

    def server_info(self, now_ms: int) -> dict[str, Any]:
        return {"baseUrl": self.site_url, "displayUrl": self.site_url, "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud", "buildNumber": 100276,
                "buildDate": "2026-10-01T00:00:00.000+0000", "serverTime": jira_datetime(now_ms, self.config.server_time_zone),
                "scmInfo": "57a0ca5b4a0bb0ac5f3fee4764acb1c14e4d7e71", "serverTitle": "Jira",
                "serverTimeZone": self.config.server_time_zone, "defaultLocale": {"locale": "en_US"}}

    def events(self) -> list[dict[str, Any]]:
        return [{"id": event_id, "name": name} for event_id, name in EVENTS]

    def permissions(self) -> dict[str, dict[str, Any]]:
        return {key: {"key": key, "name": name, "type": kind, "description": description}
                for key, (name, kind, description) in PERMISSIONS.items()}

    def my_permissions(self, user: Optional[User], definitions: dict[str, dict[str, Any]],
                       keys: list[str]) -> dict[str, dict[str, Any]]:
        """/mypermissions entries: the /permissions definitions plus `havePermission` for this user."""
        result = {}
        for n, key in enumerate(keys):
            definition = definitions[key]
            if user is None:  # anonymous
                have = False
            elif user.is_admin:
                have = True
            else:
                have = key not in ADMIN_ONLY_PERMISSIONS
            result[key] = {"id": str(n + 1), **definition, "havePermission": have}
        return result

    def dashboards(self) -> list[dict[str, Any]]:
        return [
            {"id": "10000", "isFavourite": False, "name": "Default dashboard", "popularity": 0,
             "self": f"{self.api}/dashboard/10000", "sharePermissions": [{"type": "global"}],
             "view": f"{self.site_url}/jira/dashboards/10000"},
            {"id": "10001", "isFavourite": True, "name": "Team health", "popularity": 3,
             "self": f"{self.api}/dashboard/10001", "owner": self.user_ref(0),
             "sharePermissions": [{"type": "loggedin"}], "view": f"{self.site_url}/jira/dashboards/10001"},
        ]

    def audit_records(self) -> list[dict[str, Any]]:
        """Admin activity over the data window, newest first (as Jira lists them)."""
        records = []
        window = max(1, self.config.days) * MS_PER_DAY
        events = [("user management", "User created", "USER", u.display_name, u.account_id)
                  for u in self.users if u.account_type == "atlassian"]
        events += [("group management", "Group created", "GROUP", g["name"], g["groupId"]) for g in self.groups]
        events += [("projects", "Project created", "PROJECT", p.name, p.id) for p in self.projects]
        events += [("workflows", "Workflow updated", "WORKFLOW", w, w) for w in ("jira", "Bug workflow")]
        events += [("permissions", "Permission scheme updated", "SCHEME", "Default Permission Scheme", "0")] * 3
        for n, (category, summary, type_name, name, object_id) in enumerate(events):
            created = self.start_ms - window + int(window * (n + 0.5) / len(events))
            records.append(self.audit_record(n + 1, created, category, summary, type_name, name, object_id))
        records.reverse()
        return records

    def audit_record(self, record_id: int, created_ms: int, category: str, summary: str, type_name: str,
                     name: str, object_id: str) -> dict[str, Any]:
        return {"id": record_id, "summary": summary, "remoteAddress": "192.0.2.%d" % (record_id % 250 + 1),
                "authorKey": "", "authorAccountId": self.users[0].account_id, "created": utc_plus0000(created_ms),
                "category": category, "eventSource": "", "description": "",
                "objectItem": {"id": object_id, "name": name, "typeName": type_name},
                "changedValues": [], "associatedItems": []}


def jira_date_only(epoch_ms: int) -> str:
    return jira_datetime(epoch_ms, "UTC")[:10]


def user_date(epoch_ms: int) -> str:
    """`6/Jul/10`: the userReleaseDate form."""
    import time as _time

    t = _time.gmtime(epoch_ms // 1000)
    return "%d/%s/%02d" % (t.tm_mday, _time.strftime("%b", t), t.tm_year % 100)
