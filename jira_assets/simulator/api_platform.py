"""Platform configuration and people endpoints (/rest/api/2): the snapshot objects of OBJECTS.md."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from .errors import bad_request, jira_error, not_found
from .jira_site import JiraSite
from .paging import array_page, offset_limit, page_bean, read_page_params, start_at_page
from .routes import Request
from .timeutil import parse_jira_datetime
from .world import Project


# --- shared shapes -------------------------------------------------------------------------------

def paged(site: JiraSite, req: Request, values: Sequence[Any], default: int, cap: int,
          params: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Every PageBean route answers through here (cap echoed, lies applied)."""
    page = read_page_params(req.query, default, cap)
    return page_bean(values, page, f"{site.world.api}{req.api_path}", params,
                     lie=site.disruptor.lie_for(req.path))


def snapshot_array(name: str):
    """A route handler answering a bare array (anonymous callers get an empty one)."""
    def handler(site: JiraSite, req: Request) -> list[Any]:
        return [] if req.principal.anonymous else site.snapshot(name)
    handler.__name__ = f"array_{name}"
    return handler


def snapshot_page(name: str, default: int = 50, cap: int = 50):
    """A route handler answering a PageBean of a snapshot object."""
    def handler(site: JiraSite, req: Request) -> dict[str, Any]:
        return paged(site, req, site.snapshot(name), default, cap)
    handler.__name__ = f"page_{name}"
    return handler


def snapshot_keyed(name: str, key: str):
    def handler(site: JiraSite, req: Request) -> dict[str, Any]:
        return {key: site.snapshot(name)}
    handler.__name__ = f"keyed_{name}"
    return handler


def snapshot_object(name: str):
    def handler(site: JiraSite, req: Request) -> dict[str, Any]:
        return site.snapshot(name)[0]
    handler.__name__ = f"object_{name}"
    return handler


def filter_ids(values: list[dict[str, Any]], req: Request, param: str = "id", field: str = "id") -> list[dict[str, Any]]:
    wanted = set(req.csv(param))
    return [v for v in values if str(v.get(field)) in wanted] if wanted else values


# --- handlers ----------------------------------------------------------------------------------------

def myself(site: JiraSite, req: Request) -> dict[str, Any]:
    if "myself" in site.replayed:
        return site.replayed["myself"][0]
    return site.world.myself(req.principal.user, set(req.csv("expand")))


def server_info(site: JiraSite, req: Request) -> dict[str, Any]:
    return site.snapshot("server_info")[0]


def users_search(site: JiraSite, req: Request) -> list[Any]:
    """A bare array paged by startAt/maxResults, with no total: clients stop on a short page (C02)."""
    page = read_page_params(req.query, 50, 1000)
    return array_page(site.snapshot("users"), page, lie=site.disruptor.lie_for(req.path))


def groups_bulk(site: JiraSite, req: Request) -> dict[str, Any]:
    groups = filter_ids(site.snapshot("groups"), req, "groupId", "groupId")
    names = set(req.csv("groupName"))
    if names:
        groups = [g for g in groups if g["name"] in names]
    return paged(site, req, groups, 50, 50)


def audit_records(site: JiraSite, req: Request) -> dict[str, Any]:
    page = read_page_params(req.query, 1000, 1000, start_key="offset", size_key="limit")
    records = site.snapshot("audit_records")
    lower, upper = _instant(req.arg("from"), "from"), _instant(req.arg("to"), "to")
    text = (req.arg("filter") or "").lower()
    selected = []
    for record in records:
        created = parse_jira_datetime(record["created"])
        if lower is not None and created < lower or upper is not None and created > upper:
            continue
        if text and text not in " ".join(str(record.get(k, "")) for k in ("summary", "category")).lower() \
                and text not in str(record.get("objectItem", {}).get("name", "")).lower():
            continue
        selected.append(record)
    return offset_limit(selected, page.start_at, page.max_results, "records", lie=site.disruptor.lie_for(req.path))


def _instant(value: Optional[str], name: str) -> Optional[int]:
    if not value:
        return None
    try:
        return parse_jira_datetime(value)
    except ValueError:
        raise bad_request(f"Invalid '{name}' date: '{value}'. Use an ISO 8601 date-time.") from None


