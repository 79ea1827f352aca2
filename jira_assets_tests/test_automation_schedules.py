"""Schedules, the marts' automation condition and the raw freshness policies, evaluated at pinned times."""
from __future__ import annotations

import datetime as dt
import importlib

import dagster as dg
import pytest

from jira_assets.catalog import OBJECTS
from jira_assets.defs import automation

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from jira_assets.definitions import defs

    return defs()


def evaluate(
    definitions: dg.Definitions, schedule: dg.ScheduleDefinition, at: dt.datetime
) -> list[dg.RunRequest]:
    with dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral(), scheduled_execution_time=at,
                                   repository_def=definitions.get_repository_def()) as context:
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_the_incremental_schedule_refreshes_today_and_yesterday_every_hour(definitions):
    assert automation.jira_incremental_refresh.cron_schedule == "0 * * * *"
    requests = evaluate(
        definitions, automation.jira_incremental_refresh, dt.datetime(2026, 11, 6, 0, 0, tzinfo=UTC)
    )
    assert [r.partition_key for r in requests] == ["2026-11-05", "2026-11-06"]
    assert len({r.run_key for r in requests}) == 2


def test_on_the_first_day_of_history_there_is_no_yesterday_to_refresh(definitions):
    requests = evaluate(
        definitions, automation.jira_incremental_refresh, dt.datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    )
    assert [r.partition_key for r in requests] == ["2026-01-01"]


def test_the_snapshot_schedule_captures_today_once_a_day(definitions):
    assert automation.jira_snapshot_refresh.cron_schedule == "0 2 * * *"
    requests = evaluate(
        definitions, automation.jira_snapshot_refresh, dt.datetime(2026, 11, 6, 2, 0, tzinfo=UTC)
    )
    assert [r.partition_key for r in requests] == ["2026-11-06"]


def test_the_refresh_interval_is_set_from_the_environment(monkeypatch):
    monkeypatch.setenv("JIRA_REFRESH_CRON", "*/15 * * * *")
    monkeypatch.setenv("JIRA_SNAPSHOT_CRON", "30 5 * * *")
    monkeypatch.setenv("JIRA_CHANGE_SENSOR_SECONDS", "60")
    try:
        reloaded = importlib.reload(automation)
        assert reloaded.jira_incremental_refresh.cron_schedule == "*/15 * * * *"
        assert reloaded.jira_snapshot_refresh.cron_schedule == "30 5 * * *"
        assert reloaded.jira_issue_changes.minimum_interval_seconds == 60
        monkeypatch.setenv("JIRA_CHANGE_SENSOR_SECONDS", "soon")
        with pytest.raises(ValueError, match="JIRA_CHANGE_SENSOR_SECONDS"):
            importlib.reload(automation)
    finally:
        monkeypatch.undo()
        importlib.reload(automation)


def test_schedules_and_sensor_ship_stopped_and_jobs_select_by_mode(definitions):
    d = definitions
    for name in ("jira_incremental_refresh", "jira_snapshot_refresh"):
        assert d.get_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED
    assert d.get_sensor_def("jira_issue_changes").default_status == dg.DefaultSensorStatus.STOPPED
    graph = d.resolve_asset_graph()
    incremental = automation.INCREMENTAL.resolve(graph)
    assert {k.path[-1] for k in incremental} == {o.name for o in OBJECTS if o.incremental}
    snapshots = automation.SNAPSHOTS.resolve(graph)
    assert {k.path[-1] for k in snapshots} == {o.name for o in OBJECTS if not o.incremental} | {
        "issue_id_census"
    }


def test_raw_assets_have_freshness_policies_and_marts_follow_their_upstreams(definitions):
    graph = definitions.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key.path[1] == "raw":
            policy = node.freshness_policy
            expected = automation.INCREMENTAL_FRESHNESS if node.tags.get("jira/mode") == "incremental" \
                else automation.SNAPSHOT_FRESHNESS
            assert policy == expected, key
        else:
            assert node.automation_condition == automation.MART_AUTOMATION, key


# ---- the marts' automation condition, on a raw stand-in with a blocking check ------------------------------

def automation_defs(bad: set[str]) -> dg.Definitions:
    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)

    @dg.asset(
        key=["jira", "raw", "issues"],
        partitions_def=daily,
        check_specs=[
            dg.AssetCheckSpec(
                "primary_key_unique", asset=["jira", "raw", "issues"], blocking=True, partitions_def=daily
            )
        ],
    )
    def issues(context):
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="primary_key_unique", passed=context.partition_key not in bad)

    @dg.asset(
        key=["jira", "marts", "issues_current"],
        automation_condition=automation.MART_AUTOMATION,
        ins={"issues": dg.AssetIn(key=["jira", "raw", "issues"], partition_mapping=dg.AllPartitionMapping())},
    )
    def issues_current(issues):
        return 1

    return dg.Definitions(assets=[issues, issues_current], resources={"io_manager": dg.mem_io_manager})


def test_a_mart_is_requested_when_a_raw_partition_lands_even_though_most_days_are_missing():
    bad: set[str] = set()
    defs = automation_defs(bad)
    instance = dg.DagsterInstance.ephemeral()
    at = dt.datetime(2026, 12, 3, 12, tzinfo=UTC)
    mart = dg.AssetKey(["jira", "marts", "issues_current"])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at)
    assert result.total_requested == 0

    dg.materialize(defs.assets[:1], partition_key="2026-12-02", instance=instance)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                               evaluation_time=at + dt.timedelta(minutes=1))
    assert result.get_requested_partitions(mart) == {None}


def test_a_mart_is_held_while_an_upstream_partition_fails_a_blocking_check():
    bad = {"2026-12-03"}
    defs = automation_defs(bad)
    instance = dg.DagsterInstance.ephemeral()
    at = dt.datetime(2026, 12, 3, 12, tzinfo=UTC)
    mart = dg.AssetKey(["jira", "marts", "issues_current"])
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at).cursor
    dg.materialize(defs.assets[:1], partition_key="2026-12-03", instance=instance, raise_on_error=False)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                               evaluation_time=at + dt.timedelta(minutes=1))
    assert result.get_requested_partitions(mart) == set()

    bad.clear()  # the partition is re-extracted and now passes
    dg.materialize(defs.assets[:1], partition_key="2026-12-03", instance=instance)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor,
                                               evaluation_time=at + dt.timedelta(minutes=2))
    assert result.get_requested_partitions(mart) == {None}
