"""ParquetStore behaviours, run on a local folder and on S3 (moto's server over real HTTP)."""
import datetime as dt
import os
import shutil
import subprocess
import uuid

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from jira_assets.parquet import (
    MissingPartitionsError,
    ParquetStore,
    RecordBatchStream,
    StorageError,
    backends,
)
from jira_assets.parquet.store import scan_errors

TABLE = ["jira", "raw", "issues"]
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"

ISSUE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("key", pa.string()),
        pa.field("updated", pa.timestamp("ms", tz="UTC")),
        pa.field("due", pa.timestamp("us", tz="Europe/Berlin")),
        pa.field("assignee", pa.struct([("accountId", pa.string()), ("displayName", pa.string())])),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("story_points", pa.float64()),
    ]
)

ISSUE_ROWS = [
    {  # every value present
        "id": 10001, "key": "PRJ-1",
        "updated": dt.datetime(2026, 10, 1, 23, 59, 59, 123000, tzinfo=dt.timezone.utc),
        "due": dt.datetime(2026, 10, 3, 8, 30, tzinfo=dt.timezone.utc),
        "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ada"},
        "labels": ["backend", "urgent"], "story_points": 3.5,
    },
    {  # the assignee exists but hides its name; labels exist but are empty
        "id": 10002, "key": "PRJ-2",
        "updated": dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.timezone.utc),
        "due": None,
        "assignee": {"accountId": "5b10a2844c20165700ede21g", "displayName": None},
        "labels": [], "story_points": None,
    },
    {  # no assignee at all; labels absent
        "id": 10003, "key": "PRJ-3",
        "updated": dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.timezone.utc),
        "due": None, "assignee": None, "labels": None, "story_points": 0.0,
    },
]


def rows_of(n, start=0, schema=pa.schema([("id", pa.int64()), ("title", pa.string())])):
    ids = range(start, start + n)
    return pa.table({"id": list(ids), "title": [f"issue {i}" for i in ids]}, schema=schema)


@pytest.fixture(params=["local", "s3"])
def make_store(request, tmp_path):
    """Builds stores on one backend; S3 stores share a fresh moto bucket."""
    if request.param == "local":
        def make(**options):
            return ParquetStore(str(tmp_path / "lake"), **options)
    else:
        endpoint = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")

        def make(**options):
            return ParquetStore(f"s3://{bucket}/lake", s3_endpoint_url=endpoint, s3_region="us-east-1",
                                **options)
    make.kind = request.param
    return make


def file_names(result):
    return [uri.rsplit("/", 1)[1] for uri in result.files]


def test_typed_columns_round_trip_with_tz_structs_lists_and_null_vs_absent(make_store):
    store = make_store()
    written = pa.Table.from_pylist(ISSUE_ROWS, schema=ISSUE_SCHEMA)
    result = store.write(TABLE, ("date", "2026-10-01"), written)

    assert result.rows == 3
    assert result.uri.rstrip("/").endswith("jira/raw/issues/date=2026-10-01")
    assert file_names(result) == ["part-00000.parquet"]
    back = store.read_table(TABLE, ["2026-10-01"])
    assert back.schema.field("updated").type == pa.timestamp("ms", tz="UTC")
    assert back.schema.field("due").type == pa.timestamp("us", tz="Europe/Berlin")
    assert back.schema.field("assignee").type == ISSUE_SCHEMA.field("assignee").type
    assert back.column("date").to_pylist() == ["2026-10-01"] * 3
    assert back.drop_columns(["date"]).to_pylist() == written.to_pylist()
    # null and absent stay distinguishable: a null name inside an assignee vs no assignee at all
    assignee = back.column("assignee")
    assert assignee.is_null().to_pylist() == [False, False, True]
    assert back.column("labels").to_pylist() == [["backend", "urgent"], [], None]


