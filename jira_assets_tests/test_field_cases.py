"""Regression cases from the field (../shared/cases/CASES.md), through the whole product: Dagster, the
client, the simulator over HTTP and Parquet on disk."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import orjson
import pyarrow.dataset as ds


UTC = dt.timezone.utc
STORY_POINTS = "customfield_10016"


def materialize(names, partition):
    from jira_assets.definitions import defs

    d = defs()
    resources = dict(d.resources)
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(assets, partition_key=partition, resources=resources,
                          selection=[dg.AssetKey(["jira", "raw", n]) for n in names],
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def table(lake, name, partition):
    return ds.dataset(str(lake / "jira" / "raw" / name / f"date={partition}"), format="parquet").to_table()


def failures(result):
    return {e.step_key.split("__")[-1]: e.event_specific_data.error.message for e in result.get_step_failure_events()}


def materialization_metadata(result, name):
    [event] = result.asset_materializations_for_node(f"jira__raw__{name}")
    return {k: v.value for k, v in event.metadata.items()}


# Both ways a day is searched: token pages one after another, and (JIRA_WINDOW_SPLITS > 1) an id listing, then
# pages of ids fetched by parallel workers.
SEARCH_WAYS = pytest.mark.parametrize("splits", ["1", "4"], ids=["sequential", "listed ids"])


@SEARCH_WAYS
def test_c01_a_window_is_read_in_utc_whatever_the_users_time_zone(simulator, jira_env, monkeypatch, splits):
    """The demo user is in America/Los_Angeles; issues right after midnight UTC belong to that UTC day only."""
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", splits)
    assert simulator.info()["time_zone"] == "America/Los_Angeles"
    today = dt.datetime.now(UTC).date()
    day = today - dt.timedelta(days=3)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    issues = simulator.truth.issues()
    early, late = issues[0]["id"], issues[1]["id"]
    # 00:30Z is 16:30 the previous day in Los Angeles; 23:30Z is 15:30 the same day there.
    simulator.mutate.update_issue(early, at=midnight + dt.timedelta(minutes=30))
    simulator.mutate.update_issue(late, at=midnight + dt.timedelta(hours=23, minutes=30))

    previous = (day - dt.timedelta(days=1)).isoformat()
    assert not failures(materialize(["issues"], day.isoformat()))
    assert not failures(materialize(["issues"], previous))
    ids_day = set(table(jira_env, "issues", day.isoformat()).column("id").to_pylist())
    ids_previous = set(table(jira_env, "issues", previous).column("id").to_pylist())
    assert {int(early), int(late)} <= ids_day
    assert not {int(early), int(late)} & ids_previous


def utc_day(jira_timestamp: str) -> str:
    return dt.datetime.fromisoformat(jira_timestamp).astimezone(UTC).date().isoformat()


def test_c06_truncated_children_are_completed_and_complete_ones_cost_no_request(simulator, jira_env):
    busiest = max(simulator.truth.issues(), key=lambda i: len(simulator.truth.comments(i["id"])))
    assert len(simulator.truth.comments(busiest["id"])) > 20, "the seed should have an issue with many comments"
    day = utc_day(busiest["fields"]["updated"])
    result = materialize(["issues", "issue_comments", "issue_changelogs"], day)
    assert not failures(result)
    issues = table(jira_env, "issues", day)
    comment_totals = dict(zip(issues.column("id").to_pylist(), issues.column("comment_total").to_pylist()))
    pages = [orjson.loads(p) for p in issues.column("comments_json").to_pylist() if p]
    truncated_totals = [p["total"] for p in pages if p["total"] > len(p["comments"])]
    assert truncated_totals, "the seeded day should contain an issue whose comments Jira truncated"
    comments = table(jira_env, "issue_comments", day)
    per_issue: dict[str, int] = {}
    for issue_id in comments.column("issue_id").to_pylist():
        per_issue[issue_id] = per_issue.get(issue_id, 0) + 1
    assert {int(k): v for k, v in per_issue.items()} == {k: v for k, v in comment_totals.items() if v}
    meta = materialization_metadata(result, "issue_comments")
    assert meta["jira/issues_paged_for_children"] == len(truncated_totals)
    # pages of 100 for the truncated issues only: no request for an issue whose embedded list is complete
    assert meta["jira/requests"] == sum(-(-total // 100) for total in truncated_totals)


@SEARCH_WAYS
def test_c13_lying_pages_of_every_shape_land_each_record_once(simulator, jira_env, monkeypatch, splits):
    """Repeated records on token pages (issues, and the id listing), PageBeans (changelog), startAt/total pages
    (comments) and a bare array (users); and a bare array that ignores startAt, which once looped forever."""
    from jira_assets import extract

    monkeypatch.setenv("JIRA_ISSUE_PAGE_SIZE", "3")
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", splits)
    # the listing spans pages too, each as long as a fetch page: a repeated id lands in two fetch pages
    monkeypatch.setattr(extract, "ID_LIST_PAGE", 3)
    simulator.lie(r"/search/jql", repeat_previous=1)  # pages of three: one old issue, two new
    for path in (r"/issue/\d+/changelog", r"/issue/\d+/comment", r"/users/search"):
        simulator.lie(path, repeat_previous=3)
    busiest = max(simulator.truth.issues(), key=lambda i: len(simulator.truth.changelog(i["id"])))
    day = utc_day(busiest["fields"]["updated"])
    today = dt.datetime.now(UTC).date().isoformat()
    assert not failures(materialize(["issues", "issue_comments", "issue_changelogs"], day))
    assert not failures(materialize(["users"], today))

    issues = table(jira_env, "issues", day).column("id").to_pylist()
    assert len(issues) > 3 and len(issues) == len(set(issues))
    assert sorted(issues) == sorted(int(i["id"]) for i in simulator.truth.issues()
                                    if utc_day(i["fields"]["updated"]) == day)
    changelog = table(jira_env, "issue_changelogs", day)
    keys = list(zip(changelog.column("history_id").to_pylist(), changelog.column("item_index").to_pylist()))
    assert len(keys) == len(set(keys))
    busiest_histories = {str(h) for h, issue in zip(changelog.column("history_id").to_pylist(),
                                                     changelog.column("issue_id").to_pylist())
                         if str(issue) == str(busiest["id"])}
    truth = {str(h["id"]) for h in simulator.truth.changelog(busiest["id"]) if h["items"]}
    assert len(truth) > 100 and busiest_histories == truth
    comments = table(jira_env, "issue_comments", day).column("id").to_pylist()
    assert len(comments) == len(set(comments))
    assert sum(len(simulator.truth.comments(str(i))) for i in issues) == len(comments)
    users = table(jira_env, "users", today).column("account_id").to_pylist()
    assert sorted(users) == sorted(u["accountId"] for u in simulator.truth.records("users"))

    simulator.clear_disruptions()
    simulator.lie(r"/users/search", restart=True)
    assert not failures(materialize(["users"], today))
    users = table(jira_env, "users", today).column("account_id").to_pylist()
    assert 0 < len(users) == len(set(users)) < len(simulator.truth.records("users"))


def test_c08_one_failing_parent_is_recorded_while_the_other_rows_land(simulator, jira_env):
    today = dt.datetime.now(UTC).date().isoformat()
    assert not failures(materialize(["projects"], today))
    projects = table(jira_env, "projects", today).column("id").to_pylist()
    broken = sorted(projects)[0]
    simulator.script(rf"/project/{broken}/version$",
                     [(404, {}, {"errorMessages": ["No project could be found with id."], "errors": {}})] * 5)
    result = materialize(["project_versions"], today)
    assert not failures(result)
    versions = table(jira_env, "project_versions", today)
    expected = [v for v in simulator.truth.records("project_versions") if str(v["projectId"]) != str(broken)]
    assert sorted(versions.column("id").to_pylist()) == sorted(str(v["id"]) for v in expected)
    errors = materialization_metadata(result, "project_versions")["jira/child_errors"]
    errors = orjson.loads(errors) if isinstance(errors, str) else errors
    assert len(errors) == 1 and errors[0]["status"] == 404 and "No project could be found" in errors[0]["error"]


def test_c09_a_field_whose_json_type_varies_lands_losslessly(simulator, jira_env):
    day = dt.datetime.now(UTC).date()
    at = dt.datetime.combine(day, dt.time(1), tzinfo=UTC)
    values = ["2026-06-04T12:50:17+0530", 1735880410400, [{"entryIndex": 0}]]
    ids = [i["id"] for i in simulator.truth.issues()[:3]]
    for issue_id, value in zip(ids, values):
        simulator.mutate.update_issue(issue_id, at=at, **{STORY_POINTS: value})
    result = materialize(["issues"], day.isoformat())
    assert not failures(result)
    issues = table(jira_env, "issues", day.isoformat())
    by_id = {i: orjson.loads(f) for i, f in zip(issues.column("id").to_pylist(), issues.column("fields_json").to_pylist())}
    assert [by_id[int(i)][STORY_POINTS] for i in ids] == values
    points = dict(zip(issues.column("id").to_pylist(), issues.column("story_point_estimate").to_pylist()))
    assert points[int(ids[1])] == 1735880410400.0  # a number still fills the typed column
    assert points[int(ids[0])] is None and points[int(ids[2])] is None
    assert materialization_metadata(result, "issues")["jira/type_mismatches"]


@SEARCH_WAYS
def test_c11_an_unknown_project_fails_with_jiras_message_and_writes_nothing(simulator, jira_env, monkeypatch,
                                                                            splits):
    monkeypatch.setenv("JIRA_PROJECTS", "NOPE")
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", splits)  # the id listing's 400 is an error too, not an empty day
    day = dt.datetime.now(UTC).date().isoformat()
    result = materialize(["issues"], day)
    message = failures(result).get("issues", "")
    assert "NOPE" in message and "does not exist" in message
    assert not (jira_env / "jira" / "raw" / "issues").exists()


def test_a_snapshot_for_a_past_capture_date_fails_clearly(simulator, jira_env):
    past = (dt.datetime.now(UTC) - dt.timedelta(days=5)).date().isoformat()
    message = failures(materialize(["projects"], past)).get("projects", "")
    assert "snapshot" in message and past in message
    assert not (jira_env / "jira" / "raw" / "projects").exists()


def test_admin_only_objects_fail_clearly_for_a_non_admin_while_others_land(simulator, jira_env, monkeypatch):
    non_admin = simulator.info()["non_admin"]
    monkeypatch.setenv("JIRA_REFRESH_TOKEN", non_admin["refresh_token"])
    today = dt.datetime.now(UTC).date().isoformat()
    result = materialize(["issue_events", "issue_types"], today)
    failed = failures(result)
    assert set(failed) == {"issue_events"}
    assert "Administer Jira" in failed["issue_events"] or "administrator" in failed["issue_events"].lower()
    assert table(jira_env, "issue_types", today).num_rows == len(simulator.truth.records("issue_types"))


def test_worklogs_at_a_feed_page_boundary_land_once_each(simulator, jira_env):
    """/worklog/updated pages hold 1000 entries and `since` is inclusive: the boundary entry comes back twice."""
    day = (dt.datetime.now(UTC) - dt.timedelta(days=4)).date()
    start = dt.datetime.combine(day, dt.time(6), tzinfo=UTC)
    issue_id = simulator.truth.issues()[0]["id"]
    for n in range(1010):
        moment = start + dt.timedelta(seconds=n - (1 if n == 1000 else 0))  # 999 and 1000 share one instant
        simulator.mutate.add_worklog(issue_id, seconds=60, at=moment)
    result = materialize(["issue_worklogs"], day.isoformat())
    assert not failures(result)
    ids = table(jira_env, "issue_worklogs", day.isoformat()).column("id").to_pylist()
    assert len(ids) == len(set(ids))
    window_start = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    expected = {
        str(w["id"]) for w in simulator.truth.worklogs()
        if window_start <= dt.datetime.fromisoformat(w["updated"]).astimezone(UTC) < window_start + dt.timedelta(days=1)
    }
    assert len(expected) >= 1010 and set(ids) == expected


def test_odd_worklog_feed_entries_are_counted_never_crash_or_vanish(simulator, jira_env):
    """A feed entry without `updatedTime` is kept (it was asked for since the window's start), one that is not
    an entry is counted, and ids /worklog/list does not return are counted too."""
    worklog = simulator.truth.worklogs()[0]
    day = utc_day(worklog["updated"])
    missing = 999_999_999
    simulator.script(r"/worklog/updated$", [(200, {}, {
        "values": [{"worklogId": int(worklog["id"]), "updatedTime": None}, "junk",
                   {"worklogId": missing, "updatedTime": None}],
        "since": 0, "until": 0, "lastPage": True})])
    result = materialize(["issue_worklogs"], day)
    assert not failures(result)
    assert table(jira_env, "issue_worklogs", day).column("id").to_pylist() == [str(worklog["id"])]
    meta = materialization_metadata(result, "issue_worklogs")
    assert meta["jira/feed_entries_without_time"] == 2 and meta["jira/unreadable_feed_entries"] == 1
    assert meta["jira/worklogs_not_returned"] == 1


@pytest.mark.parametrize("page, complete", [
    ({"total": 2, "histories": [{}, {}]}, True), ({"total": 3, "histories": [{}, {}]}, False),
    ({"total": "2", "histories": [{}, {}]}, False), ({"total": None, "histories": [{}]}, False),
    ({"histories": "x"}, False), (None, True), ("junk", True),
])
def test_an_embedded_list_is_complete_only_when_its_total_is_a_number_it_reaches(page, complete):
    from jira_assets.extract import _embedded

    assert _embedded(page, "histories")[1] is complete
