"""ParquetIOManager through real Dagster runs: partitioned streams out, lazy datasets and pandas in."""
import boto3
import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from jira_assets.parquet import ParquetIOManager, PartitionedInput, PartitionedOutput, RecordBatchStream

DAILY = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-04")  # 3 days
ROWS_PER_DAY = {"2026-10-01": 250, "2026-10-02": 0, "2026-10-03": 40}
SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("updated", pa.timestamp("ms", tz="UTC")),
    pa.field("summary", pa.string(), metadata={"description": "Issue summary"}),
])
EVENTS_KEY = dg.AssetKey(["jira", "raw", "events"])


@dg.asset(key=EVENTS_KEY, partitions_def=DAILY, io_manager_key="parquet")
def events(context: dg.AssetExecutionContext) -> RecordBatchStream:
    day = context.partition_key
    requests = []

    def pages():
        count = ROWS_PER_DAY[day]
        for start in range(0, count, 100):
            requests.append(start)
            ids = list(range(start, min(count, start + 100)))
            yield pa.RecordBatch.from_pydict(
                {"id": ids, "updated": [pd.Timestamp(f"{day}T12:00:00Z")] * len(ids),
                 "summary": [f"{day} #{i}" for i in ids]},
                schema=SCHEMA,
            )

    return RecordBatchStream(
        SCHEMA, pages(),
        metadata=lambda: {"jira/requests": len(requests), "jira/child_errors": {"PRJ-9": "403 Forbidden"}},
    )


seen = {}


@dg.asset(partitions_def=DAILY, ins={"events": dg.AssetIn(key=EVENTS_KEY)}, io_manager_key="parquet")
def daily_counts(events: ds.Dataset) -> pd.DataFrame:
    seen["daily_counts"] = events
    return pd.DataFrame({"rows": [events.count_rows()]})


@dg.asset(ins={"events": dg.AssetIn(key=EVENTS_KEY, partition_mapping=dg.AllPartitionMapping())},
          io_manager_key="parquet")
def all_events_frame(events: pd.DataFrame) -> None:
    seen["all_events_frame"] = events


@dg.asset(ins={"events": dg.AssetIn(key=EVENTS_KEY, partition_mapping=dg.AllPartitionMapping())},
          io_manager_key="parquet")
def all_events_dataset(events) -> None:  # no annotation: a lazy dataset
    seen["all_events_dataset"] = events


@dg.asset(ins={"events": dg.AssetIn(key=EVENTS_KEY, partition_mapping=dg.AllPartitionMapping(),
                                    metadata={"allow_missing_partitions": True})},
          io_manager_key="parquet")
def tolerant_summary(events: pd.DataFrame) -> None:
    seen["tolerant_summary"] = events


ALL_ASSETS = [events, daily_counts, all_events_frame, all_events_dataset, tolerant_summary]


def materialize(selection, io_manager, partition_key=None, **kwargs):
    return dg.materialize(
        ALL_ASSETS, selection=selection, partition_key=partition_key,
        resources={"parquet": io_manager}, instance=kwargs.pop("instance"), **kwargs,
    )


