"""ParquetStore: hive-partitioned Parquet tables with streaming, atomic writes (local folder or S3).

Layout::

    <base>/<table path...>/<column>=<value>/part-00000.parquet   (partitioned)
    <base>/<table path...>/part-00000.parquet                    (unpartitioned)

A write streams record batches into ``pyarrow.parquet.ParquetWriter``, coalescing them into row
groups and rolling over into ``part-00001.parquet``... at a row or byte target, so memory holds
about one row group whatever the partition's size. The files land at their final paths only when
the whole partition is written, and replace the previous version exactly (see ``backends.py``).
"""
from __future__ import annotations

import logging
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jira_assets.parquet.backends import Backend, Sink, open_backend
from jira_assets.parquet.errors import (
    MissingPartitionsError,
    StorageError,
    storage_errors,
)
from jira_assets.parquet.stream import RecordBatchStream

log = logging.getLogger(__name__)

__all__ = ["ParquetStore", "WriteResult", "StorageError", "MissingPartitionsError", "scan_errors"]

MiB = 1024 * 1024
PART_FILE_PREFIX = "part-"
PART_FILE_SUFFIX = ".parquet"
PARQUET_MAGIC = b"PAR1"  # a Parquet file ends with its footer, the footer's length (4 bytes) and this
FOOTER_GUESS_BYTES = 64 * 1024  # read from the end at once, as pyarrow does: most footers fit in one request


@dataclass(frozen=True)
class WriteResult:
    rows: int
    files: list[str]          # URIs of the part files, in order
    bytes: int                # bytes of Parquet written
    uri: str                  # the partition (or table) directory
    schema: pa.Schema = field(repr=False, default_factory=lambda: pa.schema([]))