def application_properties(site: JiraSite, req: Request) -> Any:
    records = site.snapshot("jira_settings")
    key = req.arg("key")
    if key:
        match = next((r for r in records if r["key"] == key), None)
        if match is None:
            raise not_found(f"The property '{key}' does not exist.")
        return match
    return records


def label_page(site: JiraSite, req: Request) -> dict[str, Any]:
    return paged(site, req, site.snapshot("labels"), 1000, 1000)


def permissions(site: JiraSite, req: Request) -> dict[str, Any]:
    return {"permissions": site.snapshot("permission_definitions")}


def my_permissions(site: JiraSite, req: Request) -> dict[str, Any]:
    keys = req.csv("permissions")
    if not keys:
        raise bad_request("The permissions query parameter is required. Use it to specify the permissions to check.")
    known = site.snapshot("permission_definitions")
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise bad_request(f"Invalid permission keys: {', '.join(unknown)}")
    return {"permissions": site.world.my_permissions(req.principal.user, known, keys)}


def project_search(site: JiraSite, req: Request) -> dict[str, Any]:
    if req.principal.anonymous:  # Jira falls back to anonymous: a valid, empty page
        return paged(site, req, [], 50, 100)
    projects = site.project_records(set(req.csv("expand")), req.zone) if "projects" not in site.replayed \
        else site.snapshot("projects")
    query = (req.arg("query") or "").lower()
    if query:
        projects = [p for p in projects if query in p["key"].lower() or query in p.get("name", "").lower()]
    if req.arg("typeKey"):
        projects = [p for p in projects if p.get("projectTypeKey") in req.csv("typeKey")]
    if req.arg("categoryId"):
        projects = [p for p in projects if p.get("projectCategory", {}).get("id") == req.arg("categoryId")]
    order = req.arg("orderBy") or "key"
    field = order.lstrip("+-")
    sort_keys = {"key": lambda p: p["key"], "name": lambda p: p.get("name", ""), "id": lambda p: int(p["id"]),
                 "category": lambda p: p.get("projectCategory", {}).get("name", "")}
    if field not in sort_keys:
        raise bad_request(f"Invalid orderBy value: '{order}'.")
    projects = sorted(projects, key=sort_keys[field], reverse=order.startswith("-"))
    return paged(site, req, projects, 50, 100)


def _project(site: JiraSite, id_or_key: str) -> Project:
    project = site.world.projects_by_id.get(id_or_key) or site.world.projects_by_key.get(id_or_key.upper())
    if project is None:
        raise not_found(f"No project could be found with key '{id_or_key}'.")
    return project


def project_get(site: JiraSite, req: Request) -> dict[str, Any]:
    project = _project(site, req.params["projectIdOrKey"])
    return next(p for p in site.project_records(set(req.csv("expand")) | {"description", "lead", "issueTypes"}, req.zone)
                if p["id"] == project.id)