def failure_message(result, node):
    """The step's error with its causes: what a user reads in the run log."""
    error, parts = result.failure_data_for_node(node).error, []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_partitioned_stream_lands_with_metadata_and_loads_back_lazily_and_as_pandas(tmp_path, instance):
    io_manager = ParquetIOManager(base_path=str(tmp_path / "lake"))
    for day in DAILY.get_partition_keys():
        result = materialize([events, daily_counts], io_manager, day, instance=instance)
        assert result.success
        metadata = result.asset_materializations_for_node("jira__raw__events")[0].metadata
        assert metadata["dagster/row_count"].value == ROWS_PER_DAY[day]
        assert metadata["dagster/partition_row_count"].value == ROWS_PER_DAY[day]
        assert metadata["dagster/uri"].value == str(tmp_path / "lake/jira/raw/events" / f"date={day}")
        assert metadata["parquet/files"].value == [metadata["dagster/uri"].value + "/part-00000.parquet"]
        assert metadata["parquet/bytes"].value > 0
        assert metadata["jira/requests"].value == -(-ROWS_PER_DAY[day] // 100)
        assert metadata["jira/child_errors"].value == {"PRJ-9": "403 Forbidden"}
        columns = metadata["dagster/column_schema"].schema.columns
        assert [(c.name, c.type) for c in columns] == [
            ("id", "int64"), ("updated", "timestamp[ms, tz=UTC]"), ("summary", "string")]
        assert columns[0].constraints.nullable is False and columns[2].description == "Issue summary"
        # the downstream partition received exactly its own upstream partition, lazily
        assert isinstance(seen["daily_counts"], ds.Dataset)
        assert seen["daily_counts"].count_rows() == ROWS_PER_DAY[day]
    assert (tmp_path / "lake" / "daily_counts" / "date=2026-10-01" / "part-00000.parquet").exists()

    assert materialize([all_events_frame, all_events_dataset], io_manager, instance=instance).success
    frame = seen["all_events_frame"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == sum(ROWS_PER_DAY.values())
    assert frame.groupby("date").size().to_dict() == {"2026-10-01": 250, "2026-10-03": 40}
    assert str(frame["updated"].dtype) == "datetime64[ms, UTC]"
    dataset = seen["all_events_dataset"]
    assert isinstance(dataset, ds.Dataset)
    assert dataset.count_rows(filter=ds.field("date") == "2026-10-03") == 40


def test_missing_upstream_partition_is_a_clear_error_unless_allowed(tmp_path, instance):
    io_manager = ParquetIOManager(base_path=str(tmp_path / "lake"))
    for day in ("2026-10-01", "2026-10-03"):  # 2026-10-02 never materialized
        assert materialize([events], io_manager, day, instance=instance).success

    failed = materialize([all_events_frame], io_manager, instance=instance, raise_on_error=False)
    assert not failed.success
    message = failure_message(failed, "all_events_frame")
    assert "partitions never written: 2026-10-02" in message and "materialize jira/raw/events first" in message

    assert materialize([tolerant_summary], io_manager, instance=instance).success
    assert sorted(seen["tolerant_summary"]["date"].unique()) == ["2026-10-01", "2026-10-03"]


@dg.asset(partitions_def=DAILY, io_manager_key="parquet")
def range_events(context: dg.AssetExecutionContext) -> pa.Table:
    keys = context.partition_keys  # a single-run backfill hands one output several partitions
    return pa.table({"day": keys})


RANGE = {"dagster/asset_partition_range_start": "2026-10-01", "dagster/asset_partition_range_end": "2026-10-03"}


def test_a_range_output_that_is_not_partitioned_output_is_refused_with_a_clear_error(tmp_path, instance):
    io_manager = ParquetIOManager(base_path=str(tmp_path / "lake"))
    result = dg.materialize([range_events], resources={"parquet": io_manager}, instance=instance,
                            raise_on_error=False, tags=RANGE)
    assert not result.success
    message = failure_message(result, "range_events")
    assert "one partition per output" in message and "3 partitions" in message and "PartitionedOutput" in message
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*.parquet"))


produced = []


@dg.asset(partitions_def=DAILY, io_manager_key="parquet")
def day_tables(context: dg.AssetExecutionContext):
    def day(key):
        produced.append(key)  # producers run one at a time, as the IO manager reaches their partition
        if key == context.run.tags.get("fail_on"):
            raise RuntimeError(f"Jira answered nonsense for {key}")
        return pa.table({"day": [key] * ROWS_PER_DAY[key], "run": [context.run.run_id] * ROWS_PER_DAY[key]})

    return PartitionedOutput({key: (lambda key=key: day(key)) for key in context.partition_keys})


@dg.asset(partitions_def=DAILY, io_manager_key="parquet", ins={"day_tables": dg.AssetIn()})
def day_counts(day_tables: PartitionedInput) -> PartitionedOutput:
    def count(data):
        days = sorted(set(data.to_table(columns=["day"]).column(0).to_pylist()))
        return pa.table({"rows": [data.count_rows()], "days": [days]})

    return PartitionedOutput({key: (lambda data=data: count(data)) for key, data in day_tables.items()})


def _days_written(lake, name):
    return {p.parent.name.removeprefix("date="): ds.dataset(str(p.parent), format="parquet").to_table()
            for p in sorted(lake.glob(f"{name}/date=*/part-00000.parquet"))}


def test_a_range_run_writes_each_partition_with_its_own_metadata_and_reads_upstream_per_partition(tmp_path,
                                                                                                    instance):
    lake = tmp_path / "lake"
    result = dg.materialize([day_tables, day_counts], resources={"parquet": ParquetIOManager(base_path=str(lake))},
                            instance=instance, tags=RANGE)
    assert result.success
    tables = _days_written(lake, "day_tables")
    assert {day: t.num_rows for day, t in tables.items()} == ROWS_PER_DAY
    counts = _days_written(lake, "day_counts")  # each downstream partition saw its own upstream partition only
    assert {day: (t.column("rows")[0].as_py(), t.column("days")[0].as_py()) for day, t in counts.items()} == {
        day: (rows, [day] if rows else []) for day, rows in ROWS_PER_DAY.items()}
    for day, rows in ROWS_PER_DAY.items():
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("day_tables"), asset_partitions=[day]), limit=1).records[0]
        metadata = record.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == rows
        assert metadata["dagster/uri"].value.rstrip("/").endswith(f"day_tables/date={day}")


