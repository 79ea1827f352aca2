"""A partition is streamed: batches are pulled one by one and memory holds about one row group."""
import pyarrow as pa
import pyarrow.parquet as pq

from jira_assets.parquet import ParquetStore, RecordBatchStream

TABLE = ["jira", "raw", "issues"]
SCHEMA = pa.schema([("id", pa.int64()), ("summary", pa.string())])
BATCH_ROWS = 20_000
BATCHES = 50


def page(number: int) -> pa.RecordBatch:
    start = number * BATCH_ROWS
    ids = range(start, start + BATCH_ROWS)
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.int64()), pa.array([f"summary of issue {i:010d}" for i in ids])], schema=SCHEMA
    )


def test_fifty_batches_are_pulled_lazily_with_bounded_arrow_memory(tmp_path):
    store = ParquetStore(str(tmp_path), row_group_rows=2 * BATCH_ROWS)
    table_dir = tmp_path.joinpath(*TABLE)
    one_batch = page(0).nbytes
    arrow_bytes_when_pulled = []
    staged_bytes_when_pulled = []

    def pages():
        for number in range(BATCHES):
            arrow_bytes_when_pulled.append(pa.total_allocated_bytes())
            staged = table_dir.glob(".*staging-*/part-*.parquet")  # the file being written
            staged_bytes_when_pulled.append(sum(path.stat().st_size for path in staged))
            yield page(number)

    baseline = pa.total_allocated_bytes()
    result = store.write(TABLE, ("date", "2026-10-01"), RecordBatchStream(SCHEMA, pages()))

    assert result.rows == BATCHES * BATCH_ROWS
    # Lazy: the first row group (2 batches) is on disk before the 4th batch is even produced,
    # and most of the file is written while the producer is still producing.
    assert staged_bytes_when_pulled[3] > len(b"PAR1")
    assert staged_bytes_when_pulled[-1] > 0.8 * result.bytes
    # Bounded: never more than a few batches' worth of Arrow memory alive, though 50 went through.
    peak = max(arrow_bytes_when_pulled) - baseline
    assert peak < 5 * one_batch, f"peak {peak / one_batch:.1f} batches alive"
    file = pq.ParquetFile(result.files[0])
    assert file.metadata.num_row_groups == BATCHES // 2  # small pages were coalesced into row groups
