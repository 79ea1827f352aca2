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
    cursor = tick(resource, None).cursor
    sim.clock.advance(60)
    first = sim.mutate.update_issue("10003", summary="one")
    sim.clock.advance(25 * 3600)
    second = sim.mutate.update_issue("10004", summary="two")
    assert day_of(first) != day_of(second)
    result = tick(resource, cursor)
    assert sorted(r.partition_key for r in result.run_requests) == sorted([day_of(first), day_of(second)])


def test_a_bulk_edit_larger_than_a_tick_is_read_over_several_ticks_and_the_cursor_moves_on(jira, monkeypatch):
    """More changes inside the look-back window than one tick reads (20 pages): the next tick goes on from
    where the last stopped (it once re-read the same first pages forever and never saw a later change)."""
    sim, resource = jira
    monkeypatch.setenv("JIRA_CHANGE_SENSOR_PAGE_SIZE", "1")
    cursor = tick(resource, None).cursor
    sim.clock.advance(60)
    bulk = [i["id"] for i in sim.truth.issues()]
    assert len(bulk) > 30
    for issue_id in bulk:
        sim.mutate.update_issue(issue_id, summary="bulk edit")  # at one instant, more than 20 pages of 1
    requested = 0
    for _ in range(4):
        result = tick(resource, cursor)
        cursor = result.cursor
        requested += sum(int(r.tags["jira/changed_issues"]) for r in result.run_requests)
    assert requested == len(bulk)
    sim.clock.advance(600)
    later = sim.mutate.update_issue(bulk[0], summary="ten minutes later")
    requests = []
    for _ in range(4):  # the look-back window (2 min) still holds more than a tick reads: it takes two
        result = tick(resource, cursor)
        cursor = result.cursor
        requests += [(r.partition_key, r.tags["jira/changed_issues"]) for r in result.run_requests]
    assert requests == [(day_of(later), "1")]


def test_an_issue_updated_in_the_future_does_not_carry_the_cursor_away(jira):
    sim, resource = jira
    cursor = tick(resource, None).cursor
    far = dt.datetime(2099, 1, 1, tzinfo=UTC)
    sim.mutate.update_issue(sim.truth.issues()[1]["id"], at=far, summary="imported with a wrong date")
    result = tick(resource, cursor)
    assert result.run_requests == []
    assert ChangeCursor.parse(result.cursor).high_water_ms < int(far.timestamp() * 1000)
    sim.clock.advance(60)
    real = sim.mutate.update_issue(sim.truth.issues()[2]["id"], summary="a real change")
    result = tick(resource, result.cursor)
    assert [r.partition_key for r in result.run_requests] == [day_of(real)]


def test_a_cursor_edited_by_hand_starts_again_from_jiras_clock(jira):
    sim, resource = jira
    for bad in ("not json", '{"handled": []}', "[1, 2]", '{"high_water_ms": "soon"}'):
        result = tick(resource, bad)
        assert result.run_requests == []
        assert ChangeCursor.parse(result.cursor).high_water_ms == sim.clock.now_ms()


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