def test_a_range_run_failing_on_one_partition_keeps_the_ones_before_and_leaves_the_ones_after(tmp_path, instance):
    lake = tmp_path / "lake"
    io_manager = ParquetIOManager(base_path=str(lake))
    first = dg.materialize([day_tables], resources={"parquet": io_manager}, instance=instance, tags=RANGE)
    old = {day: t.column("run")[0].as_py() if t.num_rows else None
           for day, t in _days_written(lake, "day_tables").items()}
    failing_day_file = lake / "day_tables" / "date=2026-10-02" / "part-00000.parquet"
    failing_day_stamp = failing_day_file.stat().st_mtime_ns
    produced.clear()
    failed = dg.materialize([day_tables], resources={"parquet": io_manager}, instance=instance,
                            tags={**RANGE, "fail_on": "2026-10-02"}, raise_on_error=False)
    assert first.success and not failed.success
    message = failure_message(failed, "day_tables")
    assert "Jira answered nonsense for 2026-10-02" in message
    assert "day_tables partition 2026-10-02 failed (2026-10-01 written and recorded; " \
           "2026-10-02 .. 2026-10-03 (2 partitions) not recorded)" in message
    assert produced == ["2026-10-01", "2026-10-02"]  # the day after the failure was never fetched
    # Dagster records a step's materializations only when it succeeds: the day already replaced is recorded
    # by the IO manager, with its own metadata, and the others still show the first run's materialization.
    latest = {day: instance.fetch_materializations(dg.AssetRecordsFilter(
        asset_key=dg.AssetKey("day_tables"), asset_partitions=[day]), limit=1).records[0] for day in ROWS_PER_DAY}
    assert {day: record.run_id for day, record in latest.items()} == {
        "2026-10-01": failed.run_id, "2026-10-02": first.run_id, "2026-10-03": first.run_id}
    assert latest["2026-10-01"].asset_materialization.metadata["dagster/row_count"].value == 250
    now = {day: t.column("run")[0].as_py() if t.num_rows else None
           for day, t in _days_written(lake, "day_tables").items()}
    assert now["2026-10-01"] == failed.run_id  # written whole before the failure
    assert now["2026-10-03"] == old["2026-10-03"] == first.run_id
    assert failing_day_file.stat().st_mtime_ns == failing_day_stamp  # the failing day's files are untouched
    assert {day: t.num_rows for day, t in _days_written(lake, "day_tables").items()} == ROWS_PER_DAY


def test_s3_io_manager_writes_with_sse_kms_and_reads_back(s3_server, s3_bucket, instance):
    key_id = "arn:aws:kms:us-east-1:123456789012:key/abcd"
    io_manager = ParquetIOManager(base_path=f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server,
                                  s3_region="us-east-1", sse_kms_key_id=key_id)
    result = materialize([events, daily_counts], io_manager, "2026-10-03", instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("jira__raw__events")[0].metadata
    assert metadata["dagster/uri"].value == f"s3://{s3_bucket}/lake/jira/raw/events/date=2026-10-03/"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    head = client.head_object(Bucket=s3_bucket, Key="lake/jira/raw/events/date=2026-10-03/part-00000.parquet")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_id)
    assert seen["daily_counts"].count_rows() == 40