class ParquetStore:
    """Parquet tables under ``base`` (a local folder or ``s3://bucket/prefix``)."""

    def __init__(
        self,
        base: str,
        *,
        compression: str = "zstd",
        s3_endpoint_url: str | None = None,
        s3_region: str | None = None,
        sse_kms_key_id: str | None = None,
        max_rows_per_file: int = 1_000_000,
        max_bytes_per_file: int = 256 * MiB,
        row_group_rows: int = 100_000,
        row_group_bytes: int = 16 * MiB,
        s3_client=None,
    ) -> None:
        if max_rows_per_file < 1 or max_bytes_per_file < 1 or row_group_rows < 1 or row_group_bytes < 1:
            raise ValueError("file and row-group targets must be positive")
        self.base = base
        self.compression = compression
        self.max_rows_per_file = max_rows_per_file
        self.max_bytes_per_file = max_bytes_per_file
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self._backend: Backend = open_backend(
            base, s3_endpoint_url=s3_endpoint_url, s3_region=s3_region,
            sse_kms_key_id=sse_kms_key_id, s3_client=s3_client,
        )

    @property
    def base_uri(self) -> str:
        return self._backend.base_uri

    def uri(self, table_path: Sequence[str], partition: tuple[str, str] | None = None) -> str:
        return self._backend.uri(_directory(table_path, partition))

    # ---------------------------------------------------------------------------------- write

    def write(
        self,
        table_path: Sequence[str],
        partition: tuple[str, str] | None,
        data: RecordBatchStream | pa.Table | pa.RecordBatchReader,
    ) -> WriteResult:
        """Stream ``data`` into the partition directory, replacing its previous files atomically.

        Zero rows still write one valid file with the schema. If the producer raises, or storage
        fails, nothing changes at the final paths and the error propagates (storage failures as a
        one-line ``StorageError``).
        """
        stream = _as_stream(data)
        directory = _directory(table_path, partition)
        location = self._backend.uri(directory)
        with storage_errors("write to", location):
            replacement = self._backend.begin_replace(directory)
        parts = _RollingParquetWriter(
            stream.schema, replacement.open, compression=self.compression,
            max_rows_per_file=self.max_rows_per_file, max_bytes_per_file=self.max_bytes_per_file,
            row_group_rows=self.row_group_rows, row_group_bytes=self.row_group_bytes,
        )
        try:
            with storage_errors("write to", location):
                parts.open_first_file()  # fail fast (bad KMS key, no permission) before the producer runs
            for batch in stream:  # the producer runs here; its own errors pass through untouched
                with storage_errors("write to", location):
                    parts.write(batch)
            with storage_errors("write to", location):
                written = parts.close()
                replacement.commit()
        except BaseException:
            parts.abort()
            replacement.abort()
            raise
        return WriteResult(
            rows=sum(part.rows for part in written),
            files=[self._backend.uri(directory).rstrip("/") + "/" + part.name for part in written],
            bytes=sum(part.bytes for part in written),
            uri=location,
            schema=stream.schema,
        )

    # ---------------------------------------------------------------------------------- read

    def list_partitions(self, table_path: Sequence[str]) -> list[str]:
        """The partition values written for a table, sorted (empty for unpartitioned tables)."""
        return sorted(self._partition_dirs(table_path)[1])

    def partition_column(self, table_path: Sequence[str]) -> str | None:
        return self._partition_dirs(table_path)[0]

    def exists(self, table_path: Sequence[str], partition: tuple[str, str] | str | None = None) -> bool:
        """Whether the table (or one partition of it, by (column, value) or by value) has data."""
        if isinstance(partition, str):
            column = self.partition_column(table_path)
            if column is None:
                return False
            partition = (column, partition)
        return bool(self._part_files(_directory(table_path, partition)))

    def dataset(
        self,
        table_path: Sequence[str],
        partitions: Iterable[str] | None = None,
        *,
        allow_missing: bool = False,
    ) -> ds.Dataset:
        """A lazy dataset over some partitions (by value) or all of them.

        Only file footers are read here. Files written with different column sets read as one
        schema (missing columns are null); the partition column is exposed as a string column.
        """
        location = self._backend.uri(tuple(table_path))
        with storage_errors("read", location):
            column, selected = self._selected_dirs(table_path, partitions, allow_missing)
            if column is None:  # unpartitioned table: its files sit in the table directory
                directories = [tuple(table_path)] if partitions is None else []
            else:
                directories = [(*table_path, name) for name in selected.values()]
            files = self._files_in(directories, partitions=column is not None)
            if partitions is None and not files and column is None:
                raise MissingPartitionsError(f"cannot read {location}: no table written there", [])
            return self._dataset_over(table_path, column, files)

    def partition_datasets(
        self, table_path: Sequence[str], partitions: Iterable[str], *, allow_missing: bool = False
    ) -> dict[str, ds.Dataset]:
        """{partition value: lazy dataset of that partition alone}, from one listing of the table; partitions
        never written are absent when `allow_missing`, else an error as in `dataset`."""
        with storage_errors("read", self._backend.uri(tuple(table_path))):
            column, selected = self._selected_dirs(table_path, partitions, allow_missing)
            return {value: self._dataset_over(table_path, column,
                                              self._files_in([(*table_path, name)], partitions=True))
                    for value, name in selected.items()}

    def _selected_dirs(self, table_path: Sequence[str], partitions: Iterable[str] | None,
                       allow_missing: bool) -> tuple[str | None, dict[str, str]]:
        """(partition column, {value: directory name}) of the partitions asked for (all when None), in order."""
        column, dirs_by_value = self._partition_dirs(table_path)
        if partitions is None:
            return column, {value: dirs_by_value[value] for value in sorted(dirs_by_value)}
        selected = list(dict.fromkeys(partitions))
        missing = [value for value in selected if value not in dirs_by_value]
        if missing and not allow_missing:
            raise MissingPartitionsError(
                f"cannot read {self._backend.uri(tuple(table_path))}: partitions never written: "
                f"{preview_list(missing)} (written: {preview_list(sorted(dirs_by_value)) or 'none'})",
                missing,
            )
        return column, {value: dirs_by_value[value] for value in selected if value in dirs_by_value}

    def _files_in(self, directories: Iterable[Sequence[str]], *, partitions: bool) -> list[str]:
        files = []
        for directory in directories:
            names = self._part_files(directory)
            # Every partition written holds a part file, a typed empty one for a day without rows: a partition
            # folder without one was emptied or made by hand, and read as an empty day it would wipe that day
            # downstream.
            if partitions and not names:
                raise StorageError(f"cannot read {self._backend.uri(tuple(directory))}: no Parquet part file in it "
                                   "(every written partition has one); materialize that partition again")
            files += [self._backend.arrow_path((*directory, name)) for name in names]
        return files

    def _dataset_over(self, table_path: Sequence[str], column: str | None, files: list[str]) -> ds.Dataset:
        filesystem = self._backend.arrow_filesystem()
        schema = _unified_schema(files, filesystem)
        partitioning = None
        if column is not None and column not in schema.names:
            schema = schema.append(pa.field(column, pa.string()))
            partitioning = ds.partitioning(pa.schema([pa.field(column, pa.string())]), flavor="hive")
        return ds.dataset(
            files, schema=schema, format="parquet", filesystem=filesystem,
            partitioning=partitioning, partition_base_dir=self._backend.arrow_path(tuple(table_path)),
        )

    def read_table(
        self,
        table_path: Sequence[str],
        partitions: Iterable[str] | None = None,
        *,
        columns: list[str] | None = None,
        filter: ds.Expression | None = None,
        allow_missing: bool = False,
    ) -> pa.Table:
        dataset = self.dataset(table_path, partitions, allow_missing=allow_missing)
        with storage_errors("read", self._backend.uri(tuple(table_path))):
            return dataset.to_table(columns=columns, filter=filter)

    # ---------------------------------------------------------------------------------- helpers

    def _partition_dirs(self, table_path: Sequence[str]) -> tuple[str | None, dict[str, str]]:
        """(partition column, {value: directory name}) of a table's hive directories."""
        with storage_errors("read", self._backend.uri(tuple(table_path))):
            listing = self._backend.list_dir(tuple(table_path))
        dirs_by_value: dict[str, str] = {}
        columns = set()
        for name in listing.dirs:
            column, sep, encoded = name.partition("=")
            if sep:
                columns.add(column)
                dirs_by_value[urllib.parse.unquote(encoded)] = name
        if len(columns) > 1:
            raise StorageError(
                f"table {self._backend.uri(tuple(table_path))} mixes partition columns {sorted(columns)}"
            )
        return (columns.pop() if columns else None), dirs_by_value

    def _part_files(self, directory: Sequence[str]) -> list[str]:
        with storage_errors("read", self._backend.uri(directory)):
            names = self._backend.list_dir(directory).files
        return [n for n in names if n.startswith(PART_FILE_PREFIX) and n.endswith(PART_FILE_SUFFIX)]


