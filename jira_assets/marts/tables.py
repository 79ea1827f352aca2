"""Reading raw tables for the marts: typed projections, latest captures, latest versions. No Dagster import.

Every function takes a `pyarrow.dataset.Dataset` (what the Parquet IO manager hands a downstream asset: a
lazy dataset over the upstream partitions, with the hive partition column `date`) or a `pyarrow.Table`
(tests build those by hand). Only the columns a mart needs are scanned; a column that a table does not have
(an upstream never materialized, an older file) reads as nulls of the declared type, so a mart never fails
because a dimension is missing.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

PARTITION_COLUMN = "date"
EXTRACTED_AT = "_extracted_at"
TS = pa.timestamp("ms", tz="UTC")

Source = Union[ds.Dataset, pa.Table, None]


def as_dataset(source: Source) -> Optional[ds.Dataset]:
    if source is None:
        return None
    if isinstance(source, pa.Table):
        return ds.dataset(source)
    return source


def column_names(source: Source) -> list[str]:
    dataset = as_dataset(source)
    return [] if dataset is None else list(dataset.schema.names)


def read(
    source: Source, columns: Mapping[str, pa.DataType], filter: Optional[ds.Expression] = None
) -> pa.Table:
    """`columns` (name -> type) of `source`; absent columns are typed nulls; present ones are cast."""
    dataset = as_dataset(source)
    present = [] if dataset is None else [c for c in columns if c in dataset.schema.names]
    if not present:
        rows = 0 if dataset is None or not dataset.schema.names else dataset.count_rows(filter=filter)
        return pa.table({name: pa.nulls(rows, type_) for name, type_ in columns.items()})
    table = dataset.to_table(columns=present, filter=filter)
    arrays = []
    for name, type_ in columns.items():
        if name in present:
            arrays.append(cast(table.column(name), type_))
        else:
            arrays.append(pa.nulls(table.num_rows, type_))
    return pa.table(arrays, names=list(columns))


def cast(array: pa.ChunkedArray, type_: pa.DataType) -> pa.ChunkedArray:
    if array.type.equals(type_):
        return array
    if pa.types.is_timestamp(type_) and pa.types.is_timestamp(array.type) and array.type.tz is None:
        array = pc.assume_timezone(array, "UTC")
    return array.cast(type_)


def latest_capture(source: Source, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """A snapshot table's rows from its most recent capture date only (the whole table when unpartitioned)."""
    dataset = as_dataset(source)
    if dataset is None or PARTITION_COLUMN not in dataset.schema.names:
        return read(dataset, columns)
    dates = dataset.to_table(columns=[PARTITION_COLUMN]).column(0)
    if len(dates) == 0 or dates.null_count == len(dates):
        return read(None, columns)
    newest = pc.max(dates).as_py()
    return read(dataset, columns, filter=ds.field(PARTITION_COLUMN) == newest)


def first_per_key(table: pa.Table, key: Sequence[str], order: Sequence[tuple[str, str]]) -> pa.Table:
    """One row per `key`: the first by `order` ([(column, "ascending"|"descending")]); null keys dropped.

    Ties are broken by the order the rows came in, so the result is deterministic for a given input.
    """
    for name in key:
        table = table.filter(pc.is_valid(table.column(name)))
    if table.num_rows == 0:
        return table
    with_index = table.append_column("__row", pa.array(np.arange(table.num_rows)))
    sort_keys = [(k, "ascending") for k in key] + list(order) + [("__row", "ascending")]
    ordered = with_index.take(pc.sort_indices(with_index, sort_keys=sort_keys))
    keep = np.ones(ordered.num_rows, dtype=bool)
    same = np.ones(ordered.num_rows - 1, dtype=bool)
    for name in key:
        values = ordered.column(name).to_numpy(zero_copy_only=False)
        same &= values[1:] == values[:-1]
    keep[1:] = ~same
    return ordered.filter(pa.array(keep)).drop_columns(["__row"])


def latest_versions(
    source: Source,
    key: str,
    version: str,
    columns: Mapping[str, pa.DataType],
) -> pa.Table:
    """The latest version of every record of an incremental table, read in two passes.

    Pass one scans only (key, version, _extracted_at, date) to find, per key, the partition holding its
    newest version (greatest `version`, then latest extraction); pass two reads `columns` partition by
    partition for the winners only, so wide columns are read once per record rather than once per version.
    """
    dataset = as_dataset(source)
    wanted = {**columns, version: TS, EXTRACTED_AT: TS}
    order = [(version, "descending"), (EXTRACTED_AT, "descending")]
    if PARTITION_COLUMN not in column_names(dataset):
        return first_per_key(read(dataset, wanted), [key], order).select(list(columns))
    narrow = read(dataset, {key: columns[key], version: TS, EXTRACTED_AT: TS, PARTITION_COLUMN: pa.string()})
    winners = first_per_key(narrow, [key], order + [(PARTITION_COLUMN, "descending")])
    # a key stored twice in one partition (a failed primary-key check) still yields one row
    parts = [first_per_key(part, [key], order) for part in _read_partitions_of(dataset, winners, key, wanted)]
    return (pa.concat_tables(parts) if parts else read(None, wanted)).select(list(columns))


def _read_partitions_of(dataset: ds.Dataset, winners: pa.Table, key: str,
                        columns: Mapping[str, pa.DataType]) -> Iterable[pa.Table]:
    """`columns` of the rows whose (date, key) is in `winners`, one table per partition (files are pruned)."""
    by_date: dict[str, list] = {}
    for date, record_key in zip(
        winners.column(PARTITION_COLUMN).to_pylist(), winners.column(key).to_pylist()
    ):
        by_date.setdefault(date, []).append(record_key)
    key_type = dataset.schema.field(key).type
    for date in sorted(by_date):
        keys = pa.array(by_date[date], type=winners.schema.field(key).type).cast(key_type)
        yield read(dataset, columns, filter=(ds.field(PARTITION_COLUMN) == date) & ds.field(key).isin(keys))


def lookup(keys: pa.ChunkedArray, mapping: Mapping, type_: pa.DataType = pa.string()) -> pa.Array:
    """`mapping[k]` for every key (null where absent)."""
    return pa.array([mapping.get(k) for k in keys.to_pylist()], type=type_)


def to_dict(table: pa.Table, key: str, value: str) -> dict:
    return {
        k: v for k, v in zip(table.column(key).to_pylist(), table.column(value).to_pylist()) if k is not None
    }


def rows_of_latest_partition(source: Source, key: str, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """For every `key`, all its rows from the newest partition that holds any (child tables: a partition holds
    the complete list of children of each parent it contains, so older partitions are superseded copies)."""
    dataset = as_dataset(source)
    if PARTITION_COLUMN not in column_names(dataset):
        return read(dataset, columns)
    narrow = read(dataset, {key: columns[key], PARTITION_COLUMN: pa.string()})
    newest = first_per_key(narrow, [key], [(PARTITION_COLUMN, "descending")])
    parts = list(_read_partitions_of(dataset, newest, key, columns))
    return pa.concat_tables(parts) if parts else read(None, columns)