def test_zero_rows_still_write_a_typed_file(make_store):
    store = make_store()
    result = store.write(TABLE, ("date", "2026-10-02"), RecordBatchStream(ISSUE_SCHEMA, iter(())))

    assert (result.rows, len(result.files)) == (0, 1)
    assert result.bytes > 0
    assert store.exists(TABLE, ("date", "2026-10-02"))
    back = store.read_table(TABLE, ["2026-10-02"])
    assert back.num_rows == 0
    assert back.schema.remove_metadata().field("due").type == pa.timestamp("us", tz="Europe/Berlin")


def test_large_partition_rolls_over_into_several_files_at_the_row_target(make_store):
    store = make_store(max_rows_per_file=400, row_group_rows=100)
    # 1 000 rows in pages of 70: page and file boundaries do not line up
    batches = (rows_of(min(70, 1000 - start), start).to_batches()[0] for start in range(0, 1000, 70))
    result = store.write(TABLE, ("date", "2026-10-03"), RecordBatchStream(rows_of(0).schema, batches))

    assert file_names(result) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert result.rows == 1000
    fs = store._backend.arrow_filesystem()
    paths = [store._backend.arrow_path((*TABLE, "date=2026-10-03", n)) for n in file_names(result)]
    rows_per_file = [pq.ParquetFile(fs.open_input_file(p)).metadata.num_rows for p in paths]
    assert rows_per_file == [400, 400, 200]
    assert sorted(store.read_table(TABLE).column("id").to_pylist()) == list(range(1000))


def test_rerun_with_fewer_rows_replaces_the_partition_exactly(make_store):
    store = make_store(max_rows_per_file=100)
    store.write(TABLE, ("date", "2026-10-04"), rows_of(350))             # 4 part files
    store.write(TABLE, ("date", "2026-10-05"), rows_of(5, start=9000))   # a neighbour stays untouched
    rerun = store.write(TABLE, ("date", "2026-10-04"), rows_of(120, start=500))

    assert file_names(rerun) == ["part-00000.parquet", "part-00001.parquet"]
    listing = store._backend.list_dir((*TABLE, "date=2026-10-04"))
    assert listing.files == ["part-00000.parquet", "part-00001.parquet"]  # stale part-00002/3 are gone
    assert sorted(store.read_table(TABLE, ["2026-10-04"]).column("id").to_pylist()) == list(range(500, 620))
    assert store.read_table(TABLE, ["2026-10-05"]).column("id").to_pylist() == list(range(9000, 9005))
    assert store.list_partitions(TABLE) == ["2026-10-04", "2026-10-05"]


def test_unpartitioned_table_lives_directly_in_the_table_folder(make_store):
    store = make_store()
    result = store.write(["jira", "raw", "projects"], None, rows_of(3))

    assert result.uri.rstrip("/").endswith("jira/raw/projects")
    assert store.read_table(["jira", "raw", "projects"]).column("id").to_pylist() == [0, 1, 2]
    assert store.list_partitions(["jira", "raw", "projects"]) == []


def test_new_nullable_column_in_a_later_partition_reads_as_null_for_older_ones(make_store):
    store = make_store()
    old = rows_of(2)
    new = rows_of(2, start=10).append_column("customfield_10042", pa.array([1.5, None], pa.float64()))
    store.write(TABLE, ("date", "2026-10-06"), old)
    store.write(TABLE, ("date", "2026-10-07"), new)

    dataset = store.dataset(TABLE)
    assert dataset.schema.names == ["id", "title", "customfield_10042", "date"]
    rows = sorted(dataset.to_table().to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["customfield_10042"], r["date"]) for r in rows] == [
        (0, None, "2026-10-06"), (1, None, "2026-10-06"), (10, 1.5, "2026-10-07"), (11, None, "2026-10-07")]
    # a lazy filter on the partition column prunes to one partition
    assert dataset.to_table(filter=ds.field("date") == "2026-10-06").num_rows == 2


