"""The change sensor evaluated tick by tick against the simulator, whose clock the tests advance.

Each tick gets a fresh sensor context holding only the previous tick's cursor string, which is exactly what
the daemon does after a restart: the cursor is the only state that survives.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from jira_assets.defs.automation import ChangeCursor, jira_issue_changes
from jira_assets.demo import demo_environment

UTC = dt.timezone.utc


def day_of(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC).date().isoformat()


@pytest.fixture
def jira(tmp_path, monkeypatch):
    from jira_assets.defs.resources import jira_resource_from_env
    from jira_assets.simulator import Simulator, SimulatorConfig

    start = dt.datetime.now(UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    with Simulator(
        SimulatorConfig(seed=5, issues=40, days=2, start=start.isoformat(), frozen_clock=True)
    ) as sim:
        env = demo_environment(sim.info(), str(tmp_path / "lake"), tmp_path, "2026-01-01")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield sim, jira_resource_from_env()


def tick(resource, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor,
                                 resources={"jira": resource}) as context:
        return jira_issue_changes(context)


def searches(sim) -> int:
    return sum(n for route, n in sim.stats()["requests_by_route"].items() if "search/jql" in route)


def test_the_first_tick_starts_at_jiras_clock_and_requests_nothing(jira):
    sim, resource = jira
    result = tick(resource, None)
    assert result.run_requests == []
    assert ChangeCursor.parse(result.cursor).high_water_ms == sim.clock.now_ms()


def test_nothing_changed_requests_nothing_with_one_cheap_search(jira):
    sim, resource = jira
    cursor = tick(resource, None).cursor
    before = searches(sim)
    result = tick(resource, cursor)
    assert result.run_requests == [] and result.skip_reason
    assert searches(sim) - before == 1


def test_an_issue_updated_after_the_cursor_triggers_exactly_its_partition_once(jira):
    sim, resource = jira
    cursor = tick(resource, None).cursor
    sim.clock.advance(60)
    updated = sim.mutate.update_issue("10007", summary="Changed after the cursor")
    result = tick(resource, cursor)
    assert [(r.partition_key, r.tags["jira/changed_issues"]) for r in result.run_requests] == [
        (day_of(updated), "1")
    ]
    assert result.run_requests[0].job_name in (None, "jira_issue_changes")
    assert ChangeCursor.parse(result.cursor).high_water_ms == updated
    # after a restart, with only the cursor: the same change is not requested again
    again = tick(resource, result.cursor)
    assert again.run_requests == []


def test_changes_on_two_utc_days_request_both_partitions_and_no_other(jira):
    sim, resource = jira
    base = sim.clock.now_ms() + 24 * 3600 * 1000  # after every generated update
    cursor = ChangeCursor(base).dump()
    first = sim.mutate.update_issue("10003", at=base + 60_000, summary="one")
    second = sim.mutate.update_issue("10004", at=base + 25 * 3600 * 1000, summary="two")
    assert day_of(first) != day_of(second)
    result = tick(resource, cursor)
    assert sorted(r.partition_key for r in result.run_requests) == sorted([day_of(first), day_of(second)])


def test_an_update_that_becomes_searchable_late_is_still_seen_once(jira):
    sim, resource = jira
    cursor = tick(resource, None).cursor
    sim.clock.advance(120)
    seen = sim.mutate.update_issue("10005", summary="seen at once")
    cursor = tick(resource, cursor).cursor
    # an update stamped 30 s before the cursor's high-water mark (Jira's index is eventually consistent)
    late = sim.mutate.update_issue("10006", at=seen - 30_000, summary="indexed late")
    result = tick(resource, cursor)
    assert [r.partition_key for r in result.run_requests] == [day_of(late)]
    assert tick(resource, result.cursor).run_requests == []


def test_the_sensor_ships_stopped_and_targets_the_issue_family(jira):
    assert jira_issue_changes.default_status == dg.DefaultSensorStatus.STOPPED
    assert jira_issue_changes.job_name == "jira_issue_changes"
