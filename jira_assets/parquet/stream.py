"""RecordBatchStream: what an asset returns when its rows should be streamed, not held in memory."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa


class RecordBatchStream:
    """A typed, lazy, single-use stream of record batches.

    ``batches`` is consumed exactly once, by whoever writes the stream; nothing is pulled from it
    before then, so a generator that pages through an API runs while the Parquet file is written.
    ``metadata()`` is called after the batches are exhausted and returns extra materialization
    metadata that is only known at the end (request counts, retries, per-child errors, ...).

    Every batch is conformed to ``schema`` (columns reordered, types cast safely), so a producer may
    build batches column by column without caring about order; a missing or unexpected column is
    an error rather than silently dropped data.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        metadata: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        if not isinstance(schema, pa.Schema):
            raise TypeError(f"schema must be a pyarrow.Schema, got {type(schema).__name__}")
        self.schema = schema
        self._batches = batches
        self._metadata = metadata
        self._consumed = False

    @classmethod
    def from_table(cls, table: pa.Table, max_rows_per_batch: int | None = None) -> RecordBatchStream:
        return cls(table.schema, table.to_batches(max_chunksize=max_rows_per_batch))

    @classmethod
    def from_reader(cls, reader: pa.RecordBatchReader) -> RecordBatchStream:
        return cls(reader.schema, reader)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        # A second pass would silently see an exhausted generator and write an empty table.
        if self._consumed:
            raise RuntimeError("a RecordBatchStream can be consumed only once")
        self._consumed = True
        for batch in self._batches:
            yield conform_batch(batch, self.schema)

    def metadata(self) -> dict[str, Any]:
        """Extra metadata from the producer; call it after the batches are exhausted."""
        return dict(self._metadata()) if self._metadata is not None else {}


def conform_batch(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns, order and types (safe casts only)."""
    if isinstance(batch, pa.Table):  # a producer may hand over a small table per page
        batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else _empty_batch(batch.schema)
    if not isinstance(batch, pa.RecordBatch):
        raise TypeError(f"expected a pyarrow.RecordBatch, got {type(batch).__name__}")
    if batch.schema.equals(schema, check_metadata=False):
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)  # carries the schema's metadata
    names = set(batch.schema.names)
    missing = [name for name in schema.names if name not in names]
    unexpected = sorted(names - set(schema.names))
    if missing or unexpected:
        raise ValueError(
            f"record batch does not match the stream schema: missing columns {missing}, "
            f"unexpected columns {unexpected}"
        )
    columns = []
    for field in schema:
        column = batch.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise ValueError(
                    f"column {field.name!r}: cannot cast {column.type} to the stream schema's "
                    f"{field.type}: {exc}"
                ) from exc
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


class PartitionedOutput:
    """The output of a run that covers several partitions: a producer per partition key.

    The writer calls each producer only when it reaches that partition, so a run of many days holds one
    day's batches at a time, and a producer that fails leaves the partitions after it untouched.
    """

    def __init__(self, producers: Mapping[str, Callable[[], Any]]) -> None:
        self._producers = dict(producers)

    @property
    def keys(self) -> list[str]:
        return list(self._producers)

    def produce(self, key: str) -> Any:
        return self._producers[key]()


class PartitionedInput(dict):
    """An upstream read partition by partition: {partition key: lazy dataset of that partition alone}.

    Annotate an input with this type when each of the run's partitions must see its own upstream partition
    (a run over a range of days); partitions never written are absent when missing ones are allowed."""
