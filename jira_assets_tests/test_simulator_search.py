"""/search/jql and the per-issue endpoints behave like Jira Cloud's (FACTS.md §3; cases C01, C04, C05, C06, C11)."""
from __future__ import annotations

import datetime as dt

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig

START = "2026-11-06T14:00:00Z"
UPDATED_AT = dt.datetime(2026, 11, 6, 12, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def site():
    with Simulator(SimulatorConfig(seed=11, issues=300, start=START, frozen_clock=True)) as sim:
        yield sim


def get(sim: Simulator, path: str, user: str = "admin", **params) -> requests.Response:
    info = sim.info()
    auth = (info["email"], info["api_token"]) if user == "admin" else (info["non_admin"]["email"], info["non_admin"]["api_token"])
    return requests.get(info["site_url"] + path, params=params, auth=auth, timeout=30)


def post(sim: Simulator, path: str, body: dict) -> requests.Response:
    info = sim.info()
    return requests.post(info["site_url"] + path, json=body, auth=(info["email"], info["api_token"]), timeout=30)


def search_all(sim: Simulator, jql: str, user: str = "admin", **params) -> list[dict]:
    issues, token, seen = [], None, set()
    while True:
        body = get(sim, "/rest/api/2/search/jql", user, jql=jql, nextPageToken=token, **params).json()
        issues += body["issues"]
        token = body.get("nextPageToken")
        if body["isLast"]:
            assert token is None
            return issues
        assert token not in seen
        seen.add(token)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- C01: time zones --------------------------------------------------------------------------------------

def test_c01_a_window_in_epoch_ms_or_in_the_users_zone_finds_the_issue_and_a_naive_utc_literal_misses_it():
    with Simulator(SimulatorConfig(seed=5, issues=60, start=START, frozen_clock=True)) as sim:
        target = sim.truth.issues()[10]["id"]
        sim.mutate.update_issue(target, at=UPDATED_AT, summary="updated at 12:30Z")
        assert sim.info()["time_zone"] == "America/Los_Angeles"
        lower, upper = UPDATED_AT.replace(minute=0), UPDATED_AT.replace(minute=0) + dt.timedelta(hours=1)

        by_epoch = search_all(sim, f"updated >= {ms(lower)} AND updated < {ms(upper)}")
        assert [i["id"] for i in by_epoch].count(target) == 1
        # 12:00Z is 04:00 in Los Angeles (PST, UTC-8, on 2026-11-06)
        by_local = search_all(sim, 'updated >= "2026-11-06 04:00" AND updated < "2026/11/06 05:00"')
        assert target in [i["id"] for i in by_local]
        naive_utc = search_all(sim, 'updated >= "2026/11/06 12:00" AND updated < "2026/11/06 13:00"')
        assert target not in [i["id"] for i in naive_utc]
        # the same literal means another instant for a user in Berlin (UTC+1): 13:30 there is 12:30Z
        berlin = search_all(sim, 'updated >= "2026-11-06 13:30" AND updated < "2026-11-06 13:31"', user="non_admin")
        assert target in [i["id"] for i in berlin]


def test_timestamps_carry_the_viewers_offset_with_milliseconds():
    with Simulator(SimulatorConfig(seed=5, issues=20, start=START, frozen_clock=True)) as sim:
        target = sim.truth.issues()[3]["id"]
        sim.mutate.update_issue(target, at=UPDATED_AT + dt.timedelta(milliseconds=123))
        admin = get(sim, f"/rest/api/2/issue/{target}", fields="updated").json()["fields"]["updated"]
        member = get(sim, f"/rest/api/2/issue/{target}", "member", fields="updated").json()["fields"]["updated"]
        assert admin == "2026-11-06T04:30:00.123-0800"
        assert member == "2026-11-06T13:30:00.123+0100"


def test_relative_periods_count_back_from_the_clock(site):
    recent = {i["id"] for i in search_all(site, "updated >= -1d")}
    truth = {i["id"] for i in site.truth.issues(updated_from=dt.datetime(2026, 11, 5, 14, tzinfo=dt.timezone.utc))}
    assert recent == truth and recent


# --- shapes, fields and caps --------------------------------------------------------------------------------

def test_default_fields_are_id_only_and_ids_pages_go_up_to_5000(site):
    body = get(site, "/rest/api/2/search/jql", jql="project = DEMO", maxResults=10000).json()
    assert body["isLast"] is True and "nextPageToken" not in body
    assert all(set(issue) == {"id"} for issue in body["issues"])
    live = site.truth.issues()
    assert len(body["issues"]) == sum(1 for i in live if i["key"].startswith("DEMO-"))
    assert "total" not in body and "startAt" not in body and "maxResults" not in body


def test_pages_with_fields_are_capped_at_100(site):
    body = get(site, "/rest/api/2/search/jql", jql="created >= 0", fields="summary", maxResults=1000).json()
    assert len(body["issues"]) == 100 and body["isLast"] is False and body["nextPageToken"]


def test_fields_lists_exclusions_and_star_all(site):
    one = get(site, "/rest/api/2/search/jql", jql="created >= 0", fields="summary,status", maxResults=1).json()
    assert set(one["issues"][0]["fields"]) == {"summary", "status"}
    repeated = get(site, "/rest/api/2/search/jql", jql="created >= 0", fields=["summary", "updated"], maxResults=1).json()
    assert set(repeated["issues"][0]["fields"]) == {"summary", "updated"}
    everything = get(site, "/rest/api/2/search/jql", jql="created >= 0", fields="*all,-comment", maxResults=1).json()
    fields = everything["issues"][0]["fields"]
    assert "comment" not in fields and {"worklog", "customfield_10020", "description", "updated"} <= set(fields)


def test_post_search_takes_the_same_arguments_in_the_body(site):
    get_ids = [i["id"] for i in search_all(site, "project in (DEMO, OPS) ORDER BY updated ASC, id ASC")]
    issues, token = [], None
    while True:
        body = post(site, "/rest/api/2/search/jql", {"jql": "project in (DEMO, OPS) ORDER BY updated ASC, id ASC",
                                                      "fields": ["updated"], "maxResults": 40,
                                                      "nextPageToken": token}).json()
        issues += body["issues"]
        token = body.get("nextPageToken")
        if body["isLast"]:
            break
    assert [i["id"] for i in issues] == get_ids
    stamps = [(i["fields"]["updated"], int(i["id"])) for i in issues]
    assert stamps == sorted(stamps, key=lambda s: (dt.datetime.strptime(s[0], "%Y-%m-%dT%H:%M:%S.%f%z"), s[1]))


def test_c05_token_pages_end_with_is_last_and_no_token_and_cover_every_issue_once(site):
    seen = [i["id"] for i in search_all(site, "created >= 0 ORDER BY key DESC", fields="key", maxResults=70)]
    assert len(seen) == len(set(seen)) == len(site.truth.issues())


def test_a_bad_token_and_unbounded_or_unknown_queries_are_400s_with_jira_messages(site):
    bad = get(site, "/rest/api/2/search/jql", jql="created >= 0", nextPageToken="garbage")
    assert bad.status_code == 400 and bad.json() == {"errorMessages": ["Invalid format of nextPageToken"], "errors": {}}
    for jql in ("", "ORDER BY updated ASC"):
        unbounded = get(site, "/rest/api/2/search/jql", jql=jql)
        assert unbounded.status_code == 400
        assert "Unbounded JQL queries are not allowed here" in unbounded.json()["errorMessages"][0]
    unknown = get(site, "/rest/api/2/search/jql", jql="project = ABC")
    assert unknown.status_code == 400
    assert unknown.json() == {"errorMessages": ["The value 'ABC' does not exist for the field 'project'."], "errors": {}}
    broken = get(site, "/rest/api/2/search/jql", jql="updated >= ")
    assert broken.status_code == 400 and broken.json()["errorMessages"][0].startswith("Error in the JQL Query")


def test_c04_the_old_search_endpoint_is_gone(site):
    for answer in (get(site, "/rest/api/2/search", jql="project = DEMO"), post(site, "/rest/api/3/search", {"jql": "x"})):
        assert answer.status_code == 410
        assert answer.json()["errorMessages"][0].startswith("The requested API has been removed. Please migrate to the "
                                                            "/rest/api/3/search/jql API.")


def test_key_id_and_boolean_clauses(site):
    issues = site.truth.issues()
    a, b = issues[5], issues[7]
    found = search_all(site, f"key = {a['key']} OR (id = {b['id']} AND project = {b['fields']['project']['key']})")
    assert {i["id"] for i in found} == {a["id"], b["id"]}
    after = search_all(site, f"id > {issues[-3]['id']}")
    assert {i["id"] for i in after} == {issues[-2]["id"], issues[-1]["id"]}
    assert search_all(site, f"key in ({a['key']}) AND NOT id = {a['id']}") == []


def test_approximate_count_counts_the_matches(site):
    count = post(site, "/rest/api/2/search/approximate-count", {"jql": "project = OPS"}).json()["count"]
    assert count == sum(1 for i in site.truth.issues() if i["key"].startswith("OPS-")) > 0


def test_expand_names_schema_changelog_and_rendered_fields(site):
    body = get(site, "/rest/api/2/search/jql", jql="created >= 0", fields="summary,customfield_10020,description",
               expand="names,schema,changelog,renderedFields", maxResults=5).json()
    assert body["names"]["customfield_10020"] == "Sprint"
    assert body["schema"]["customfield_10020"] == {"type": "array", "items": "json",
                                                  "custom": "com.pyxis.greenhopper.jira:gh-sprint", "customId": 10020}
    issue = body["issues"][0]
    assert set(issue["changelog"]) == {"startAt", "maxResults", "total", "histories"}
    assert "description" in issue["renderedFields"]


# --- C06: truncated children ---------------------------------------------------------------------------------

def test_c06_embedded_children_are_truncated_but_keep_their_true_totals(site):
    heavy = site.truth.issues()[1]
    body = get(site, "/rest/api/2/search/jql", jql=f"id = {heavy['id']}", fields="comment,worklog",
               expand="changelog").json()["issues"][0]
    assert body["changelog"]["total"] == 250 and len(body["changelog"]["histories"]) == 40
    assert body["changelog"]["maxResults"] == 40
    comment = body["fields"]["comment"]
    assert comment["total"] == 75 and len(comment["comments"]) == comment["maxResults"] == 20
    worklog = body["fields"]["worklog"]
    assert worklog["total"] == 25 and len(worklog["worklogs"]) == 20 and worklog["maxResults"] == 20

    comments = get(site, f"/rest/api/2/issue/{heavy['id']}/comment", maxResults=1000).json()
    assert comments["maxResults"] == 100 and comments["total"] == 75 and len(comments["comments"]) == 75
    assert "isLast" not in comments
    histories, start = [], 0
    while True:
        page = get(site, f"/rest/api/2/issue/{heavy['key']}/changelog", startAt=start, maxResults=500).json()
        assert page["maxResults"] == 100
        histories += page["values"]
        start += len(page["values"])
        if page["isLast"]:
            break
    assert len(histories) == 250 == len({h["id"] for h in histories})
    assert histories[:40] == body["changelog"]["histories"]
    assert [h["id"] for h in histories] == [h["id"] for h in site.truth.changelog(heavy["id"])]
    worklogs = get(site, f"/rest/api/2/issue/{heavy['id']}/worklog").json()
    assert worklogs["total"] == 25 and len(worklogs["worklogs"]) == 25


def test_changelogs_end_at_the_issues_current_status(site):
    for issue in site.truth.issues()[:40]:
        transitions = [item for h in site.truth.changelog(issue["id"]) for item in h["items"] if item["field"] == "status"]
        if transitions:
            assert transitions[-1]["toString"] == issue["fields"]["status"]["name"], issue["key"]


def test_comment_order_and_bad_order_by(site):
    issue = site.truth.issues()[1]["id"]
    newest_first = get(site, f"/rest/api/2/issue/{issue}/comment", orderBy="-created").json()["comments"]
    assert [c["id"] for c in newest_first] == [c["id"] for c in reversed(site.truth.comments(issue))]
    assert get(site, f"/rest/api/2/issue/{issue}/comment", orderBy="author").status_code == 400


def test_a_missing_issue_is_a_404_error_collection(site):
    answer = get(site, "/rest/api/2/issue/NOPE-1")
    assert answer.status_code == 404
    assert answer.json() == {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
                             "errors": {}}


def test_bulkfetch_returns_ascending_ids_and_refuses_more_than_100(site):
    issues = site.truth.issues()
    wanted = [issues[9]["key"], issues[2]["id"], "NOPE-5"]
    body = post(site, "/rest/api/2/issue/bulkfetch", {"issueIdsOrKeys": wanted, "fields": ["summary"]}).json()
    assert [i["id"] for i in body["issues"]] == [issues[2]["id"], issues[9]["id"]]
    too_many = post(site, "/rest/api/2/issue/bulkfetch", {"issueIdsOrKeys": [str(n) for n in range(101)]})
    assert too_many.status_code == 400


def test_v3_serves_the_same_issues_with_adf_rich_text(site):
    issue = next(i for i in site.truth.issues() if i["fields"]["description"])
    v2 = get(site, f"/rest/api/2/issue/{issue['id']}", fields="description,comment").json()
    v3 = get(site, f"/rest/api/3/issue/{issue['id']}", fields="description,comment").json()
    assert isinstance(v2["fields"]["description"], str)
    doc = v3["fields"]["description"]
    assert doc["type"] == "doc" and doc["version"] == 1
    first_text = doc["content"][0]["content"][0]["text"]
    assert v2["fields"]["description"].startswith(first_text)
    assert v3["self"].endswith(f"/rest/api/3/issue/{issue['id']}")
    if v2["fields"]["comment"]["comments"]:
        assert v3["fields"]["comment"]["comments"][0]["body"]["type"] == "doc"


def test_embedded_parents_subtasks_and_links_agree_with_the_issues_they_point_at(site):
    issues = {i["id"]: i for i in site.truth.issues()}
    children = [i for i in issues.values() if i["fields"]["issuetype"]["subtask"]]
    assert children
    for child in children:
        parent = child["fields"]["parent"]
        assert parent["fields"]["summary"] == issues[parent["id"]]["fields"]["summary"]
        assert child["id"] in {s["id"] for s in issues[parent["id"]]["fields"]["subtasks"]}
    linked = [i for i in issues.values() if i["fields"]["issuelinks"]]
    assert linked
    for issue in linked:
        for link in issue["fields"]["issuelinks"]:
            other = link.get("outwardIssue") or link.get("inwardIssue")
            mirror = [m for m in issues[other["id"]]["fields"]["issuelinks"] if m["id"] == link["id"]]
            assert mirror and ("inwardIssue" in mirror[0]) == ("outwardIssue" in link)
    assert all("parent" not in i["fields"] for i in issues.values() if i["fields"]["issuetype"]["name"] == "Epic")
