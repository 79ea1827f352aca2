"""The raw asset checks, each made to fail on bad data and pass on good data.

A stand-in asset takes the raw asset's key and writes a hand-built table through the real Parquet IO manager;
the real check definition then reads it back, exactly as in production.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from jira_assets.catalog import get
from jira_assets.defs.checks import CHECKED_OBJECTS, build_raw_checks, check_names
from jira_assets.defs.partitions import incremental_partitions, snapshot_partitions
from jira_assets.defs.raw import raw_key
from jira_assets.defs.resources import JiraCloudResource
from jira_assets.parquet.io_manager import ParquetIOManager
from jira_assets.parquet.stream import PartitionedOutput

TS = pa.timestamp("ms", tz="UTC")
DAY = "2026-03-05"


class Stand:
    """A stand-in raw asset whose next output is whatever table the test puts in `table`."""

    def __init__(self, name: str, downstream: bool = False) -> None:
        obj = get(name) if name != "issue_id_census" else None
        partitions = incremental_partitions if obj is not None and obj.incremental else snapshot_partitions
        self.table: pa.Table | dict[str, pa.Table] | None = None  # a dict: one table per day of a range run

        @dg.asset(key=raw_key(name), partitions_def=partitions, io_manager_key="parquet_io_manager")
        def stand_in() -> Any:
            if isinstance(self.table, dict):  # a value that is an exception fails that day of the range
                return PartitionedOutput({day: (lambda t=table: _table_or_raise(t))
                                          for day, table in self.table.items()})
            return self.table

        self.assets: list[Any] = [stand_in]
        if downstream:
            @dg.asset(key=["jira", "marts", "downstream"], deps=[stand_in], partitions_def=partitions)
            def downstream_asset() -> None:
                return None

            self.assets.append(downstream_asset)
        self.checks = build_raw_checks(next(o for o in CHECKED_OBJECTS if o.name == name))


def _table_or_raise(table: pa.Table | Exception) -> pa.Table:
    if isinstance(table, Exception):
        raise table
    return table


@pytest.fixture
def run(tmp_path):
    instance = dg.DagsterInstance.ephemeral()

    def materialize(stand: Stand, table: pa.Table | dict[str, pa.Table], jira: Any = None, partition: str = DAY):
        """One partition, or for a dict of tables one run over their range of days, as a backfill makes."""
        stand.table = table
        resources = {"parquet_io_manager": ParquetIOManager(base_path=str(tmp_path / "lake"))}
        if jira is not None:
            resources["jira"] = jira
        where: dict[str, Any] = {"partition_key": partition}
        if isinstance(table, dict):
            where = {"tags": {"dagster/asset_partition_range_start": min(table),
                              "dagster/asset_partition_range_end": max(table)}}
        result = dg.materialize([*stand.assets, stand.checks], instance=instance, resources=resources,
                                raise_on_error=False, **where)
        return result, {e.check_name: e for e in result.get_asset_check_evaluations()}

    materialize.instance = instance

    return materialize


def projects(ids: list) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), "name": [f"p{i}" for i in range(len(ids))]})


def test_a_primary_key_stored_twice_fails_the_blocking_check_and_stops_downstream(run):
    stand = Stand("projects", downstream=True)
    result, checks = run(stand, projects(["1", "2", "2"]))
    assert not checks["primary_key_unique"].passed
    assert checks["primary_key_unique"].metadata["duplicated_keys"].value == 1
    assert not any(e.asset_key.path[-1] == "downstream" for e in result.get_asset_materialization_events())

    result, checks = run(stand, projects(["1", "2", "3"]))
    assert checks["primary_key_unique"].passed
    assert any(e.asset_key.path[-1] == "downstream" for e in result.get_asset_materialization_events())


def test_uniqueness_is_over_the_whole_composite_key():
    def changelog(items: list[tuple]) -> pa.Table:
        issue, history, index = zip(*items)
        return pa.table({"issue_id": list(issue), "history_id": list(history), "item_index": list(index)})

    from jira_assets.marts.quality import duplicate_keys

    key = get("issue_changelogs").primary_key
    assert (
        duplicate_keys(changelog([("1", "10", 0), ("1", "10", 1), ("1", "11", 0)]), key).duplicated_keys == 0
    )
    report = duplicate_keys(changelog([("1", "10", 0), ("1", "10", 0), ("2", "10", 0)]), key)
    assert (report.duplicated_keys, report.duplicate_rows, report.examples) == (1, 1, [("1", "10", 0)])


def test_a_null_or_missing_primary_key_fails_the_not_null_check(run):
    stand = Stand("projects")
    _, checks = run(stand, projects(["1", None]))
    assert not checks["primary_key_not_null"].passed
    assert checks["primary_key_not_null"].metadata["null_counts"].value == {"id": 1}
    _, checks = run(stand, pa.table({"name": ["no id column"]}))
    assert not checks["primary_key_not_null"].passed
    _, checks = run(stand, projects(["1", "2"]))
    assert checks["primary_key_not_null"].passed


def test_an_object_without_a_key_must_hold_a_single_row(run):
    stand = Stand("server_info")
    assert check_names(get("server_info"))[0] == "single_row"
    _, checks = run(stand, pa.table({"version": ["1001.0", "1001.0"]}))
    assert not checks["single_row"].passed
    _, checks = run(stand, pa.table({"version": ["1001.0"]}))
    assert checks["single_row"].passed


def test_a_column_added_or_retyped_since_the_previous_materialization_is_reported_as_a_warning(run):
    stand = Stand("projects")
    _, checks = run(stand, projects(["1"]))
    assert checks["schema_unchanged"].passed  # nothing to compare with yet
    _, checks = run(stand, projects(["1", "2"]), partition="2026-03-06")
    assert checks["schema_unchanged"].passed  # same columns, another partition
    _, checks = run(stand, projects(["1"]).append_column("lead", pa.array(["a"])), partition="2026-03-07")
    schema_check = checks["schema_unchanged"]
    assert not schema_check.passed and schema_check.severity == dg.AssetCheckSeverity.WARN
    assert schema_check.metadata["added"].value == ["lead"]
    retyped = pa.table({"id": pa.array([1], pa.int64()), "name": ["p"], "lead": ["a"]})
    _, checks = run(stand, retyped, partition="2026-03-08")
    assert checks["schema_unchanged"].metadata["type_changed"].value == {"id": "string -> int64"}
    assert checks["primary_key_unique"].passed  # a warning does not hold the other checks


class FakeClient:
    def __init__(self, count: int, posted: list) -> None:
        self.count, self.posted = count, posted

    def post_json(self, path: str, body: dict) -> dict:
        self.posted.append((path, body))
        return {"count": self.count}


POSTED: list = []


class CountingJira(JiraCloudResource):
    jira_count: int = 0

    def get_client(self):  # noqa: D102 - a fake Jira that only counts
        return FakeClient(self.jira_count, POSTED)


def stored_issues(updated: list[str], extracted: str) -> pa.Table:
    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)

    return pa.table({"id": pa.array(range(1, len(updated) + 1), pa.int64()),
                     "updated": pa.array([at(u) for u in updated], TS),
                     "_extracted_at": pa.array([at(extracted)] * len(updated), TS)})


def test_fewer_issues_stored_than_jira_counts_for_the_window_fails_the_count_check(run):
    stand = Stand("issues")
    # extracted at 12:30:40; an issue updated at 12:31 (during the extraction) is outside the compared window
    table = stored_issues(["2026-03-05T01:00", "2026-03-05T09:00", "2026-03-05T12:31"], "2026-03-05T12:30:40")
    POSTED.clear()
    _, checks = run(stand, table, CountingJira(site_url="https://example.atlassian.net", jira_count=2))
    assert checks["count_matches_jira"].passed
    path, body = POSTED[-1]
    assert path == "/rest/api/2/search/approximate-count"
    start_ms = int(dt.datetime(2026, 3, 5, tzinfo=dt.timezone.utc).timestamp() * 1000)
    until_ms = int(dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)
    assert body == {"jql": f"updated >= {start_ms} AND updated < {until_ms}"}

    _, checks = run(stand, table, CountingJira(site_url="https://example.atlassian.net", jira_count=3))
    count = checks["count_matches_jira"]
    assert (
        not count.passed
        and count.metadata["missing"].value == 1
        and count.metadata["stored_count"].value == 2
    )


def test_every_raw_asset_and_the_census_have_their_checks():
    from jira_assets.defs.checks import raw_checks
    from jira_assets.defs.raw import raw_assets

    checked = {key.asset_key for c in raw_checks for key in c.check_keys}
    assert checked == {a.key for a in raw_assets} | {raw_key("issue_id_census")}
    blocking = {(k.asset_key.path[-1], k.name) for c in raw_checks for k in c.check_keys
                if c.get_spec_for_check_key(k).blocking}
    assert ("issues", "primary_key_unique") in blocking and ("issues", "primary_key_not_null") in blocking
    assert ("issues", "schema_unchanged") not in blocking


def test_an_empty_partition_of_today_is_compared_until_the_run_that_wrote_it_began(run):
    stand = Stand("issues")
    today = dt.datetime.now(dt.timezone.utc).date()
    empty = stored_issues([], "2026-03-05T00:00")
    POSTED.clear()
    before_ms = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    _, checks = run(stand, empty, CountingJira(site_url="https://example.atlassian.net", jira_count=0),
                    partition=today.isoformat())
    assert checks["count_matches_jira"].passed
    if POSTED:  # (at 00:00 UTC the compared window is empty and nothing is asked)
        until_ms = int(POSTED[-1][1]["jql"].rsplit("updated < ", 1)[1])
        assert until_ms <= before_ms + 60_000  # not the end of today: issues updated later are not ours yet
    _, checks = run(stand, empty, CountingJira(site_url="https://example.atlassian.net", jira_count=1),
                    partition=today.isoformat())
    assert checks["count_matches_jira"].passed == (not POSTED)


def comments(ids: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.int64()), "body": [f"c{i}" for i in ids]})


def check_status(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> dict[str, list[str]]:
    """{status: days} of one check, as the UI and the automation condition read it."""
    state = instance.event_log_storage.get_asset_check_state([(key, incremental_partitions)])[key]
    return {status.value: sorted(subset.subset_value.get_partition_keys())
            for status, subset in state.subsets.items() if not subset.is_empty}


def test_a_range_run_checks_each_day_on_its_own_and_a_duplicate_day_blocks_downstream(run):
    stand = Stand("issue_comments", downstream=True)
    # Comment 2 was edited while the run went from one day to the next: stored in two days, once in each, which
    # is right. Comment 4 is stored twice within one day, which is wrong.
    result, _ = run(stand, {"2026-03-05": comments([1, 2]), "2026-03-06": comments([2, 3]),
                            "2026-03-07": comments([4, 4, 5])})
    unique = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == "primary_key_unique"}
    assert {day: e.passed for day, e in unique.items()} == {"2026-03-05": True, "2026-03-06": True,
                                                            "2026-03-07": False}
    assert unique["2026-03-07"].metadata["examples"].value == [4]
    assert check_status(run.instance, dg.AssetCheckKey(raw_key("issue_comments"), "primary_key_unique")) == {
        "SUCCEEDED": ["2026-03-05", "2026-03-06"], "FAILED": ["2026-03-07"]}
    assert not any(e.asset_key.path[-1] == "downstream" for e in result.get_asset_materialization_events())


def test_a_range_run_compares_each_days_schema_with_the_run_before_it(run):
    stand = Stand("issue_comments")
    days = ["2026-03-05", "2026-03-06"]
    first, _ = run(stand, {day: comments([1]) for day in days})
    second, _ = run(stand, {day: comments([1]).append_column("author", pa.array(["a"])) for day in days})
    schema = {run_: {e.partition: e for e in r.get_asset_check_evaluations() if e.check_name == "schema_unchanged"}
              for run_, r in (("first", first), ("second", second))}
    assert {day: e.passed for day, e in schema["first"].items()} == {day: True for day in days}
    assert {day: (e.passed, e.metadata["added"].value) for day, e in schema["second"].items()} == {
        day: (False, ["author"]) for day in days}


def schema_results(result) -> dict[str, tuple[bool, list, list]]:
    return {e.partition: (e.passed, e.metadata["added"].value, e.metadata["removed"].value)
            for e in result.get_asset_check_evaluations() if e.check_name == "schema_unchanged"}


def test_a_range_longer_than_a_backfill_run_compares_every_day_with_the_run_before_it(run):
    stand = Stand("issue_comments")
    days = [(dt.date(2026, 3, 1) + dt.timedelta(days=n)).isoformat() for n in range(13)]  # > JIRA_DAYS_PER_RUN
    run(stand, {day: comments([1]) for day in days})
    second, _ = run(stand, {day: comments([1]).append_column("author", pa.array(["a"])) for day in days})
    assert schema_results(second) == {day: (False, ["author"], []) for day in days}


def test_a_change_brought_by_a_run_that_failed_is_reported_by_the_next_run_that_is_checked(run):
    """The days a failed run wrote are recorded, but its checks never ran: the next run compares with the last
    run that was checked, so a column the failed run dropped is still reported."""
    stand = Stand("issue_comments")
    days = ["2026-03-05", "2026-03-06"]
    with_author = comments([1]).append_column("author", pa.array(["a"]))
    run(stand, {day: with_author for day in days})
    failed, _ = run(stand, {"2026-03-05": comments([1]), "2026-03-06": RuntimeError("Jira went away")})
    assert not failed.success and failed.get_asset_check_evaluations() == []
    third, _ = run(stand, {day: comments([1]) for day in days})
    assert schema_results(third) == {day: (False, [], ["author"]) for day in days}


def test_a_partition_damaged_past_its_footer_fails_the_checks_in_one_line_naming_the_file(run, tmp_path):
    stand = Stand("projects")
    run(stand, projects([str(n) for n in range(200)]))
    part = tmp_path / "lake" / "jira" / "raw" / "projects" / f"date={DAY}" / "part-00000.parquet"
    data = part.read_bytes()
    part.write_bytes(data[:4] + bytes((b * 7 + 13) % 256 for b in data[4:len(data) // 2]) + data[len(data) // 2:])
    result, _ = run(stand, None)  # the stand-in writes nothing: the checks read the damaged file
    [failure] = result.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert failure.step_key == "projects_checks"
    assert f"projects primary_key_unique: cannot read {part}: not a readable Parquet file (" in message