def _directory(table_path: Sequence[str], partition: tuple[str, str] | None) -> tuple[str, ...]:
    if isinstance(table_path, str) or not table_path:
        raise ValueError(f"table_path must be a non-empty sequence of path segments, got {table_path!r}")
    for segment in table_path:  # a leading "." would collide with the hidden staging directories
        if not segment or "/" in segment or segment.startswith("."):
            raise ValueError(f"invalid table path segment {segment!r} in {list(table_path)!r}")
    if partition is None:
        return tuple(table_path)
    column, value = partition
    if not column or "=" in column or "/" in column:
        raise ValueError(f"invalid partition column {column!r}")
    # Percent-encoding keeps any key ("a|b", "x/y") one path segment; pyarrow decodes it back.
    return (*table_path, f"{column}={urllib.parse.quote(str(value), safe='')}")


def _as_stream(data) -> RecordBatchStream:
    if isinstance(data, RecordBatchStream):
        return data
    if isinstance(data, pa.Table):
        return RecordBatchStream.from_table(data)
    if isinstance(data, pa.RecordBatchReader):
        return RecordBatchStream.from_reader(data)
    raise TypeError(
        f"cannot write {type(data).__name__}: expected RecordBatchStream, pyarrow.Table or RecordBatchReader"
    )


