"""Every response shape the simulator serves is Jira's (OBJECTS.md, FACTS.md §4, AGILE.md), with C02, C03, C14."""
from __future__ import annotations

import base64

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig

ADMIN_ONLY = ("/rest/api/2/auditing/record", "/rest/api/2/events", "/rest/api/2/fieldconfiguration",
              "/rest/api/2/issuesecurityschemes", "/rest/api/2/issuetypescheme", "/rest/api/2/issuetypescreenscheme",
              "/rest/api/2/application-properties", "/rest/api/2/application-properties/advanced-settings",
              "/rest/api/2/workflows/search", "/rest/api/2/workflowscheme")


@pytest.fixture(scope="module")
def sim():
    with Simulator(SimulatorConfig(seed=21, issues=150)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def wide():
    """Enough projects for page caps to bite (C03)."""
    with Simulator(SimulatorConfig(seed=22, issues=30, projects=120)) as simulator:
        yield simulator


def get(sim: Simulator, path: str, user: str = "admin", **params) -> requests.Response:
    info = sim.info()
    auth = {"admin": (info["email"], info["api_token"]),
            "member": (info["non_admin"]["email"], info["non_admin"]["api_token"]),
            "wrong": (info["email"], "not-the-token")}[user]
    return requests.get(info["site_url"] + path, params=params, auth=auth, timeout=30)


def test_c02_users_search_is_a_bare_array_paged_without_total(sim):
    users, start = [], 0
    while True:
        page = get(sim, "/rest/api/2/users/search", startAt=start, maxResults=50).json()
        assert isinstance(page, list)
        users += page
        start += len(page)
        if len(page) < 50:
            break
    assert len(users) == 137 == len({u["accountId"] for u in users})
    kinds = {u["accountType"] for u in users}
    assert kinds == {"atlassian", "app", "customer"}
    assert any(not u["active"] for u in users)
    assert [u["accountId"] for u in users] == sim.truth.ids("users")
    assert len(get(sim, "/rest/api/2/users/search", maxResults=5000).json()) == 137  # cap 1000 > 137


def test_c03_page_beans_cap_max_results_and_echo_the_capped_value(wide):
    first = get(wide, "/rest/api/2/project/search", maxResults=1000).json()
    assert first["maxResults"] == 100 and first["total"] == 120 and len(first["values"]) == 100
    assert first["isLast"] is False and "startAt=100" in first["nextPage"]
    rest = get(wide, "/rest/api/2/project/search", startAt=100, maxResults=1000).json()
    assert len(rest["values"]) == 20 and rest["isLast"] is True and "nextPage" not in rest
    ids = [p["id"] for p in first["values"] + rest["values"]]
    assert sorted(ids) == sorted(wide.truth.ids("projects"))
    boards = get(wide, "/rest/agile/1.0/board", maxResults=1000).json()
    assert boards["maxResults"] == 50 and len(boards["values"]) == 50 and boards["total"] > 200
    assert set(boards) == {"maxResults", "startAt", "total", "isLast", "values"}


def test_projects_expand_and_insight_counts_match_the_issues(sim):
    projects = get(sim, "/rest/api/2/project/search", expand="description,lead,issueTypes,url,insight").json()["values"]
    issues = sim.truth.issues()
    for project in projects:
        assert project["insight"]["totalIssueCount"] == sum(1 for i in issues if i["fields"]["project"]["id"] == project["id"])
        assert "lead" in project and "issueTypes" in project
    plain = get(sim, "/rest/api/2/project/search").json()["values"][0]
    assert "lead" not in plain and "insight" not in plain
    styles = {p["key"]: p["style"] for p in projects}
    assert styles["WEB"] == "next-gen" and styles["DEMO"] == "classic"


def test_bare_arrays_keyed_lists_and_single_objects(sim):
    fields = get(sim, "/rest/api/2/field").json()
    by_id = {f["id"]: f for f in fields}
    assert by_id["customfield_10020"]["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint"
    assert {by_id[f"customfield_{n}"]["schema"]["type"] for n in range(10030, 10042)} >= {
        "number", "datetime", "date", "option", "array", "user", "string", "option-with-child"}
    assert "schema" not in by_id["parent"]
    links = get(sim, "/rest/api/2/issueLinkType").json()
    assert list(links) == ["issueLinkTypes"] and links["issueLinkTypes"][0]["inward"]
    config = get(sim, "/rest/api/2/configuration").json()
    assert config["timeTrackingEnabled"] is True and "timeTrackingConfiguration" in config
    server = get(sim, "/rest/api/2/serverInfo").json()
    assert server["deploymentType"] == "Cloud" and server["baseUrl"] == sim.info()["site_url"]
    me = get(sim, "/rest/api/2/myself").json()
    assert me["timeZone"] == "America/Los_Angeles" and me["accountId"] == sim.info()["account_id"]
    categories = get(sim, "/rest/api/2/statuscategory").json()
    assert {c["key"] for c in categories} == {"undefined", "new", "indeterminate", "done"}
    assert all(isinstance(c["id"], int) for c in categories)


def test_permissions_map_and_mypermissions_with_have_permission(sim):
    definitions = get(sim, "/rest/api/2/permissions").json()["permissions"]
    keys = ",".join(definitions)
    admin = get(sim, "/rest/api/2/mypermissions", permissions=keys).json()["permissions"]
    member = get(sim, "/rest/api/2/mypermissions", "member", permissions=keys).json()["permissions"]
    assert set(admin) == set(definitions) and all(p["havePermission"] for p in admin.values())
    assert member["BROWSE_PROJECTS"]["havePermission"] is True and member["ADMINISTER"]["havePermission"] is False
    assert admin["BULK_CHANGE"]["name"] == definitions["BULK_CHANGE"]["name"]
    assert get(sim, "/rest/api/2/mypermissions").status_code == 400
    assert sorted(sim.truth.ids("permissions")) == sorted(definitions)


def test_labels_are_a_page_bean_of_strings_in_use(sim):
    page = get(sim, "/rest/api/2/label").json()
    assert page["maxResults"] == 1000 and all(isinstance(v, str) for v in page["values"])
    used = {label for issue in sim.truth.issues() for label in issue["fields"]["labels"]}
    assert set(page["values"]) == used and page["total"] == len(used)


def test_audit_records_page_by_offset_and_limit_within_from_and_to(sim):
    everything = get(sim, "/rest/api/2/auditing/record", limit=5000).json()
    assert everything["limit"] == 1000 and everything["total"] == len(everything["records"]) > 100
    created = sorted(r["created"] for r in everything["records"])
    lower, upper = created[10], created[30]
    window = get(sim, "/rest/api/2/auditing/record", **{"from": lower, "to": upper, "limit": 7, "offset": 7}).json()
    assert window["total"] == 21 and window["offset"] == 7 and len(window["records"]) == 7
    assert all(lower <= r["created"] <= upper for r in window["records"])


def test_c14_workflow_scheme_associations_want_repeated_project_ids(sim):
    projects = sim.truth.ids("projects")
    joined = get(sim, "/rest/api/2/workflowscheme/project", projectId=",".join(projects))
    assert joined.status_code == 400 and joined.json()["errorMessages"]
    good = get(sim, "/rest/api/2/workflowscheme/project", projectId=projects).json()
    associated = sorted(p for value in good["values"] for p in value["projectIds"])
    assert associated == sorted(p for p in projects if p != "10002")  # the team-managed project is ignored
    default = next(v for v in good["values"] if "10000" in v["projectIds"])
    assert "id" not in default["workflowScheme"]  # the Default Workflow Scheme has no id here
    assert get(sim, "/rest/api/2/workflowscheme/project", projectId=[str(n) for n in range(101)]).status_code == 400
    assert get(sim, "/rest/api/2/workflowscheme/project").status_code == 400


def test_sprints_cap_at_50_order_closed_active_future_and_kanban_boards_refuse(sim):
    boards = get(sim, "/rest/agile/1.0/board").json()["values"]
    kanban = next(b for b in boards if b["type"] == "kanban")
    refused = get(sim, f"/rest/agile/1.0/board/{kanban['id']}/sprint")
    assert refused.status_code == 400
    assert refused.json() == {"errorMessages": ["The board does not support sprints"], "errors": {}}
    scrum = [b for b in boards if b["type"] == "scrum"]
    sprints = get(sim, f"/rest/agile/1.0/board/{scrum[0]['id']}/sprint", maxResults=500).json()
    assert sprints["maxResults"] == 50
    states = [s["state"] for s in sprints["values"]]
    assert states == sorted(states, key=["closed", "active", "future"].index) and "active" in states
    shared = get(sim, f"/rest/agile/1.0/board/{scrum[-1]['id']}/sprint").json()["values"]
    assert {s["id"] for s in shared} == {s["id"] for s in sprints["values"]}  # one sprint, two boards
    assert all(s["originBoardId"] == scrum[0]["id"] for s in shared)
    only_active = get(sim, f"/rest/agile/1.0/board/{scrum[0]['id']}/sprint", state="active").json()["values"]
    assert [s["state"] for s in only_active] == ["active"]


def test_versions_and_components_pages_and_arrays(sim):
    page = get(sim, "/rest/api/2/project/DEMO/version", maxResults=2).json()
    assert page["maxResults"] == 2 and page["total"] == 4 and page["isLast"] is False and page["nextPage"]
    array = get(sim, "/rest/api/2/project/10000/versions").json()
    assert isinstance(array, list) and [v["id"] for v in array][:2] == [v["id"] for v in page["values"]]
    components = get(sim, "/rest/api/2/project/DEMO/component").json()["values"]
    issues = [i for i in sim.truth.issues() if i["fields"]["project"]["key"] == "DEMO"]
    for component in components:
        assert component["issueCount"] == sum(
            1 for i in issues if component["id"] in {c["id"] for c in i["fields"]["components"]})
    assert get(sim, "/rest/api/2/project/NOPE/version").status_code == 404


def test_admin_only_endpoints_answer_403_to_a_member_and_200_to_the_admin(sim):
    for path in ADMIN_ONLY:
        assert get(sim, path).status_code == 200, path
        denied = get(sim, path, "member")
        assert denied.status_code == 403, path
        assert denied.json() == {"errorMessages": [
            "You are not authorized to perform this action. Administrator privileges are required."], "errors": {}}
    member_schemes = get(sim, "/rest/api/2/notificationscheme", "member").json()
    assert member_schemes["total"] == 0 and get(sim, "/rest/api/2/notificationscheme").json()["total"] == 2


def test_bad_basic_credentials_fall_back_to_anonymous_where_jira_does(sim):
    assert get(sim, "/rest/api/2/myself", "wrong").status_code == 401
    projects = get(sim, "/rest/api/2/project/search", "wrong")
    assert projects.status_code == 200 and projects.json()["total"] == 0
    assert get(sim, "/rest/api/2/issuetype", "wrong").json() == []
    search = get(sim, "/rest/api/2/search/jql", "wrong", jql="project = DEMO").json()
    assert search["issues"] == [] and search["isLast"] is True
    key = sim.truth.issues()[0]["key"]
    assert get(sim, f"/rest/api/2/issue/{key}", "wrong").status_code == 404
    assert get(sim, "/rest/api/2/field", "wrong").status_code == 401
    anonymous = requests.get(sim.info()["site_url"] + "/rest/api/2/serverInfo", timeout=10)
    assert anonymous.status_code == 200


def test_errors_are_jira_shaped_never_stack_traces(sim):
    info = sim.info()
    auth = "Basic " + base64.b64encode(f"{info['email']}:{info['api_token']}".encode()).decode()
    unknown = requests.get(info["site_url"] + "/rest/api/2/no/such/thing", headers={"Authorization": auth}, timeout=10)
    assert unknown.status_code == 404 and "errorMessages" in unknown.json()
    broken = requests.post(info["site_url"] + "/rest/api/2/search/jql", data=b"{not json",
                           headers={"Authorization": auth, "Content-Type": "application/json"}, timeout=10)
    assert broken.status_code == 400 and "errorMessages" in broken.json()
    wrong_method = requests.delete(info["site_url"] + "/rest/api/2/field", headers={"Authorization": auth}, timeout=10)
    assert wrong_method.status_code == 405
    negative = requests.get(info["site_url"] + "/rest/api/2/label?startAt=-1", headers={"Authorization": auth}, timeout=10)
    assert negative.status_code == 400 and "Traceback" not in negative.text
    assert sim.stats()["internal_errors"] == 0


def test_every_snapshot_object_endpoint_agrees_with_ground_truth(sim):
    endpoints = {"issue_fields": ("/rest/api/2/field", None), "issue_types": ("/rest/api/2/issuetype", None),
                 "groups": ("/rest/api/2/group/bulk", "values"), "issue_priorities": ("/rest/api/2/priority/search", "values"),
                 "issue_resolutions": ("/rest/api/2/resolution/search", "values"),
                 "workflow_statuses": ("/rest/api/2/status", None), "workflows": ("/rest/api/2/workflows/search", "values"),
                 "project_types": ("/rest/api/2/project/type", None),
                 "issue_security_schemes": ("/rest/api/2/issuesecurityschemes", "issueSecuritySchemes")}
    for name, (path, key) in endpoints.items():
        body = get(sim, path).json()
        assert (body[key] if key else body) == sim.truth.records(name), name
    assert set(sim.truth.names()) >= {
        "audit_records", "groups", "issues", "issue_events", "issue_fields", "issue_field_configurations",
        "issue_link_types", "issue_notification_schemes", "issue_priorities", "issue_resolutions",
        "issue_security_schemes", "issue_types", "issue_type_schemes", "issue_type_screen_schemes", "jira_settings",
        "jira_settings_advanced", "jira_settings_global", "labels", "myself", "permissions", "projects",
        "project_categories", "project_types", "server_info", "users", "workflows", "workflow_schemes",
        "workflow_scheme_project_associations", "workflow_statuses", "workflow_status_categories", "issue_comments",
        "issue_changelogs", "issue_worklogs", "worklog_deletions", "boards", "sprints", "project_versions",
        "project_components"}
