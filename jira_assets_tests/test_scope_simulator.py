"""The extraction scope through the whole product: Dagster, the client, the simulator over HTTP, Parquet on disk.

Projects and an extra JQL filter decide which issues and children land (compared with the simulator's ground
truth); renamed and masked fields land as configured and the raw value is in no byte of the lake; a filter or a
project Jira refuses fails the run before anything is written (C11).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import dagster as dg
import pyarrow.dataset as ds
import pytest


UTC = dt.timezone.utc
SALT = "test-salt-0123456789abcdef"
CHILDREN = ("issue_comments", "issue_changelogs", "issue_worklogs")


def window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    return start, start + dt.timedelta(days=1)


@pytest.fixture
def day(simulator) -> dt.date:
    """The most recent finished day whose seeded data can tell a right scope from a wrong one.

    The simulator's data is dated relative to now, so a fixed offset such as "two days ago" holds a different
    mix of issues every day the suite runs; the day is chosen from ground truth instead."""
    projects_of = {str(i["id"]): i["fields"]["project"]["key"] for i in simulator.truth.issues()}
    today = dt.datetime.now(UTC).date()
    for back in range(1, 30):
        candidate = today - dt.timedelta(days=back)
        start, end = window(candidate)
        issues = simulator.truth.issues(updated_from=start, updated_to=end)
        keys = [i["fields"]["project"]["key"] for i in issues]
        two = [i for i in issues if i["fields"]["project"]["key"] in ("OPS", "WEB")]
        open_two = [i for i in two if i["fields"]["status"]["statusCategory"]["key"] != "done"]
        worklog_projects = {projects_of[str(w["issueId"])] for w in simulator.truth.worklogs()
                            if start <= dt.datetime.fromisoformat(w["updated"]) < end}
        commented = any(simulator.truth.comments(i["id"]) for i in issues)
        if ("OPS" in keys and set(keys) - {"OPS"} and "WEB" in keys and 2 <= len(open_two) < len(two)
                and "OPS" in worklog_projects and worklog_projects - {"OPS"} and commented):
            return candidate
    raise AssertionError("no recent day of the seeded data holds the mix these tests need")


def materialize(names, partition, run_config=None):
    from jira_assets.definitions import defs

    d = defs()
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(assets, partition_key=partition, resources=d.resources, run_config=run_config,
                          selection=[dg.AssetKey(["jira", "raw", n]) for n in names],
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def failures(result) -> dict[str, str]:
    return {e.step_key.split("__")[-1]: e.event_specific_data.error.message for e in result.get_step_failure_events()}


def rows(lake, name, day) -> list[dict]:
    return ds.dataset(str(lake / "jira" / "raw" / name / f"date={day}"), format="parquet").to_table().to_pylist()


def metadata(result, name) -> dict:
    [event] = result.asset_materializations_for_node(f"jira__raw__{name}")
    return {k: v.value for k, v in event.metadata.items()}


def truth_children(simulator, issues, day) -> tuple[set, int, set]:
    """Comment ids, changelog item count and worklog ids (updated that day) of `issues`, from ground truth."""
    ids = {str(i["id"]) for i in issues}
    comments = {str(c["id"]) for i in issues for c in simulator.truth.comments(i["id"])}
    items = sum(len(h.get("items", [])) for i in issues for h in simulator.truth.changelog(i["id"]))
    start, end = window(day)
    worklogs = {str(w["id"]) for w in simulator.truth.worklogs()
                if str(w["issueId"]) in ids and start <= dt.datetime.fromisoformat(w["updated"]) < end}
    return comments, items, worklogs


def test_a_project_filter_yields_exactly_that_projects_issues_and_their_children(simulator, jira_env, monkeypatch,
                                                                                    day):
    monkeypatch.setenv("JIRA_PROJECTS", "OPS")
    result = materialize(("issues", *CHILDREN), day.isoformat())
    assert failures(result) == {}

    start, end = window(day)
    everything = simulator.truth.issues(updated_from=start, updated_to=end)
    expected = [i for i in everything if i["fields"]["project"]["key"] == "OPS"]
    assert expected and len(expected) < len(everything), "the day should hold OPS issues and others"
    stored = rows(jira_env, "issues", day)
    assert sorted(r["id"] for r in stored) == sorted(int(i["id"]) for i in expected)
    assert {r["project_key"] for r in stored} == {"OPS"}

    # children: of every OPS issue updated that day for comments/changelogs; worklogs of any OPS issue
    ops_issues = [i for i in simulator.truth.issues() if i["fields"]["project"]["key"] == "OPS"]
    comments, items, _ = truth_children(simulator, expected, day)
    _, _, worklogs = truth_children(simulator, ops_issues, day)
    _, _, all_worklogs = truth_children(simulator, simulator.truth.issues(), day)
    assert {r["id"] for r in rows(jira_env, "issue_comments", day)} == comments
    assert len(rows(jira_env, "issue_changelogs", day)) == items
    assert worklogs and worklogs < all_worklogs, "the day should hold worklogs of OPS issues and of others"
    assert {r["id"] for r in rows(jira_env, "issue_worklogs", day)} == worklogs
    assert metadata(result, "issue_worklogs")["jira/worklogs_outside_scope"] == len(all_worklogs - worklogs)
    assert metadata(result, "issues")["jira/scope_projects"] == "OPS"


def test_an_extra_jql_filter_narrows_two_projects_to_their_open_issues(simulator, jira_env, monkeypatch, day):
    monkeypatch.setenv("JIRA_PROJECTS", "OPS,WEB")
    monkeypatch.setenv("JIRA_JQL_FILTER", "statusCategory != Done")
    result = materialize(("issues", "issue_comments"), day.isoformat())
    assert failures(result) == {}

    start, end = window(day)
    two_projects = [i for i in simulator.truth.issues(updated_from=start, updated_to=end)
                    if i["fields"]["project"]["key"] in ("OPS", "WEB")]
    expected = [i for i in two_projects if i["fields"]["status"]["statusCategory"]["key"] != "done"]
    assert 0 < len(expected) < len(two_projects), "the filter should drop some issues of the day, not all"
    stored = rows(jira_env, "issues", day)
    assert sorted(r["id"] for r in stored) == sorted(int(i["id"]) for i in expected)
    assert {r["status_category_key"] for r in stored} <= {"new", "indeterminate"}
    comments, _, _ = truth_children(simulator, expected, day)
    assert {r["id"] for r in rows(jira_env, "issue_comments", day)} == comments
    assert metadata(result, "issues")["jira/scope_jql_filter"] == "statusCategory != Done"


def test_the_scope_can_be_overridden_for_one_run_through_run_config(simulator, jira_env, day):
    from jira_assets.defs.resources import jira_resource_from_env, jira_run_config

    run_config = jira_run_config(jira_resource_from_env(), projects=["WEB"])
    assert run_config["resources"]["jira"]["config"]["client_secret"] == {"env": "JIRA_CLIENT_SECRET"}  # no value
    result = materialize(("issues",), day.isoformat(), run_config=run_config)
    assert failures(result) == {}
    start, end = window(day)
    expected = [i for i in simulator.truth.issues(updated_from=start, updated_to=end)
                if i["fields"]["project"]["key"] == "WEB"]
    assert expected
    assert sorted(r["id"] for r in rows(jira_env, "issues", day)) == sorted(int(i["id"]) for i in expected)


def test_renamed_and_masked_fields_land_as_configured_and_the_raw_value_is_nowhere_in_the_lake(
        simulator, jira_env, monkeypatch, day):
    secret, marker = "Zyxwv Secret Customer 4711", "Marker summary 8f3e2a"
    start, _ = window(day)
    issue = simulator.truth.issues(updated_from=start, updated_to=start + dt.timedelta(days=1))[0]
    # one change puts the secret into the issue's fields and its changelog (toString), next to an unmasked marker
    simulator.mutate.update_issue(issue["id"], at=start + dt.timedelta(hours=12),
                                  customfield_10039=secret, summary=marker)
    assignee = simulator.truth.issues(updated_from=start, updated_to=start + dt.timedelta(days=1))
    monkeypatch.setenv("JIRA_MASK_FIELDS", "Customer name,assignee")
    monkeypatch.setenv("JIRA_RENAME_FIELDS", "Story Points=points")
    monkeypatch.setenv("JIRA_EXCLUDE_FIELDS", "environment")
    monkeypatch.setenv("JIRA_MASK_SALT", SALT)
    monkeypatch.setenv("JIRA_PARQUET_COMPRESSION", "none")  # so a plain-text value would be visible in the bytes
    result = materialize(("issues", *CHILDREN), day.isoformat())
    assert failures(result) == {}

    def digest(text: str) -> str:
        return hmac.new(SALT.encode(), text.encode(), hashlib.sha256).hexdigest()

    truth = {str(i["id"]): i for i in assignee}
    stored = {str(r["id"]): r for r in rows(jira_env, "issues", day)}
    assert set(stored) == set(truth)
    assert stored[str(issue["id"])]["customer_name"] == digest(secret)
    assert "story_points" not in next(iter(stored.values())) and "points" in next(iter(stored.values()))
    for issue_id, row in stored.items():
        fields = truth[issue_id]["fields"]
        assert row["points"] == fields.get("customfield_10028")
        assignee_id = (fields.get("assignee") or {}).get("accountId")
        assert row["assignee_account_id"] == (digest(assignee_id) if assignee_id else None)
        assert row["environment"] is None  # excluded: the column stays, empty
        assert '"environment"' not in row["fields_json"]
    change = [r for r in rows(jira_env, "issue_changelogs", day) if r["field_id"] == "customfield_10039"]
    assert [c["to_string"] for c in change] == [digest(secret)]

    lake_bytes = b"".join(p.read_bytes() for p in sorted(jira_env.rglob("*")) if p.is_file())
    assert marker.encode() in lake_bytes, "an unmasked value must be visible: the search below would be blind"
    assert digest(secret).encode() in lake_bytes
    assert secret.encode() not in lake_bytes
    meta = metadata(result, "issues")
    assert meta["jira/fields_masked"] == ["assignee (Assignee)", "customfield_10039 (Customer name)"]
    assert meta["jira/fields_dropped"] == ["environment (Environment)"]
    assert meta["jira/columns_renamed"] == {"story_points": "points"}
    assert metadata(result, "issue_changelogs")["jira/fields_masked"] == meta["jira/fields_masked"]


@pytest.mark.parametrize("variable, value, setting, jira_says", [
    ("JIRA_JQL_FILTER", "statsu = Open", "jql_filter",
     "Field 'statsu' does not exist or you do not have permission to view it."),
    ("JIRA_PROJECTS", "OPS,NOPE", "projects", "The value 'NOPE' does not exist for the field 'project'."),
])
def test_a_scope_jira_refuses_fails_the_run_before_anything_is_written(simulator, jira_env, monkeypatch, day,
                                                                        variable, value, setting, jira_says):
    monkeypatch.setenv(variable, value)
    result = materialize(("issues", "issue_worklogs"), day.isoformat())
    failed = failures(result)
    assert set(failed) == {"issues", "issue_worklogs"}
    assert f"{setting} (env {variable}" in failed["issues"] and jira_says in failed["issues"]
    assert not (jira_env / "jira").exists()  # no table, no partition folder, no staging directory
    assert simulator.stats()["requests_by_route"].get("POST /rest/api/2/search/jql", 0) == 0
    assert len(result.get_step_failure_events()) == 2  # not retried: a wrong scope stays wrong


def test_a_scope_that_is_wrong_offline_stops_the_code_location_from_loading(jira_env, monkeypatch):
    from jira_assets.definitions import defs

    monkeypatch.setenv("JIRA_MASK_FIELDS", "assignee")
    monkeypatch.delenv("JIRA_MASK_SALT", raising=False)
    with pytest.raises(Exception, match=r"mask_salt \(env JIRA_MASK_SALT\): is not set, but fields are masked"):
        defs()


def test_masking_users_leaves_no_name_or_account_id_of_anyone_in_issues_and_their_children(
        simulator, jira_env, monkeypatch, day):
    monkeypatch.setenv("JIRA_MASK_USERS", "true")
    monkeypatch.setenv("JIRA_MASK_SALT", SALT)
    monkeypatch.setenv("JIRA_PARQUET_COMPRESSION", "none")
    result = materialize(("issues", *CHILDREN), day.isoformat())
    assert failures(result) == {}

    def digest(text: str) -> str:
        return hmac.new(SALT.encode(), text.encode(), hashlib.sha256).hexdigest()

    comments = rows(jira_env, "issue_comments", day)
    assert comments and len(rows(jira_env, "issue_worklogs", day)) > 0
    people = {u["accountId"]: u for u in simulator.truth.records("users")}
    authors = {str(c["id"]): c["author"]["accountId"] for i in simulator.truth.issues() for c in
               simulator.truth.comments(i["id"])}
    assert [r["author_account_id"] for r in comments] == [digest(authors[r["id"]]) for r in comments]
    assignees = [r for r in rows(jira_env, "issue_changelogs", day) if r["field"] == "assignee" and r["to_value"]]
    assert assignees and all(len(r["to_value"]) == 64 and r["to_value"] not in people for r in assignees)

    lake_bytes = b"".join(p.read_bytes() for p in sorted(jira_env.rglob("*")) if p.is_file())
    leaked = [u["displayName"] for u in people.values()
              if u["accountId"].encode() in lake_bytes or u["displayName"].encode() in lake_bytes]
    assert leaked == []
    assert metadata(result, "issue_worklogs")["jira/users_masked"] is True


def test_an_issue_closed_under_an_open_issues_filter_is_out_of_scope_not_deleted(simulator, jira_env,
                                                                                monkeypatch, day):
    """README's setup 2 (two projects, only open issues): closing an issue takes it out of the filter. The
    census asks Jira which issues exist without the filter, so it is `out_of_scope`, never `deleted`."""
    from jira_assets.definitions import defs

    monkeypatch.setenv("JIRA_PROJECTS", "OPS,WEB")
    monkeypatch.setenv("JIRA_JQL_FILTER", "statusCategory != Done")
    today = dt.datetime.now(UTC).date().isoformat()
    assert failures(materialize(["issues"], day.isoformat())) == {}
    stored = rows(jira_env, "issues", day)
    assert len(stored) >= 2
    closed = str(stored[0]["id"])
    late_that_day = dt.datetime.combine(day, dt.time(23, 59), tzinfo=UTC)
    simulator.mutate.update_issue(closed, at=late_that_day, status="Done")
    simulator.mutate.delete_issue(str(stored[1]["id"]))

    d = defs()
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    census = dg.materialize(assets, partition_key=today, resources=d.resources, instance=instance,
                            selection=[dg.AssetKey(["jira", "raw", n]) for n in ("issue_id_census", "projects")])
    assert census.success
    selection = [dg.AssetKey(["jira", "marts", n]) for n in ("deleted_issues", "issues_current")]
    marts = dg.materialize(assets, resources=d.resources, instance=instance, selection=selection)
    assert marts.success
    lake_marts = jira_env / "jira" / "marts"
    deleted = ds.dataset(str(lake_marts / "deleted_issues")).to_table().to_pylist()
    states = {r["issue_id"]: r["state"] for r in deleted}
    assert states == {int(closed): "out_of_scope", int(stored[1]["id"]): "deleted"}
    current = set(ds.dataset(str(lake_marts / "issues_current")).to_table().column("issue_id").to_pylist())
    assert current == {r["id"] for r in stored[2:]}