def preview_list(values: list[str], limit: int = 5) -> str:
    """The first few values and how many there are in all, for messages."""
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _unified_schema(files: list[str], filesystem) -> pa.Schema:
    """One schema for all files: later nullable columns are added. A column whose type changed between files
    (a custom field made text, a number field recreated under the same name) is read as a type both convert
    to: numbers as float64, other scalars as text. Where none exists (a list one day, a string the next) the
    column is left out, with a warning naming it: every other column stays readable, and the raw JSON columns
    keep the values."""
    if not files:
        return pa.schema([])
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:  # footers are small round trips
        schemas = list(pool.map(lambda f: _footer_schema(f, filesystem), files))
    files_by_type: dict[str, dict[pa.DataType, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, schema in zip(files, schemas):
        for column in schema:
            files_by_type[column.name][column.type].append(path)
    widened: dict[str, Optional[pa.DataType]] = {}
    for name, by_type in files_by_type.items():
        typed = [t for t in by_type if t != pa.null()]  # all-null reads as any type
        if len(typed) > 1:
            widened[name] = _common_type(typed)
            if widened[name] is None:
                conflicts = "; ".join(f"{t} in {preview_list(paths, 2)}" for t, paths in by_type.items())
                log.warning("column %r changed type across files and is left out when they are read together: %s",
                            name, conflicts)
    if not widened:
        return pa.unify_schemas(schemas)
    merged = pa.unify_schemas([pa.schema([f for f in s if f.name not in widened]) for s in schemas])
    extra = [pa.field(name, t) for name, t in widened.items() if t is not None]
    return pa.schema(list(merged) + extra, metadata=merged.metadata)


def _footer_schema(path: str, filesystem) -> pa.Schema:
    """The schema in one file's footer. Fetching the footer's bytes is a storage read like any other (perhaps
    failing transiently); bytes that then do not decode are a damaged file (truncated, overwritten, not
    Parquet at all), which no retry mends. pyarrow raises the same OSError for both, so they are kept apart."""
    uri = _file_uri(path, filesystem)
    with storage_errors("read", uri):
        with filesystem.open_input_file(path) as file:
            size = file.size()
            tail = file.read_at(min(size, FOOTER_GUESS_BYTES), size - min(size, FOOTER_GUESS_BYTES))
            needed = _footer_length(tail) + 8
            if len(tail) < needed <= size:  # a footer longer than the guess (many columns): one more request
                tail = file.read_at(needed, size - needed)
    try:
        return pq.read_schema(pa.BufferReader(tail))
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(uri, exc) from exc


def _unreadable(uri: str, exc: BaseException) -> StorageError:
    return StorageError(f"cannot read {uri}: not a readable Parquet file ({_one_line(exc)})")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())  # pyarrow's thrift errors end in (or hold) a line break


def _file_uri(path: str, filesystem) -> str:
    return path if isinstance(filesystem, pafs.LocalFileSystem) else f"{filesystem.type_name}://{path}"


@contextmanager
def scan_errors(dataset: ds.Dataset) -> Iterator[None]:
    """A read of ``dataset`` inside the block that fails on a file damaged past its footer (which `dataset` checked)
    names that file: pyarrow's error does not, so on the error path only the files are read one at a time to
    find it. A storage failure (S3 unreachable) stays a transient StorageError."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        for fragment in dataset.get_fragments():
            try:
                fragment.to_table(schema=dataset.schema, use_threads=False)
            except (pa.ArrowException, OSError) as damaged:
                uri = _file_uri(fragment.path, fragment.filesystem)
                if "AWS Error" in str(damaged):  # the store, not the file
                    raise StorageError(f"cannot read {uri}: {_one_line(damaged)}", transient=True) from exc
                raise _unreadable(uri, damaged) from exc
        raise


def _footer_length(tail: bytes) -> int:
    """The footer length a Parquet file's last 8 bytes announce (0 when they are not a Parquet ending)."""
    if len(tail) < 8 or tail[-4:] != PARQUET_MAGIC:
        return 0
    return int.from_bytes(tail[-8:-4], "little")


def _common_type(types: list[pa.DataType]) -> Optional[pa.DataType]:
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types):
        return pa.float64()
    if all(not pa.types.is_nested(t) for t in types):
        return pa.large_string()
    return None


