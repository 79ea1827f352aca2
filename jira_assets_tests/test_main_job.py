"""The main job: every asset materialized through Dagster against the simulator, compared with ground truth."""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import dagster as dg
import pyarrow.dataset as ds

from jira_assets.catalog import OBJECTS, JiraObject, get

SNAPSHOTS = [o for o in OBJECTS if not o.incremental]


def _dig(record: Any, dotted: str) -> Any:
    for step in dotted.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(step)
    return record


def expected_keys(obj: JiraObject, records: Iterable[dict]) -> set[tuple]:
    """Primary keys computed straight from the simulator's records, independently of the converter."""
    sources = {c.name: (c.source or c.name) for c in obj.columns}
    keys = set()
    for record in records:
        if obj.name == "labels":
            keys.add((str(record),))
        elif obj.name == "workflow_scheme_project_associations":
            scheme = record.get("workflowScheme") or {}
            for project_id in record.get("projectIds", []):
                keys.add((str(project_id), None if scheme.get("id") is None else str(scheme["id"])))
        else:
            keys.add(tuple(None if (v := _dig(record, sources[k])) is None else str(v) for k in obj.primary_key))
    return keys


def stored_keys(lake, obj: JiraObject, partition: str) -> list[tuple]:
    path = lake / "jira" / "raw" / obj.name / f"date={partition}"
    table = ds.dataset(str(path), format="parquet").to_table(columns=list(obj.primary_key))
    columns = [table.column(k).to_pylist() for k in obj.primary_key]
    return [tuple(None if v is None else str(v) for v in row) for row in zip(*columns)]