def _versions(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    if "project_versions" in site.replayed:
        return site.snapshot("project_versions")
    return site.versions_of(_project(site, req.params["projectIdOrKey"]).index)


def project_versions_page(site: JiraSite, req: Request) -> dict[str, Any]:
    versions = _versions(site, req)
    statuses = set(req.csv("status"))
    if statuses:
        versions = [v for v in versions if ("archived" if v.get("archived") else "released" if v.get("released")
                                            else "unreleased") in statuses]
    query = (req.arg("query") or "").lower()
    if query:
        versions = [v for v in versions if query in v.get("name", "").lower() or query in v.get("description", "").lower()]
    return paged(site, req, versions, 50, 50)


def project_versions_array(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    return _versions(site, req)


def _components(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    if "project_components" in site.replayed:
        return site.snapshot("project_components")
    return site.components_of(_project(site, req.params["projectIdOrKey"]).index)


def project_components_page(site: JiraSite, req: Request) -> dict[str, Any]:
    return paged(site, req, _components(site, req), 50, 50)


def project_components_array(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k not in ("componentBean", "issueCount")} for c in _components(site, req)]


def issue_types(site: JiraSite, req: Request) -> list[Any]:
    return [] if req.principal.anonymous else site.snapshot("issue_types")


def notification_schemes(site: JiraSite, req: Request) -> dict[str, Any]:
    """Only schemes of projects the caller administers: a non-admin sees an empty page, not a 403."""
    schemes = site.snapshot("issue_notification_schemes") if req.principal.is_admin else []
    return paged(site, req, filter_ids(schemes, req), 50, 50)


def workflows_search(site: JiraSite, req: Request) -> dict[str, Any]:
    body = paged(site, req, site.snapshot("workflows"), 50, 50)
    body["statuses"] = site.world.workflow_search_statuses()
    return body


def workflow_search_legacy(site: JiraSite, req: Request) -> dict[str, Any]:
    """The deprecated /workflow/search: `id` is `{name, entityId}`."""
    values = [{"id": {"name": w["name"], "entityId": w["id"]}, "description": w["description"],
               "created": w["created"], "updated": w["updated"]} for w in site.snapshot("workflows")]
    return paged(site, req, values, 50, 50)


def workflow_scheme_projects(site: JiraSite, req: Request) -> dict[str, Any]:
    """`projectId` must be repeated (`projectId=1&projectId=2`), 1 to 100 values (C14)."""
    values = req.args("projectId")
    if not values:
        raise bad_request("The projectId parameter is required.")
    for value in values:
        if not value.strip().isdigit():
            raise bad_request(f"The value '{value}' is not a valid project ID. Repeat the parameter for several "
                              "projects: projectId=10000&projectId=10001.")
    if len(values) > 100:
        raise bad_request("The number of project IDs must be between 1 and 100.")
    if "workflow_scheme_project_associations" in site.replayed:
        return {"values": site.snapshot("workflow_scheme_project_associations")}
    return {"values": site.workflow_scheme_associations(values)}


def dashboards(site: JiraSite, req: Request) -> dict[str, Any]:
    page = read_page_params(req.query, 20, 100)
    values = site.snapshot("dashboards")
    body = start_at_page(values, page, "dashboards", lie=site.disruptor.lie_for(req.path))
    if page.start_at > 0:
        body["prev"] = f"{site.world.api}/dashboard?startAt={max(0, page.start_at - page.max_results)}&maxResults={page.max_results}"
    if page.start_at + page.max_results < len(values):
        body["next"] = f"{site.world.api}/dashboard?startAt={page.start_at + page.max_results}&maxResults={page.max_results}"
    return body


def project_types(site: JiraSite, req: Request) -> list[Any]:
    return site.snapshot("project_types")


def project_type(site: JiraSite, req: Request) -> dict[str, Any]:
    match = next((t for t in site.snapshot("project_types") if t["key"] == req.params["projectTypeKey"]), None)
    if match is None:
        raise not_found(f"The project type '{req.params['projectTypeKey']}' does not exist.")
    return match


def deprecated_project_list(site: JiraSite, req: Request) -> list[Any]:
    """`GET /project` (removed from the docs in 2019) still answers on Cloud with a bare array."""
    return [] if req.principal.anonymous else site.project_records(set(req.csv("expand")), req.zone)


def time_tracking_providers(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    return site.replayed.get("time_tracking") or [
        {"key": "JIRA", "name": "JIRA provided time tracking", "url": "/secure/admin/TimeTrackingAdmin!default.jspa"}]


def application_roles(site: JiraSite, req: Request) -> list[dict[str, Any]]:
    return site.replayed.get("application_roles") or [
        {"key": "jira-software", "groups": ["jira-software-users-demo", "administrators"], "name": "Jira Software",
         "defaultGroups": ["jira-software-users-demo"], "selectedByDefault": False, "defined": True,
         "numberOfSeats": 100, "remainingSeats": 100 - len(site.world.workers), "userCount": len(site.world.workers),
         "userCountDescription": "users", "hasUnlimitedSeats": False, "platform": False}]


def not_implemented_here(site: JiraSite, req: Request) -> Any:
    raise jira_error(404, "null for uri: " + req.path)
