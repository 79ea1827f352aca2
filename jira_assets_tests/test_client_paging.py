"""Every Jira response shape, paged over real HTTP against the simulator and checked against its ground
truth."""
from __future__ import annotations

import logging

import pytest

from jira_assets.jira import (
    FileTokenStore,
    JiraBadRequest,
    JiraClient,
    JiraProtocolError,
    NextPageUrl,
    OAuth3LO,
    OffsetLimit,
    PageBean,
    SinglePage,
    StartAtArray,
    StartAtTotal,
    TokenPages,
)
from jira_assets.simulator import Simulator, SimulatorConfig

API = "/rest/api/2"
BUSY_ISSUE = "10002"  # 250 changelog entries in the seed-7 site; the endpoint caps pages at 100
CHATTY_ISSUE = "10045"  # 201 comments


def oauth_client(sim, tmp_path, **kwargs) -> JiraClient:
    info = sim.info()
    auth = OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp_path / "tokens.json"),
                    auth_base_url=info["auth_base_url"], initial_refresh_token=info["refresh_token"])
    return JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True, **kwargs)


def collect(pages) -> list:
    return [record for page in pages for record in page]


def requests_to(sim, route: str) -> int:
    return sim.stats()["requests_by_route"].get(route, 0)


@pytest.fixture
def client(simulator, tmp_path):
    with oauth_client(simulator, tmp_path) as jira:
        yield jira


def test_a_bare_array_is_one_page_of_every_record(simulator, client):
    fields = collect(client.iter_pages(f"{API}/field", SinglePage()))
    assert sorted(f["id"] for f in fields) == sorted(f["id"] for f in simulator.truth.records("issue_fields"))


def test_a_keyed_list_yields_the_list_under_its_key(simulator, client):
    link_types = collect(client.iter_pages(f"{API}/issueLinkType", SinglePage("issueLinkTypes")))
    assert len(link_types) == len(simulator.truth.records("issue_link_types")) > 0


def test_a_single_object_is_one_record(simulator, client):
    (info,) = collect(client.iter_pages(f"{API}/serverInfo", SinglePage()))
    assert info["baseUrl"] == simulator.info()["site_url"]


def test_a_map_becomes_one_row_per_key(simulator, client):
    keys = sorted(client.get_json(f"{API}/permissions")["permissions"])
    rows = collect(client.iter_pages(f"{API}/mypermissions", SinglePage("permissions", map_key_field="key"),
                                     params={"permissions": ",".join(keys)}))
    assert sorted(r["key"] for r in rows) == keys
    assert len(rows) == len(simulator.truth.records("permissions"))


def test_c02_a_paged_bare_array_is_read_until_a_short_page(simulator, client):
    users = collect(client.iter_pages(f"{API}/users/search", StartAtArray(page_size=50)))
    assert len(users) == len(simulator.truth.records("users")) == 137
    assert len({u["accountId"] for u in users}) == 137
    assert requests_to(simulator, "GET /rest/api/2/users/search") == 3  # startAt 0, 50, 100 (short: stop)


def test_c03_the_next_start_comes_from_the_page_size_the_server_returned(simulator, client):
    histories = collect(client.iter_pages(f"{API}/issue/{BUSY_ISSUE}/changelog", PageBean(page_size=1000)))
    truth = simulator.truth.changelog(BUSY_ISSUE)
    assert len(truth) == 250
    assert [h["id"] for h in histories] == [h["id"] for h in truth]
    assert requests_to(simulator, "GET /rest/api/2/issue/{issueIdOrKey}/changelog") == 3  # capped at 100 each


def test_start_at_pages_with_a_total_read_every_comment(simulator, client):
    path = f"{API}/issue/{CHATTY_ISSUE}/comment"
    comments = collect(client.iter_pages(path, StartAtTotal("comments", 1000)))
    assert [c["id"] for c in comments] == [c["id"] for c in simulator.truth.comments(CHATTY_ISSUE)]
    assert len(comments) == 201