def _materialize(partition: str, selection=None) -> dg.ExecuteInProcessResult:
    from jira_assets.definitions import defs

    d = defs()
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(assets, partition_key=partition, resources=d.resources, selection=selection,
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_every_snapshot_asset_lands_with_exactly_the_simulators_rows(simulator, jira_env):
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    result = _materialize(today, selection=[dg.AssetKey(["jira", "raw", o.name]) for o in SNAPSHOTS])
    failures = {e.step_key: e.event_specific_data.error.message for e in result.get_step_failure_events()}
    assert failures == {}
    for obj in SNAPSHOTS:
        got = stored_keys(jira_env, obj, today)
        if obj.primary_key:
            assert len(got) == len(set(got)), f"{obj.name} has duplicate primary keys"
            assert set(got) == expected_keys(obj, simulator.truth.records(obj.name)), obj.name
        else:
            path = jira_env / "jira" / "raw" / obj.name / f"date={today}"
            assert ds.dataset(str(path), format="parquet").count_rows() == 1, obj.name  # singletons: one row


def test_issue_partitions_hold_exactly_the_issues_updated_that_utc_day_and_all_their_children(simulator, jira_env):
    # the seeded data is dated relative to now: take the busiest recent finished day, not a fixed offset
    def bounds(day):
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
        return start, start + dt.timedelta(days=1)

    today = dt.datetime.now(dt.timezone.utc).date()
    day = max((today - dt.timedelta(days=back) for back in range(1, 8)),
              key=lambda d: len(simulator.truth.issues(updated_from=bounds(d)[0], updated_to=bounds(d)[1])))
    start, end = bounds(day)
    result = _materialize(day.isoformat(), selection=[
        dg.AssetKey(["jira", "raw", n]) for n in ("issues", "issue_comments", "issue_changelogs", "issue_worklogs")
    ])
    assert not result.get_step_failure_events()
    truth = simulator.truth.issues(updated_from=start, updated_to=end)
    assert truth, "the seeded data should have issues updated on that day"
    issue_ids = sorted(k[0] for k in stored_keys(jira_env, get("issues"), day.isoformat()))
    assert issue_ids == sorted(str(i["id"]) for i in truth)

    comment_ids = stored_keys(jira_env, get("issue_comments"), day.isoformat())
    expected_comments = {(str(c["id"]),) for i in truth for c in simulator.truth.comments(i["id"])}
    assert len(comment_ids) == len(expected_comments) and set(comment_ids) == expected_comments

    changelog_keys = stored_keys(jira_env, get("issue_changelogs"), day.isoformat())
    expected_items = sum(len(h.get("items", [])) for i in truth for h in simulator.truth.changelog(i["id"]))
    assert len(changelog_keys) == len(set(changelog_keys)) == expected_items


def test_a_run_over_a_range_of_days_writes_each_day_as_its_own_partition_equal_to_ground_truth(simulator, jira_env):
    """A backfill run covers up to JIRA_DAYS_PER_RUN days: one step per asset, each day written on its own."""
    from jira_assets.definitions import defs

    today = dt.datetime.now(dt.timezone.utc).date()
    days = [(today - dt.timedelta(days=back)).isoformat() for back in (4, 3, 2)]
    names = ("issues", "issue_comments", "issue_changelogs", "issue_worklogs")
    d = defs()
    instance = dg.DagsterInstance.ephemeral()
    issue_checks = next(c for c in d.asset_checks if c.node_def.name == "issues_checks")
    result = dg.materialize([*(a for a in d.assets if isinstance(a, dg.AssetsDefinition)), issue_checks],
                            resources=d.resources, instance=instance,
                            selection=[dg.AssetKey(["jira", "raw", n]) for n in names],
                            tags={"dagster/asset_partition_range_start": days[0],
                                  "dagster/asset_partition_range_end": days[-1]}, raise_on_error=False)
    assert not result.get_step_failure_events()
    assert len(result.get_step_success_events()) == len(names) + 1  # one step per asset (and checks), 3 days
    checks = {(e.asset_check_key.name, e.partition): e for e in result.get_asset_check_evaluations()}
    names_checked = ("primary_key_unique", "primary_key_not_null", "schema_unchanged", "count_matches_jira")
    assert {key: c.passed for key, c in checks.items()} == {(n, day): True for n in names_checked for day in days}
    for day in days:  # each day is counted against Jira over its own window
        assert checks[("count_matches_jira", day)].metadata["window_start"].value.startswith(day)
    found_any = 0
    for day in days:
        start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.timezone.utc)
        truth = simulator.truth.issues(updated_from=start, updated_to=start + dt.timedelta(days=1))
        stored = sorted(k[0] for k in stored_keys(jira_env, get("issues"), day))
        assert stored == sorted(str(i["id"]) for i in truth), day
        comments = set(stored_keys(jira_env, get("issue_comments"), day))
        assert comments == {(str(c["id"]),) for i in truth for c in simulator.truth.comments(i["id"])}, day
        found_any += len(truth)
        # each day's materialization carries that day's own row count, not the run's total
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["jira", "raw", "issues"]), asset_partitions=[day]),
            limit=1).records[0]
        metadata = record.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == len(truth), day
        assert metadata["dagster/uri"].value.rstrip("/").endswith(f"date={day}")
    assert found_any > 0  # not a vacuous comparison


def test_a_day_fetched_by_parallel_workers_lists_its_ids_once_then_asks_only_for_full_pages(
        simulator, jira_env, monkeypatch):
    """JIRA_WINDOW_SPLITS > 1: one id-only listing of the day, then pages of exactly the page size (the last one
    excepted), fetched concurrently. Sub-windows of time would each end in a part-empty page."""
    import math

    page = 3
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", "4")
    monkeypatch.setenv("JIRA_ISSUE_PAGE_SIZE", str(page))
    today = dt.datetime.now(dt.timezone.utc).date()

    def start_of(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)

    day = max((today - dt.timedelta(days=back) for back in range(1, 8)),
              key=lambda d: len(simulator.truth.issues(updated_from=start_of(d),
                                                       updated_to=start_of(d) + dt.timedelta(days=1))))
    start, end = start_of(day), start_of(day) + dt.timedelta(days=1)
    truth = simulator.truth.issues(updated_from=start, updated_to=end)
    # the search re-reads the 5 minutes before the day (rows outside it are dropped), so those ids are listed too
    listed = simulator.truth.issues(updated_from=start - dt.timedelta(minutes=5), updated_to=end)
    assert len(truth) > 2 * page, "the day needs several pages for this test to mean anything"

    before = simulator.stats()["requests_by_route"].get("POST /rest/api/2/search/jql", 0)
    result = _materialize(day.isoformat(), selection=[dg.AssetKey(["jira", "raw", "issues"])])
    assert not result.get_step_failure_events()
    searches = simulator.stats()["requests_by_route"]["POST /rest/api/2/search/jql"] - before

    stored = stored_keys(jira_env, get("issues"), day.isoformat())
    assert sorted(k[0] for k in stored) == sorted(str(i["id"]) for i in truth)
    assert len(stored) == len(set(stored))
    assert searches == 1 + math.ceil(len(listed) / page)


