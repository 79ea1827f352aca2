"""Mutations over time show up where Jira shows them: search, changelog, worklog feeds, ground truth (C10)."""
from __future__ import annotations

import datetime as dt

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig

START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def sim():
    with Simulator(SimulatorConfig(seed=9, issues=80, start=START, frozen_clock=True)) as simulator:
        yield simulator


def get(sim: Simulator, path: str, **params) -> requests.Response:
    info = sim.info()
    return requests.get(info["site_url"] + path, params=params, auth=(info["email"], info["api_token"]), timeout=30)


def post(sim: Simulator, path: str, body: dict) -> requests.Response:
    info = sim.info()
    return requests.post(info["site_url"] + path, json=body, auth=(info["email"], info["api_token"]), timeout=30)


def feed(sim: Simulator, name: str, since: int = 0) -> list[dict]:
    values, url = [], f"/rest/api/2/worklog/{name}"
    params = {"since": since}
    while True:
        page = get(sim, url, **params).json()
        values += page["values"]
        if page["lastPage"]:
            return values
        params = {"since": page["until"]}


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_update_issue_bumps_updated_appends_a_history_and_moves_it_into_new_windows(sim):
    issue = sim.truth.issues()[4]
    before = len(sim.truth.changelog(issue["id"]))
    sim.clock.advance(120)
    stamp = sim.mutate.update_issue(issue["id"], status="Done", summary="Renamed ✓", assignee=sim.info()["account_id"])
    assert stamp == ms(START) + 120_000
    history = sim.truth.changelog(issue["id"])
    assert len(history) == before + 1
    fields = {item["field"]: item for item in history[-1]["items"]}
    assert fields["status"]["toString"] == "Done" and fields["summary"]["toString"] == "Renamed ✓"
    assert fields["assignee"]["to"] == sim.info()["account_id"]
    found = get(sim, "/rest/api/2/search/jql", jql=f"updated >= {stamp}", fields="summary,status,resolution").json()
    assert [i["id"] for i in found["issues"]] == [issue["id"]]
    current = found["issues"][0]["fields"]
    assert current["summary"] == "Renamed ✓" and current["status"]["name"] == "Done" and current["resolution"]
    assert [i["id"] for i in sim.truth.issues(updated_from=stamp)] == [issue["id"]]


def test_deleted_issues_vanish_from_search_and_endpoints_and_are_reported_by_truth(sim):
    victim = sim.truth.issues()[7]
    total_before = len(sim.truth.issues())
    sim.mutate.delete_issue(victim["key"])
    ids = [i["id"] for i in get(sim, "/rest/api/2/search/jql", jql="created >= 0", maxResults=5000).json()["issues"]]
    assert victim["id"] not in ids and len(ids) == total_before - 1
    assert get(sim, f"/rest/api/2/issue/{victim['id']}").status_code == 404
    assert sim.truth.deleted_issue_ids() == [int(victim["id"])]
    audit = get(sim, "/rest/api/2/auditing/record", limit=1).json()["records"][0]
    assert audit["summary"] == "Issue deleted" and audit["objectItem"]["name"] == victim["key"]


def test_worklog_feeds_page_by_since_hide_the_last_minute_and_list_fetches_them(sim):
    updated = feed(sim, "updated")
    truth = sim.truth.worklogs()
    assert sorted(v["worklogId"] for v in updated) == sorted(int(w["id"]) for w in truth)
    stamps = [v["updatedTime"] for v in updated]
    assert stamps == sorted(stamps)
    listed = post(sim, "/rest/api/2/worklog/list", {"ids": [v["worklogId"] for v in updated[:5]]}).json()
    assert sorted(int(w["id"]) for w in listed) == sorted(v["worklogId"] for v in updated[:5])
    assert all(w["issueId"] and w["timeSpentSeconds"] > 0 for w in listed)
    assert post(sim, "/rest/api/2/worklog/list", {"ids": []}).status_code == 400

    issue = sim.truth.issues()[2]["id"]
    new_id = sim.mutate.add_worklog(issue, seconds=5400, comment="pairing")
    assert new_id not in {v["worklogId"] for v in feed(sim, "updated")}  # inside the trailing minute
    sim.clock.advance(61)
    assert new_id in {v["worklogId"] for v in feed(sim, "updated", since=ms(START))}
    on_issue = get(sim, f"/rest/api/2/issue/{issue}/worklog").json()
    assert str(new_id) in {w["id"] for w in on_issue["worklogs"]}


def test_c10_deleted_worklogs_move_to_the_deleted_feed(sim):
    worklog = sim.truth.worklogs()[0]
    pre_deleted = set(sim.truth.deleted_worklog_ids())
    sim.mutate.delete_worklog(int(worklog["id"]))
    sim.clock.advance(61)
    deleted = feed(sim, "deleted")
    assert {v["worklogId"] for v in deleted} == pre_deleted | {int(worklog["id"])}
    assert int(worklog["id"]) not in {v["worklogId"] for v in feed(sim, "updated")}
    assert post(sim, "/rest/api/2/worklog/list", {"ids": [int(worklog["id"])]}).json() == []
    page = get(sim, f"/rest/api/2/issue/{worklog['issueId']}/worklog").json()
    assert worklog["id"] not in {w["id"] for w in page["worklogs"]}


def test_update_worklog_moves_it_in_the_updated_feed_without_touching_the_issue(sim):
    worklog = sim.truth.worklogs()[3]
    issue_updated = sim.truth.updated_ms()[int(worklog["issueId"])]
    sim.clock.advance(3600)
    sim.mutate.update_worklog(int(worklog["id"]), seconds=60)
    sim.clock.advance(61)
    latest = feed(sim, "updated", since=ms(START) + 3_600_000)
    assert [v["worklogId"] for v in latest] == [int(worklog["id"])]
    assert sim.truth.updated_ms()[int(worklog["issueId"])] == issue_updated


def test_the_worklog_feed_repeats_the_boundary_timestamp_on_the_next_page():
    """`since` is inclusive and `until` is the page's last timestamp, as on Jira."""
    with Simulator(SimulatorConfig(seed=9, issues=600, start=START, frozen_clock=True)) as sim:
        first = get(sim, "/rest/api/2/worklog/updated").json()
        assert first["lastPage"] is False and len(first["values"]) == 1000
        assert first["until"] == first["values"][-1]["updatedTime"]
        assert first["nextPage"].endswith(f"/rest/api/2/worklog/updated?since={first['until']}")
        second = get(sim, "/rest/api/2/worklog/updated", since=first["until"]).json()
        assert second["values"][0]["updatedTime"] == first["until"]
        assert second["since"] == first["until"]


def test_the_same_seed_and_start_give_the_same_site():
    def fingerprint() -> tuple:
        with Simulator(SimulatorConfig(seed=31, issues=40, start=START, frozen_clock=True)) as sim:
            issues = sim.truth.issues()
            return ([(i["id"], i["key"], i["fields"]["updated"], i["fields"]["summary"]) for i in issues],
                    sim.truth.ids("users"), len(sim.truth.records("issue_comments")), sim.info()["client_id"])

    assert fingerprint() == fingerprint()


def test_truth_dump_writes_every_object(sim, tmp_path):
    import json

    path = tmp_path / "truth.json"
    sim.truth.dump(str(path))
    document = json.loads(path.read_text())
    assert set(sim.truth.names()) <= set(document)
    assert len(document["issues"]) == 80 and document["deleted_issue_ids"] == []
