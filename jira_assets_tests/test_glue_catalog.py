"""Optional AWS Glue Data Catalog registration, against moto's Glue and S3 over real HTTP.

Every table the IO manager writes to S3 is registered (or updated) as an external Parquet table over its folder,
with `date` as the hive partition key and one Glue partition per written partition; its columns are the Parquet
file's schema mapped to Glue/Hive types. Off by default: without a database no Glue client is ever made.
"""
from __future__ import annotations

import datetime as dt
import uuid

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from jira_assets.demo import demo_environment
from jira_assets.jira.errors import ConfigError
from jira_assets.parquet.glue import GlueCatalog, GlueError, glue_columns, glue_type
from jira_assets.parquet.io_manager import ParquetIOManager
from jira_assets.parquet.store import ParquetStore

UTC = dt.timezone.utc


@pytest.mark.parametrize("arrow, glue", [
    (pa.string(), "string"),
    (pa.large_string(), "string"),
    (pa.int64(), "bigint"),
    (pa.int32(), "int"),
    (pa.int16(), "smallint"),
    (pa.float64(), "double"),
    (pa.float32(), "float"),
    (pa.bool_(), "boolean"),
    (pa.timestamp("ms", tz="UTC"), "timestamp"),
    (pa.date32(), "date"),
    (pa.decimal128(12, 2), "decimal(12,2)"),
    (pa.binary(), "binary"),
    (pa.null(), "string"),
    (pa.list_(pa.string()), "array<string>"),
    (pa.list_(pa.int64()), "array<bigint>"),
    (pa.struct([("Id", pa.int64()), ("tags", pa.list_(pa.string()))]), "struct<id:bigint,tags:array<string>>"),
    (pa.map_(pa.string(), pa.float64()), "map<string,double>"),
    (pa.dictionary(pa.int32(), pa.string()), "string"),
])
def test_arrow_types_map_to_the_glue_hive_types_athena_reads(arrow, glue):
    assert glue_type(arrow) == glue


def test_an_arrow_type_glue_cannot_hold_names_the_column():
    with pytest.raises(GlueError, match="column 'took': Arrow type time64\\[us\\] has no Glue/Hive equivalent"):
        glue_columns(pa.schema([("took", pa.time64("us"))]))


def test_glue_is_off_by_default_and_needs_an_s3_lake(tmp_path, monkeypatch):
    assert ParquetIOManager(base_path=str(tmp_path)).glue is None  # no database: no client, no AWS needed
    from jira_assets.defs.resources import io_manager_from_env

    monkeypatch.setenv("JIRA_LAKE", str(tmp_path))
    monkeypatch.setenv("JIRA_GLUE_DATABASE", "jira_lake")
    with pytest.raises(ConfigError, match="JIRA_GLUE_DATABASE is set but JIRA_LAKE .* is not an s3:// location"):
        io_manager_from_env()
    with pytest.raises(GlueError, match="is not on S3; Glue tables need an s3:// base_path"):
        GlueCatalog("jira_lake").register(["t"], str(tmp_path / "t"), pa.schema([("a", pa.int64())]))
    with pytest.raises(GlueError, match="glue_database 'Jira-Lake': use lower-case letters"):
        GlueCatalog("Jira-Lake")


@pytest.fixture
def glue(s3_server, s3_bucket):
    return boto3.client("glue", endpoint_url=s3_server, region_name="us-east-1")


def database_name() -> str:
    return f"lake_{uuid.uuid4().hex[:10]}"


def parquet_schema(s3_server: str, uri: str) -> pa.Schema:
    fs = pafs.S3FileSystem(endpoint_override=s3_server, scheme="http", region="us-east-1",
                           access_key="testing", secret_key="testing")
    return pq.read_schema(uri.removeprefix("s3://"), filesystem=fs)


def columns(table_or_partition: dict) -> list[tuple[str, str]]:
    return [(c["Name"], c["Type"]) for c in table_or_partition["StorageDescriptor"]["Columns"]]


def test_materialized_raw_assets_become_glue_tables_with_one_partition_per_day(simulator, s3_server, s3_bucket,
                                                                               glue, tmp_path, monkeypatch):
    database = database_name()
    env = demo_environment(simulator.info(), f"s3://{s3_bucket}/lake", tmp_path, "2026-01-01")
    env.pop("JIRA_HISTORY_START")
    env.update({"JIRA_S3_ENDPOINT_URL": s3_server, "AWS_REGION": "us-east-1", "JIRA_GLUE_DATABASE": database,
                "JIRA_GLUE_ENDPOINT_URL": s3_server})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from jira_assets.definitions import defs

    d = defs()
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    today = dt.datetime.now(UTC).date()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in (3, 2)]
    results = [dg.materialize(assets, partition_key=day, resources=d.resources, raise_on_error=False,
                              selection=[dg.AssetKey(["jira", "raw", "issues"])],
                              instance=dg.DagsterInstance.ephemeral()) for day in days]
    for result in results:
        assert not result.get_step_failure_events()

    for name in ("issues",):
        table = glue.get_table(DatabaseName=database, Name=f"jira_raw_{name}")["Table"]
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert table["PartitionKeys"] == [{"Name": "date", "Type": "string"}]
        assert table["StorageDescriptor"]["Location"] == f"s3://{s3_bucket}/lake/jira/raw/{name}/"
        assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        partitions = glue.get_partitions(DatabaseName=database, TableName=f"jira_raw_{name}")["Partitions"]
        assert sorted(p["Values"][0] for p in partitions) == days
        for partition in partitions:
            location = partition["StorageDescriptor"]["Location"]
            assert location == f"s3://{s3_bucket}/lake/jira/raw/{name}/date={partition['Values'][0]}/"
            schema = parquet_schema(s3_server, location + "part-00000.parquet")
            expected = [(c["Name"], c["Type"]) for c in glue_columns(schema)]
            assert columns(partition) == expected
            assert columns(table) == expected
        assert ("created", "timestamp") in columns(table)
    issue_columns = dict(columns(glue.get_table(DatabaseName=database, Name="jira_raw_issues")["Table"]))
    assert issue_columns["id"] == "bigint" and issue_columns["labels"] == "array<string>"
    assert issue_columns["story_points"] == "double" and issue_columns["due_date"] == "date"
    [event] = results[1].asset_materializations_for_node("jira__raw__issues")
    assert event.metadata["glue/table"].value == f"{database}.jira_raw_issues"
    assert event.metadata["glue/partition"].value == f"date={days[1]}"