# ------------------------------------------------------------------------------------ writer


@dataclass
class _WrittenPart:
    name: str
    rows: int
    bytes: int


class _RollingParquetWriter:
    """Writes batches into part-00000.parquet, part-00001.parquet, ... of one directory.

    Small batches (an API page each) are coalesced into row groups of ``row_group_rows`` /
    ``row_group_bytes``: each ``ParquetWriter.write_table`` call ends a row group, and thousands of
    tiny row groups would make the file slow to read. Memory therefore holds at most one row group
    of batches plus the sink's buffer.
    """

    def __init__(
        self,
        schema: pa.Schema,
        open_sink: Callable[[str], Sink],
        *,
        compression: str,
        max_rows_per_file: int,
        max_bytes_per_file: int,
        row_group_rows: int,
        row_group_bytes: int,
    ) -> None:
        self.schema, self._open_sink, self.compression = schema, open_sink, compression
        self.max_rows_per_file, self.max_bytes_per_file = max_rows_per_file, max_bytes_per_file
        self.row_group_rows = min(row_group_rows, max_rows_per_file)
        self.row_group_bytes = row_group_bytes
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: Sink | None = None
        self._current_name = ""
        self._rows_in_file = 0
        self._written: list[_WrittenPart] = []

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            room = self.max_rows_per_file - self._rows_in_file - self._pending_rows
            head, batch = batch.slice(0, room), batch.slice(room)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            self._pending_bytes += head.nbytes
            if (
                self._pending_rows >= self.row_group_rows
                or self._pending_bytes >= self.row_group_bytes
                or self._rows_in_file + self._pending_rows >= self.max_rows_per_file
            ):
                self._flush_row_group()

    def open_first_file(self) -> None:
        """Open part-00000 now; with zero rows it is still closed into a valid, typed file."""
        self._open_part()

    def close(self) -> list[_WrittenPart]:
        self._flush_row_group()
        self._finish_part()
        return self._written

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.discard()
        if self._writer is not None:
            try:
                self._writer.close()  # its footer goes nowhere; this only stops __del__ retrying
            except Exception:
                pass
        self._writer = self._sink = None
        self._pending.clear()

    def _flush_row_group(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self._open_part()
        self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema))
        self._rows_in_file += self._pending_rows
        self._pending.clear()  # drop our references: the batches' memory can be freed now
        self._pending_rows = self._pending_bytes = 0
        if self._rows_in_file >= self.max_rows_per_file or self._sink.tell() >= self.max_bytes_per_file:
            self._finish_part()

    def _open_part(self) -> None:
        name = f"{PART_FILE_PREFIX}{len(self._written):05d}{PART_FILE_SUFFIX}"
        self._sink = self._open_sink(name)
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression=self.compression)
        self._current_name = name

    def _finish_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = self._sink.tell()
        self._sink.close()
        self._written.append(_WrittenPart(self._current_name, self._rows_in_file, size))
        self._writer = self._sink = None
        self._rows_in_file = 0