def test_offset_limit_pages_read_every_audit_record(simulator, client):
    records = collect(client.iter_pages(f"{API}/auditing/record", OffsetLimit("records", limit=40)))
    truth = simulator.truth.records("audit_records")
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in truth)
    assert requests_to(simulator, "GET /rest/api/2/auditing/record") == -(-len(truth) // 40)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_c05_token_pages_stop_on_is_last_without_a_token(simulator, client, method):
    jql = "created >= -3650d order by id"
    paging = TokenPages("issues", max_results=25, method=method)
    if method == "POST":
        pages = list(client.iter_pages(f"{API}/search/jql", paging, body={"jql": jql, "fields": ["id"]}))
    else:
        pages = list(client.iter_pages(f"{API}/search/jql", paging, params={"jql": jql, "fields": "id"}))
    truth = simulator.truth.issues()
    assert sorted(int(i["id"]) for p in pages for i in p) == sorted(int(i["id"]) for i in truth)
    assert len(pages) == -(-len(truth) // 25)


def test_c05_a_repeated_page_token_is_an_error_not_an_endless_loop(simulator, client):
    simulator.lie(r"/search/jql", repeat_token=True)
    with pytest.raises(JiraProtocolError, match="nextPageToken repeated"):
        collect(client.iter_pages(f"{API}/search/jql", TokenPages("issues", 10, method="POST"),
                                  body={"jql": "created >= -3650d order by id"}))
    assert requests_to(simulator, "POST /rest/api/2/search/jql") <= 3


def test_next_page_urls_are_followed_through_the_gateway_until_the_last_page(tmp_path):
    with Simulator(SimulatorConfig(seed=7, issues=400)) as sim, oauth_client(sim, tmp_path) as jira:
        pages = list(jira.iter_pages(f"{API}/worklog/updated", NextPageUrl("values", id_field="worklogId"),
                                     params={"since": 0}))
        horizon = sim.clock.now_ms() - 60_000  # Jira hides the last minute
        truth = {int(w["id"]) for w in sim.truth.worklogs() if _epoch_ms(w["updated"]) < horizon}
    assert len(pages) >= 2 and len(truth) > 1000
    ids = [v["worklogId"] for p in pages for v in p]
    assert len(ids) == len(set(ids))  # the inclusive `since` repeats a boundary record: dropped once
    assert set(ids) == truth


def _epoch_ms(jira_time: str) -> int:
    from datetime import datetime

    return int(datetime.strptime(jira_time, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


def test_c13_an_empty_page_below_the_total_stops_with_a_warning(simulator, client, caplog):
    simulator.lie(rf"/issue/{BUSY_ISSUE}/changelog", inflate_total=120)
    with caplog.at_level(logging.WARNING, logger="jira_assets.jira.paging"):
        histories = collect(client.iter_pages(f"{API}/issue/{BUSY_ISSUE}/changelog", PageBean(100)))
    assert len(histories) == 250
    assert any("empty page" in r.getMessage() for r in caplog.records)
    assert requests_to(simulator, "GET /rest/api/2/issue/{issueIdOrKey}/changelog") == 4  # 3 real + 1 empty


def test_c13_records_repeated_from_an_earlier_page_are_dropped(simulator, client):
    simulator.lie(rf"/issue/{BUSY_ISSUE}/changelog", repeat_previous=2)
    path = f"{API}/issue/{BUSY_ISSUE}/changelog"
    naive = collect(client.iter_pages(path, PageBean(100)))
    deduplicated = collect(client.iter_pages(path, PageBean(100, id_field="id")))
    truth = [h["id"] for h in simulator.truth.changelog(BUSY_ISSUE)]
    assert len(naive) > len(truth)  # the lie is real
    assert [h["id"] for h in deduplicated] == truth


def test_c14_fan_out_sends_repeated_parameters_in_chunks(simulator, client):
    path, route = f"{API}/workflowscheme/project", "GET /rest/api/2/workflowscheme/project"
    project_ids = [p["id"] for p in simulator.truth.records("projects")]
    truth = sorted(str(pid) for row in simulator.truth.records("workflow_scheme_project_associations")
                   for pid in row["projectIds"])
    assert len(truth) >= 2  # (team-managed projects are silently left out, like Jira does)

    in_one_call = collect(client.iter_chunked(path, "projectId", project_ids, chunk=100))
    assert sorted(str(p) for row in in_one_call for p in row["projectIds"]) == truth
    assert requests_to(simulator, route) == 1

    one_by_one = collect(client.iter_chunked(path, "projectId", project_ids, chunk=1))
    assert sorted(str(p) for row in one_by_one for p in row["projectIds"]) == truth
    assert requests_to(simulator, route) == 1 + len(project_ids)

    with pytest.raises(JiraBadRequest, match="projectId"):  # what a comma-joined list would get
        client.get_json(path, {"projectId": ",".join(map(str, project_ids))})


def test_pages_are_streamed_one_request_at_a_time(simulator, client):
    pages = client.iter_pages(f"{API}/users/search", StartAtArray(page_size=50))
    first = next(pages)
    assert len(first) == 50
    assert requests_to(simulator, "GET /rest/api/2/users/search") == 1
    pages.close()


# C13 as a kind: every paged shape, a server that repeats records or ignores the cursor altogether.
# (path, route, paging with an identity, records in the ground truth)
LYING_SHAPES = {
    "bare array": (f"{API}/users/search", "GET /rest/api/2/users/search", StartAtArray(50, id_field="accountId"),
                   lambda sim: [u["accountId"] for u in sim.truth.records("users")]),
    "PageBean": (f"{API}/issue/{BUSY_ISSUE}/changelog", "GET /rest/api/2/issue/{issueIdOrKey}/changelog",
                 PageBean(100, id_field="id"), lambda sim: [h["id"] for h in sim.truth.changelog(BUSY_ISSUE)]),
    "startAt/total": (f"{API}/issue/{CHATTY_ISSUE}/comment", "GET /rest/api/2/issue/{issueIdOrKey}/comment",
                      StartAtTotal("comments", 100, id_field="id"),
                      lambda sim: [c["id"] for c in sim.truth.comments(CHATTY_ISSUE)]),
    "offset/limit": (f"{API}/auditing/record", "GET /rest/api/2/auditing/record",
                     OffsetLimit("records", 40, id_field="id"),
                     lambda sim: [r["id"] for r in sim.truth.records("audit_records")]),
}


def _ids(records, paging) -> list:
    field = paging.id_field
    return [r[field] for r in records]


@pytest.mark.parametrize("shape", sorted(LYING_SHAPES))
def test_c13_records_a_page_repeats_land_once_on_every_paged_shape(simulator, client, shape):
    path, route, paging, truth = LYING_SHAPES[shape]
    simulator.lie(path.replace("/rest/api/2", ""), repeat_previous=3)
    ids = _ids(collect(client.iter_pages(path, paging)), paging)
    assert len(ids) == len(set(ids))
    assert sorted(map(str, ids)) == sorted(map(str, truth(simulator)))
    assert len(truth(simulator)) > (getattr(paging, "page_size", None) or paging.limit)  # several pages: a lie


@pytest.mark.parametrize("shape", sorted(LYING_SHAPES))
def test_c13_a_server_that_ignores_the_cursor_is_read_once_then_left_with_a_warning(simulator, client, shape,
                                                                                     caplog):
    path, route, paging, truth = LYING_SHAPES[shape]
    simulator.lie(path.replace("/rest/api/2", ""), restart=True)
    with caplog.at_level(logging.WARNING, logger="jira_assets.jira.paging"):
        ids = _ids(collect(client.iter_pages(path, paging)), paging)
    assert len(ids) == len(set(ids)) and 0 < len(ids) < len(truth(simulator))
    assert set(map(str, ids)) <= set(map(str, truth(simulator)))
    assert requests_to(simulator, route) == 2  # the first page, then one page of nothing new
    assert any("repeated only records already returned" in r.getMessage() for r in caplog.records)


def test_c13_token_pages_that_restart_with_fresh_tokens_stop_after_one_repeated_page(simulator, client, caplog):
    simulator.lie(r"/search/jql", restart=True)
    paging = TokenPages("issues", 10, method="POST", id_field="id")
    with caplog.at_level(logging.WARNING, logger="jira_assets.jira.paging"):
        issues = collect(client.iter_pages(f"{API}/search/jql", paging,
                                           body={"jql": "created >= -3650d order by id", "fields": ["id"]}))
    assert [i["id"] for i in issues] == sorted((i["id"] for i in simulator.truth.issues()), key=int)[:10]
    assert requests_to(simulator, "POST /rest/api/2/search/jql") == 2
    assert any("repeated only records already returned" in r.getMessage() for r in caplog.records)


def test_empty_token_pages_that_never_end_are_left_after_three(simulator, client, caplog):
    simulator.script(r"/search/jql$", [(200, {}, {"issues": [], "isLast": False, "nextPageToken": f"tok-{n}"})
                                       for n in range(50)])
    with caplog.at_level(logging.WARNING, logger="jira_assets.jira.paging"):
        issues = collect(client.iter_pages(f"{API}/search/jql", TokenPages("issues", 10, method="POST"),
                                           body={"jql": "created >= -3650d order by id"}))
    assert issues == []
    assert requests_to(simulator, "POST /rest/api/2/search/jql") == 3
    assert any("3 empty pages in a row" in r.getMessage() for r in caplog.records)


def test_a_page_token_that_is_not_a_string_is_a_protocol_error(simulator, client):
    simulator.script(r"/search/jql$", [(200, {}, {"issues": [{"id": "1"}], "isLast": False,
                                                  "nextPageToken": ["a"]})])
    with pytest.raises(JiraProtocolError, match="nextPageToken is list"):
        collect(client.iter_pages(f"{API}/search/jql", TokenPages("issues", 10, method="POST"),
                                  body={"jql": "created >= -3650d order by id"}))