def test_a_table_gaining_a_column_is_updated_and_a_rewritten_partition_refreshed(s3_server, s3_bucket, glue):
    database = database_name()
    store = ParquetStore(f"s3://{s3_bucket}/t", s3_endpoint_url=s3_server, s3_region="us-east-1")
    catalog = GlueCatalog(database, endpoint_url=s3_server, region="us-east-1", table_prefix="x_")

    def write(day: str, table: pa.Table) -> dict:
        result = store.write(["events"], ("date", day), table)
        return catalog.register(["events"], store.uri(["events"]), result.schema, ("date", day), result.uri)

    first = write("2026-11-01", pa.table({"id": [1], "name": ["a"]}))
    assert (first["glue/table_action"], first["glue/partition_action"]) == ("created", "created")
    second = write("2026-11-02", pa.table({"id": [2], "name": ["b"], "score": [0.5]}))
    assert (second["glue/table_action"], second["glue/partition_action"]) == ("updated", "created")
    again = write("2026-11-02", pa.table({"id": [2], "name": ["b"], "score": [0.5]}))
    assert (again["glue/table_action"], again["glue/partition_action"]) == ("unchanged", "updated")

    table = glue.get_table(DatabaseName=database, Name="x_events")["Table"]
    assert columns(table) == [("id", "bigint"), ("name", "string"), ("score", "double")]  # old columns kept
    by_day = {p["Values"][0]: columns(p) for p in
              glue.get_partitions(DatabaseName=database, TableName="x_events")["Partitions"]}
    assert by_day == {"2026-11-01": [("id", "bigint"), ("name", "string")],
                      "2026-11-02": [("id", "bigint"), ("name", "string"), ("score", "double")]}


def test_downstream_assets_written_by_the_io_manager_are_registered_without_partitions(s3_server, s3_bucket, glue):
    database = database_name()

    @dg.asset(key_prefix=["jira", "marts"], description="A downstream table.")
    def issues_current() -> pa.Table:
        return pa.table({"id": pa.array([1, 2], pa.int64()),
                         "status": pa.array([{"name": "Open", "ids": [1]}, {"name": "Done", "ids": []}],
                                            pa.struct([("name", pa.string()), ("ids", pa.list_(pa.int64()))]))})

    io_manager = ParquetIOManager(base_path=f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server,
                                  s3_region="us-east-1", glue_database=database, glue_endpoint_url=s3_server)
    result = dg.materialize([issues_current], resources={"io_manager": io_manager},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    table = glue.get_table(DatabaseName=database, Name="jira_marts_issues_current")["Table"]
    assert table["PartitionKeys"] == []
    assert table["StorageDescriptor"]["Location"] == f"s3://{s3_bucket}/lake/jira/marts/issues_current/"
    assert columns(table) == [("id", "bigint"), ("status", "struct<name:string,ids:array<bigint>>")]
    assert table.get("Description") == "A downstream table."
    assert glue.get_partitions(DatabaseName=database, TableName="jira_marts_issues_current")["Partitions"] == []


def test_an_unreachable_glue_fails_the_step_once_with_one_line_naming_glue_and_the_cause(s3_server, s3_bucket):
    """Glue errors are the IO manager's storage errors too: a step failure naming Glue, not a trace. A refused
    connection may pass, so the step's retries are used, and the last one ends on the cause, not on Dagster's
    "Exceeded max_retries"."""
    calls = []

    @dg.asset(key_prefix=["jira", "marts"], retry_policy=dg.RetryPolicy(max_retries=2))
    def issues_current() -> pa.Table:
        calls.append(1)
        return pa.table({"id": pa.array([1, 2], pa.int64())})

    io_manager = ParquetIOManager(base_path=f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server,
                                  s3_region="us-east-1", glue_database=database_name(),
                                  glue_endpoint_url="http://127.0.0.1:9")  # nothing listens on port 9
    result = dg.materialize([issues_current], resources={"io_manager": io_manager},
                            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.event_specific_data.error.message
    assert "jira/marts/issues_current: Glue Data Catalog: cannot" in message and "127.0.0.1:9" in message
    assert "Exceeded max_retries" not in message and len(calls) == 3
