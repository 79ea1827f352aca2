"""Every route the simulator serves: path, handler, OAuth scopes (FACTS.md §4, AGILE.md §1), admin rule.

Platform paths are relative to /rest/api/2 (also served as /rest/api/3); agile paths to /rest/agile/1.0.
Both forms are reachable on the site host (Basic) and through the gateway /ex/jira/{cloudId} (Bearer).
"""
from __future__ import annotations

from . import api_agile as agile
from . import api_issues as issues
from . import api_platform as platform
from .routes import AGILE, Route, Router

WORK = ("read:jira-work",)
USER = ("read:jira-user",)
CONFIG = ("manage:jira-configuration",)
PROJECT_ADMIN = ("manage:jira-project",)
NONE: tuple[str, ...] = ()


def _routes() -> list[Route]:
    return [
        # people and the caller
        Route("GET", "/myself", platform.myself, USER),
        Route("GET", "/users/search", platform.users_search, USER),
        Route("GET", "/users", platform.users_search, USER),
        Route("GET", "/group/bulk", platform.groups_bulk, USER),
        Route("GET", "/serverInfo", platform.server_info, NONE, anonymous=True),
        Route("GET", "/configuration", platform.snapshot_object("jira_settings_global"), USER),
        Route("GET", "/configuration/timetracking/list", platform.time_tracking_providers, CONFIG, admin=True),
        Route("GET", "/applicationrole", platform.application_roles, CONFIG, admin=True),
        # permissions
        Route("GET", "/permissions", platform.permissions, CONFIG, anonymous=True),
        Route("GET", "/mypermissions", platform.my_permissions, WORK, anonymous=True),
        # issue metadata
        Route("GET", "/field", platform.snapshot_array("issue_fields"), WORK),
        Route("GET", "/issuetype", platform.issue_types, WORK, anonymous=True),
        Route("GET", "/issueLinkType", platform.snapshot_keyed("issue_link_types", "issueLinkTypes"), WORK),
        Route("GET", "/priority", platform.snapshot_array("issue_priorities"), WORK),
        Route("GET", "/priority/search", platform.snapshot_page("issue_priorities"), WORK),
        Route("GET", "/resolution", platform.snapshot_array("issue_resolutions"), WORK),
        Route("GET", "/resolution/search", platform.snapshot_page("issue_resolutions"), WORK),
        Route("GET", "/status", platform.snapshot_array("workflow_statuses"), WORK),
        Route("GET", "/statuscategory", platform.snapshot_array("workflow_status_categories"), WORK),
        Route("GET", "/label", platform.label_page, WORK),
        Route("GET", "/events", platform.snapshot_array("issue_events"), CONFIG, admin=True),
        # configuration (administrators)
        Route("GET", "/fieldconfiguration", platform.snapshot_page("issue_field_configurations"), CONFIG, admin=True),
        Route("GET", "/notificationscheme", platform.notification_schemes, CONFIG),
        Route("GET", "/issuesecurityschemes", platform.snapshot_keyed("issue_security_schemes", "issueSecuritySchemes"),
              PROJECT_ADMIN, admin=True),
        Route("GET", "/issuetypescheme", platform.snapshot_page("issue_type_schemes"), CONFIG, admin=True),
        Route("GET", "/issuetypescreenscheme", platform.snapshot_page("issue_type_screen_schemes"), CONFIG, admin=True),
        Route("GET", "/application-properties", platform.application_properties, CONFIG, admin=True),
        Route("GET", "/application-properties/advanced-settings", platform.snapshot_array("jira_settings_advanced"),
              CONFIG, admin=True),
        Route("GET", "/auditing/record", platform.audit_records, CONFIG, admin=True),
        Route("GET", "/workflows/search", platform.workflows_search, CONFIG, admin=True),
        Route("GET", "/workflow/search", platform.workflow_search_legacy, PROJECT_ADMIN, admin=True),
        Route("GET", "/workflowscheme", platform.snapshot_page("workflow_schemes"), CONFIG, admin=True),
        Route("GET", "/workflowscheme/project", platform.workflow_scheme_projects, CONFIG, admin=True),
        # projects and their children
        Route("GET", "/project/search", platform.project_search, WORK, anonymous=True),
        Route("GET", "/project", platform.deprecated_project_list, WORK, anonymous=True),
        Route("GET", "/project/type", platform.project_types, WORK),
        Route("GET", "/project/type/{projectTypeKey}", platform.project_type, WORK),
        Route("GET", "/project/{projectIdOrKey}", platform.project_get, WORK),
        Route("GET", "/project/{projectIdOrKey}/version", platform.project_versions_page, WORK),
        Route("GET", "/project/{projectIdOrKey}/versions", platform.project_versions_array, WORK),
        Route("GET", "/project/{projectIdOrKey}/component", platform.project_components_page, WORK),
        Route("GET", "/project/{projectIdOrKey}/components", platform.project_components_array, WORK),
        Route("GET", "/projectCategory", platform.snapshot_array("project_categories"), WORK),
        Route("GET", "/dashboard", platform.dashboards, WORK),
        # issues
        Route("GET", "/search/jql", issues.search_jql, WORK, anonymous=True, rich_text=True),
        Route("POST", "/search/jql", issues.search_jql, WORK, anonymous=True, rich_text=True),
        Route("POST", "/search/approximate-count", issues.approximate_count, WORK, anonymous=True),
        Route("GET", "/search", issues.search_removed, WORK, anonymous=True),
        Route("POST", "/search", issues.search_removed, WORK, anonymous=True),
        Route("POST", "/search/id", issues.search_removed, WORK, anonymous=True),
        Route("POST", "/expression/eval", issues.search_removed, WORK, anonymous=True),
        Route("POST", "/issue/bulkfetch", issues.issue_bulkfetch, WORK, anonymous=True, rich_text=True),
        Route("GET", "/issue/{issueIdOrKey}", issues.issue_get, WORK, anonymous=True, rich_text=True),
        Route("GET", "/issue/{issueIdOrKey}/comment", issues.issue_comments, WORK, anonymous=True, rich_text=True),
        Route("GET", "/issue/{issueIdOrKey}/changelog", issues.issue_changelog, WORK, anonymous=True),
        Route("POST", "/issue/{issueIdOrKey}/changelog/list", issues.issue_changelog_list, WORK, anonymous=True),
        Route("POST", "/changelog/bulkfetch", issues.changelog_bulkfetch, WORK),
        Route("GET", "/issue/{issueIdOrKey}/worklog", issues.issue_worklogs, WORK, anonymous=True, rich_text=True),
        Route("GET", "/worklog/updated", issues.worklogs_updated, WORK),
        Route("GET", "/worklog/deleted", issues.worklogs_deleted, WORK),
        Route("POST", "/worklog/list", issues.worklog_list, WORK, rich_text=True),
        # Jira Software
        Route("GET", "/board", agile.boards, ("read:board-scope:jira-software", "read:project:jira"), family=AGILE),
        Route("GET", "/board/{boardId}", agile.board_get, ("read:board-scope:jira-software", "read:issue-details:jira"),
              family=AGILE),
        Route("GET", "/board/{boardId}/sprint", agile.board_sprints, ("read:sprint:jira-software",), family=AGILE),
        Route("GET", "/board/{boardId}/project", agile.board_projects,
              ("read:board-scope.admin:jira-software", "read:project:jira"), family=AGILE),
        Route("GET", "/sprint/{sprintId}", agile.sprint_get, ("read:sprint:jira-software",), family=AGILE),
    ]


ROUTER = Router(_routes())