def test_a_column_whose_type_changed_is_read_as_a_type_both_convert_to(make_store):
    """A custom field made text, or a number field recreated under the same name: every partition stays
    readable together (it once blocked every downstream table)."""
    store = make_store()
    store.write(TABLE, ("date", "2026-10-08"), rows_of(2).append_column("points", pa.array([1, 2], pa.int64())))
    store.write(TABLE, ("date", "2026-10-09"), pa.table({"id": [5], "title": ["x"], "points": [2.5]}))
    store.write(TABLE, ("date", "2026-10-10"), pa.table({"id": [6], "title": ["y"], "budget": ["EUR 10"]}))
    store.write(TABLE, ("date", "2026-10-11"), pa.table({"id": [7], "title": ["z"], "budget": [12.5]}))

    rows = {r["id"]: r for r in store.dataset(TABLE).to_table().to_pylist()}
    assert [rows[i]["points"] for i in (0, 1, 5)] == [1.0, 2.0, 2.5]  # numbers: float64
    assert rows[6]["budget"] == "EUR 10" and rows[7]["budget"] == "12.5"  # scalars: text
    assert store.dataset(TABLE).schema.field("points").type == pa.float64()


def test_a_column_that_became_a_list_is_left_out_with_a_warning_and_the_rest_reads(make_store, caplog):
    store = make_store()
    store.write(TABLE, ("date", "2026-10-08"), pa.table({"id": [1], "title": ["a"], "team": ["red"]}))
    store.write(TABLE, ("date", "2026-10-09"), pa.table({"id": [2], "title": ["b"], "team": [["red", "blue"]]}))

    dataset = store.dataset(TABLE)
    assert "team" not in dataset.schema.names
    assert sorted(dataset.to_table(columns=["id", "title"]).column("id").to_pylist()) == [1, 2]
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "'team'" in message and "date=2026-10-08/part-00000.parquet" in message


def test_missing_partitions_are_named_unless_allowed(make_store):
    store = make_store()
    store.write(TABLE, ("date", "2026-10-10"), rows_of(2))

    with pytest.raises(MissingPartitionsError, match="2026-10-11") as error:
        store.dataset(TABLE, ["2026-10-10", "2026-10-11"])
    assert error.value.missing == ["2026-10-11"]
    assert store.dataset(TABLE, ["2026-10-10", "2026-10-11"], allow_missing=True).count_rows() == 2
    assert not store.exists(TABLE, "2026-10-11") and store.exists(TABLE, "2026-10-10")


def test_partition_keys_with_separators_stay_one_directory(make_store):
    store = make_store()
    store.write(TABLE, ("key", "2026-10-01|PRJ/A"), rows_of(1))

    assert store.list_partitions(TABLE) == ["2026-10-01|PRJ/A"]
    assert store.read_table(TABLE).column("key").to_pylist() == ["2026-10-01|PRJ/A"]


def test_a_failing_producer_leaves_the_previous_version_intact(make_store):
    store = make_store(row_group_rows=10)
    store.write(TABLE, ("date", "2026-10-12"), rows_of(30))

    def pages_then_jira_error():
        yield rows_of(10, start=100).to_batches()[0]
        yield rows_of(10, start=110).to_batches()[0]
        raise ConnectionError("Jira went away")

    failing = RecordBatchStream(rows_of(0).schema, pages_then_jira_error())
    with pytest.raises(ConnectionError, match="Jira went away"):  # the producer's error, not a StorageError
        store.write(TABLE, ("date", "2026-10-12"), failing)
    assert store.read_table(TABLE, ["2026-10-12"]).column("id").to_pylist() == list(range(30))
    if make_store.kind == "local":
        # no staging directory left behind
        assert [p.name for p in store._backend.path(TABLE).iterdir()] == ["date=2026-10-12"]


def replace_bytes(store, uri, damage):
    """Overwrites one written file with `damage(its bytes)`, behind the store's back (a copy by hand, a disk
    error)."""
    filesystem = store._backend.arrow_filesystem()
    path = uri.removeprefix("s3://")
    with filesystem.open_input_file(path) as file:
        data = file.read()
    with filesystem.open_output_stream(path) as file:
        file.write(damage(data))


