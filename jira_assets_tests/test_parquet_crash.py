"""A writer killed with SIGKILL mid-partition leaves the previous version intact and nothing partial."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow as pa

import jira_assets
from jira_assets.parquet import ParquetStore

TABLE = ["jira", "raw", "issues"]
PARTITION = ("date", "2026-10-01")
REPO_ROOT = Path(jira_assets.__file__).resolve().parents[1]

# Writes version 2 of the partition, announces once a row group has reached storage, then hangs
# (as if Jira were slow) until the test kills it.
WRITER = """
import sys, time
import pyarrow as pa
from jira_assets.parquet import ParquetStore, RecordBatchStream

base, endpoint = sys.argv[1], (sys.argv[2] or None)
store = ParquetStore(base, s3_endpoint_url=endpoint, s3_region="us-east-1", row_group_rows=100)
schema = pa.schema([("id", pa.int64()), ("version", pa.int64())])

def pages():
    yield pa.RecordBatch.from_pydict({"id": list(range(100)), "version": [2] * 100}, schema=schema)
    print("row group written", flush=True)
    time.sleep(120)
    yield pa.RecordBatch.from_pydict({"id": [100], "version": [2]}, schema=schema)

store.write(["jira", "raw", "issues"], ("date", "2026-10-01"), RecordBatchStream(schema, pages()))
"""


def version_one():
    return pa.table({"id": pa.array([1, 2, 3], pa.int64()), "version": pa.array([1, 1, 1], pa.int64())})


def kill_writer_mid_partition(base: str, endpoint: str = "") -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, base, endpoint], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "row group written", f"writer did not start (exit code {process.poll()})"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()


def test_local_kill_mid_write_keeps_previous_version_and_next_write_cleans_up(tmp_path):
    base = tmp_path / "lake"
    store = ParquetStore(str(base))
    store.write(TABLE, PARTITION, version_one())

    kill_writer_mid_partition(str(base))

    table_dir = base.joinpath(*TABLE)
    leftovers = [p for p in table_dir.iterdir() if ".staging-" in p.name]
    assert len(leftovers) == 1 and any(leftovers[0].iterdir())  # it really died mid-file
    assert sorted(p.name for p in (table_dir / "date=2026-10-01").iterdir()) == ["part-00000.parquet"]
    assert store.read_table(TABLE).column("version").to_pylist() == [1, 1, 1]
    assert store.list_partitions(TABLE) == ["2026-10-01"]  # the hidden staging dir is no partition

    store.write(TABLE, PARTITION, pa.table({"id": [7], "version": [3]}))
    assert sorted(p.name for p in table_dir.iterdir()) == ["date=2026-10-01"]  # leftover removed
    assert store.read_table(TABLE).column("version").to_pylist() == [3]


def test_s3_kill_mid_write_keeps_previous_objects_and_next_write_aborts_the_orphan(s3_server, s3_bucket):
    base = f"s3://{s3_bucket}/lake"
    store = ParquetStore(base, s3_endpoint_url=s3_server, s3_region="us-east-1")
    store.write(TABLE, PARTITION, version_one())

    kill_writer_mid_partition(base, s3_server)

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["lake/jira/raw/issues/date=2026-10-01/part-00000.parquet"]
    orphans = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [u["Key"] for u in orphans] == keys  # it really died mid-upload, invisibly
    assert store.read_table(TABLE).column("version").to_pylist() == [1, 1, 1]

    store.write(TABLE, PARTITION, pa.table({"id": [7], "version": [3]}))
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert store.read_table(TABLE).column("version").to_pylist() == [3]