def test_a_day_without_issues_fetched_by_parallel_workers_is_an_empty_typed_partition(
        simulator, jira_env, monkeypatch):
    """A quiet day (a weekend, today just after midnight) lists no id: nothing to fetch, nothing to fail."""
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", "4")
    today = dt.datetime.now(dt.timezone.utc).date()
    day = next(today - dt.timedelta(days=back) for back in range(60, 300)
               if not simulator.truth.issues(
                   updated_from=dt.datetime.combine(today - dt.timedelta(days=back + 1), dt.time(),
                                                    tzinfo=dt.timezone.utc),
                   updated_to=dt.datetime.combine(today - dt.timedelta(days=back - 1), dt.time(),
                                                  tzinfo=dt.timezone.utc)))
    before = simulator.stats()["requests_by_route"].get("POST /rest/api/2/search/jql", 0)
    result = _materialize(day.isoformat(), selection=[dg.AssetKey(["jira", "raw", "issues"])])
    assert [e.event_specific_data.error.message for e in result.get_step_failure_events()] == []
    assert simulator.stats()["requests_by_route"]["POST /rest/api/2/search/jql"] - before == 1  # the listing
    stored = ds.dataset(str(jira_env / "jira" / "raw" / "issues" / f"date={day}"), format="parquet")
    assert stored.count_rows() == 0 and {"id", "key", "updated"} <= set(stored.schema.names)


def test_a_failed_page_of_a_parallel_day_fails_the_step_naming_jira_and_sends_no_queued_page(
        simulator, jira_env, monkeypatch):
    monkeypatch.setenv("JIRA_WINDOW_SPLITS", "2")
    monkeypatch.setenv("JIRA_ISSUE_PAGE_SIZE", "1")  # a page per issue: many pages queued behind 2 workers
    today = dt.datetime.now(dt.timezone.utc).date()
    starts = [dt.datetime.combine(today - dt.timedelta(days=back), dt.time(), tzinfo=dt.timezone.utc)
              for back in range(1, 8)]
    start = max(starts, key=lambda s: len(simulator.truth.issues(updated_from=s, updated_to=s + dt.timedelta(1))))
    pages = len(simulator.truth.issues(updated_from=start - dt.timedelta(minutes=5),
                                       updated_to=start + dt.timedelta(days=1)))
    assert pages >= 8
    # the id listing and the first page pass; the second page gets Jira's 400 (not retried)
    simulator.script(r"/search/jql$", [(200, {}), (200, {}),
                                       (400, {}, {"errorMessages": ["The value 'x' does not exist."], "errors": {}})])
    before = simulator.stats()["requests_by_route"].get("POST /rest/api/2/search/jql", 0)
    result = _materialize(start.date().isoformat(), selection=[dg.AssetKey(["jira", "raw", "issues"])])
    searches = simulator.stats()["requests_by_route"]["POST /rest/api/2/search/jql"] - before

    failures = [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    assert len(failures) == 1 and "The value 'x' does not exist." in failures[0]
    assert searches <= 1 + 2 + 2  # the listing, the pages the two workers were on, and at most one more each
    assert not (jira_env / "jira" / "raw" / "issues" / f"date={start.date().isoformat()}").exists()