DAMAGES = {  # how a file is damaged -> what the reader found
    "truncated": (lambda data: data[: len(data) // 2], "Parquet magic bytes not found"),
    "emptied": (lambda data: b"", "Parquet file size is 0 bytes"),
    "footer-overwritten": (lambda data: data[:-40] + b"\x07" * 32 + data[-8:], "Couldn't deserialize thrift"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_a_permanent_error_naming_the_file_and_the_cause(make_store, damage):
    """Reading it again cannot help, so the error must not be transient (it once was retried twice and then
    ended in pyarrow's own error, or was not a StorageError at all)."""
    store = make_store()
    store.write(TABLE, ("date", "2026-10-01"), rows_of(3))
    damaged = store.write(TABLE, ("date", "2026-10-02"), rows_of(300, start=3)).files[0]
    change, cause = DAMAGES[damage]
    replace_bytes(store, damaged, change)

    for read in (lambda: store.dataset(TABLE),
                 lambda: store.partition_datasets(TABLE, ["2026-10-01", "2026-10-02"])):
        with pytest.raises(StorageError) as error:
            read()
        message = str(error.value)
        assert message.startswith(f"cannot read {damaged}: not a readable Parquet file ({cause}")
        assert "\n" not in message and error.value.transient is False
    assert store.read_table(TABLE, ["2026-10-01"]).num_rows == 3  # the healthy partition still reads


def scramble_middle(data: bytes) -> bytes:
    """Column chunks garbled, the footer intact: the store's footer check passes, a scan does not."""
    middle = bytes((b * 7 + 13) % 256 for b in data[4:len(data) // 2])
    return data[:4] + middle + data[len(data) // 2:]


def test_a_scan_failing_on_a_file_damaged_past_its_footer_names_the_file(make_store):
    store = make_store()
    store.write(TABLE, ("date", "2026-10-01"), rows_of(50))
    damaged = store.write(TABLE, ("date", "2026-10-02"), rows_of(300, start=50)).files[0]
    replace_bytes(store, damaged, scramble_middle)
    dataset = store.dataset(TABLE)  # footers read fine
    with pytest.raises(StorageError) as error:
        with scan_errors(dataset):
            dataset.to_table()
    assert str(error.value).startswith(f"cannot read {damaged}: not a readable Parquet file (")
    assert "\n" not in str(error.value) and error.value.transient is False
    with scan_errors(dataset):  # a healthy read passes through untouched
        assert store.dataset(TABLE, ["2026-10-01"]).to_table().num_rows == 50


def test_a_partition_folder_without_a_part_file_is_an_error_not_an_empty_day(make_store):
    """Read as an empty day, an emptied folder would wipe that day's rows from every table built on it."""
    store = make_store()
    store.write(TABLE, ("date", "2026-10-01"), rows_of(0))  # a day without rows still has its (empty) part file
    lost = store.write(TABLE, ("date", "2026-10-02"), rows_of(5)).files[0]
    filesystem = store._backend.arrow_filesystem()
    filesystem.delete_file(lost.removeprefix("s3://"))
    with filesystem.open_output_stream(lost.removeprefix("s3://").rsplit("/", 1)[0] + "/notes.txt") as file:
        file.write(b"moved the data away")  # a stray file keeps the folder (or S3 prefix) listed

    folder = lost.rsplit("/", 1)[0]
    for read in (lambda: store.dataset(TABLE), lambda: store.dataset(TABLE, ["2026-10-02"]),
                 lambda: store.partition_datasets(TABLE, ["2026-10-01", "2026-10-02"])):
        with pytest.raises(StorageError) as error:
            read()
        assert str(error.value).replace("/:", ":").startswith(f"cannot read {folder}: no Parquet part file in it")
        assert error.value.transient is False
    assert store.dataset(TABLE, ["2026-10-01"]).count_rows() == 0  # the written empty day reads as empty


def test_a_footer_longer_than_the_first_read_still_reads(make_store):
    """Many columns make a footer larger than the 64 KiB read from a file's end at first."""
    store = make_store()
    wide = pa.table({f"customfield_{n:05d}": pa.array([n], pa.int64()) for n in range(2000)})
    result = store.write(TABLE, ("date", "2026-10-03"), wide)
    filesystem = store._backend.arrow_filesystem()
    with filesystem.open_input_file(result.files[0].removeprefix("s3://")) as file:
        assert int.from_bytes(file.read_at(4, file.size() - 8), "little") > 64 * 1024

    dataset = store.dataset(TABLE)
    assert dataset.schema.names == [*wide.column_names, "date"]
    assert dataset.to_table(columns=["customfield_01999"]).column(0).to_pylist() == [1999]


def test_s3_unreachable_while_reading_footers_stays_a_transient_error(s3_server, s3_bucket, monkeypatch):
    """Only bytes that do not decode are damage: a connection that fails while fetching them may recover."""
    import pyarrow.fs as pafs

    store = ParquetStore(f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server, s3_region="us-east-1")
    store.write(TABLE, ("date", "2026-10-04"), rows_of(3))
    unreachable = pafs.S3FileSystem(endpoint_override="http://127.0.0.1:9", region="us-east-1",
                                    retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1))
    monkeypatch.setattr(store._backend, "arrow_filesystem", lambda: unreachable)  # listing (boto3) still works

    with pytest.raises(StorageError) as error:
        store.dataset(TABLE)
    assert error.value.transient is True
    assert "not a readable Parquet file" not in str(error.value)
    assert f"s3://{s3_bucket}/lake/jira/raw/issues/date=2026-10-04/part-00000.parquet" in str(error.value)


# ------------------------------------------------------------------------------- S3 only


def test_s3_multipart_file_larger_than_a_part_round_trips_with_sse_kms(s3_server, s3_bucket):
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    sent = []
    client.meta.events.register(
        "before-parameter-build.s3.CreateMultipartUpload", lambda params, **_: sent.append(dict(params))
    )
    store = ParquetStore(f"s3://{s3_bucket}/lake", sse_kms_key_id=KMS_KEY, s3_client=client,
                         compression="none", s3_endpoint_url=s3_server, s3_region="us-east-1")
    payload = pa.table({"id": pa.array(range(20), pa.int64()),
                        "blob": pa.array([os.urandom(600_000) for _ in range(20)], pa.binary())})  # ~12 MB
    result = store.write(TABLE, ("date", "2026-10-13"), payload)

    assert result.bytes > backends.S3_PART_SIZE  # really needed more than one multipart part
    assert sent and all(p["ServerSideEncryption"] == "aws:kms" and p["SSEKMSKeyId"] == KMS_KEY for p in sent)
    key = "lake/jira/raw/issues/date=2026-10-13/part-00000.parquet"
    head = client.head_object(Bucket=s3_bucket, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)
    assert head["ContentLength"] == result.bytes
    back = store.read_table(TABLE, ["2026-10-13"])
    assert back.column("blob").to_pylist() == payload.column("blob").to_pylist()


def test_s3_failed_write_leaves_nothing_at_final_keys_and_no_open_uploads(s3_server, s3_bucket):
    store = ParquetStore(f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server, s3_region="us-east-1",
                         row_group_rows=5, max_rows_per_file=10)

    def pages():
        for start in range(0, 30, 5):
            yield rows_of(5, start).to_batches()[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.write(TABLE, ("date", "2026-10-14"), RecordBatchStream(rows_of(0).schema, pages()))
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_s3_missing_bucket_is_a_one_line_error_before_the_producer_runs(s3_server, s3_bucket):
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    store = ParquetStore(f"s3://{bucket}/lake", s3_endpoint_url=s3_server, s3_region="us-east-1")
    pulled = []

    def pages():
        pulled.append(1)
        yield rows_of(1).to_batches()[0]

    with pytest.raises(StorageError) as error:
        store.write(TABLE, ("date", "2026-10-15"), RecordBatchStream(rows_of(0).schema, pages()))
    message = str(error.value)
    assert "\n" not in message
    assert f"s3://{bucket}/lake" in message and "does not exist (NoSuchBucket)" in message
    assert pulled == []  # no Jira request is wasted on a write that cannot land


@pytest.mark.parametrize(
    "failing_call, code, message, expected",
    [
        ("list_objects_v2", "AccessDenied", "Access Denied", "access denied (AccessDenied: Access Denied)"),
        ("create_multipart_upload", "KMS.NotFoundException", "Invalid keyId alias/gone",
         "KMS key is invalid or not usable (KMS.NotFoundException: Invalid keyId alias/gone)"),
        ("create_multipart_upload", "AccessDenied",
         "User: arn:aws:iam::1:user/etl is not authorized to perform: kms:GenerateDataKey",
         "KMS key is invalid or not usable (AccessDenied"),
    ],
)
def test_s3_refusals_become_one_line_errors_naming_the_cause(failing_call, code, message, expected):
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    store = ParquetStore("s3://lake-bucket/prod", s3_client=client, sse_kms_key_id="alias/gone")
    with Stubber(client) as stub:
        for call in ("list_objects_v2", "list_multipart_uploads", "create_multipart_upload"):
            if call == failing_call:
                stub.add_client_error(call, service_error_code=code, service_message=message,
                                      http_status_code=403)
                break
            stub.add_response(call, {"UploadId": "u1"} if call == "create_multipart_upload" else {})
        pulled = []
        pages = (pulled.append(n) or rows_of(3).to_batches()[0] for n in range(2))
        with pytest.raises(StorageError) as error:
            store.write(TABLE, ("date", "2026-10-15"), RecordBatchStream(rows_of(0).schema, pages))
    partition_uri = "s3://lake-bucket/prod/jira/raw/issues/date=2026-10-15/"
    assert str(error.value).startswith(f"cannot write to {partition_uri}: ")
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert pulled == []  # refused before a single Jira page was fetched


# ---------------------------------------------------------------------------- local only


@pytest.fixture
def unwritable_folder(tmp_path):
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    # root ignores permission bits; an immutable directory refuses even root
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("cannot make a folder unwritable for root here (no chattr +i)")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_unwritable_local_folder_is_a_one_line_error(unwritable_folder):
    store = ParquetStore(str(unwritable_folder / "lake"))
    with pytest.raises(StorageError) as error:
        store.write(TABLE, ("date", "2026-10-16"), rows_of(1))
    message = str(error.value)
    assert "\n" not in message
    assert str(unwritable_folder / "lake") in message and "not writable" in message
    assert list(unwritable_folder.iterdir()) == []


@pytest.mark.parametrize("in_the_way", [["jira", "raw", "issues"], ["jira", "raw", "issues", "date=2026-10-18"]],
                         ids=["table folder", "partition folder"])
def test_a_file_where_a_folder_belongs_is_a_permanent_error_and_the_file_is_left_alone(tmp_path, in_the_way):
    lake = tmp_path / "lake"
    blocker = lake.joinpath(*in_the_way)
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"someone's notes")
    store = ParquetStore(str(lake))
    with pytest.raises(StorageError) as error:
        store.write(TABLE, ("date", "2026-10-18"), rows_of(3))
    message = str(error.value)
    assert "a file is in the way where a folder is needed" in message and str(blocker) in message
    assert not error.value.transient  # no retry moves a file
    assert blocker.read_bytes() == b"someone's notes"
    assert sorted(p.name for p in blocker.parent.iterdir()) == [blocker.name]  # no hidden leftovers beside it


def test_disk_full_is_a_clear_error_and_the_previous_version_survives(tmp_path, monkeypatch):
    store = ParquetStore(str(tmp_path / "lake"))
    store.write(TABLE, ("date", "2026-10-17"), rows_of(4))

    class FullDiskSink(backends.LocalFileSink):
        def __init__(self, path):
            path.touch()  # the file exists in staging, but the device refuses every byte
            backends.io.FileIO.__init__(self, "/dev/full", "wb")

    monkeypatch.setattr(backends, "LocalFileSink", FullDiskSink)
    with pytest.raises(StorageError, match="disk full") as error:
        store.write(TABLE, ("date", "2026-10-17"), rows_of(1000))
    assert str(tmp_path / "lake") in str(error.value)
    monkeypatch.undo()
    assert store.read_table(TABLE).column("id").to_pylist() == [0, 1, 2, 3]
    assert [p.name for p in (tmp_path / "lake" / "jira" / "raw" / "issues").iterdir()] == ["date=2026-10-17"]
