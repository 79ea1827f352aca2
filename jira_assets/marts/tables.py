"""Reading raw tables for the marts: typed projections, latest captures, latest versions. No Dagster import.

Every function takes a `pyarrow.dataset.Dataset` (what the Parquet IO manager hands a downstream asset: a
lazy dataset over the upstream partitions, with the hive partition column `date`) or a `pyarrow.Table`
(tests build those by hand). Only the columns a mart needs are scanned; a column that a table does not have
(an upstream never materialized, an older file) reads as nulls of the declared type, so a mart never fails
because a dimension is missing.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from jira_assets.parquet.store import scan_errors

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
    with scan_errors(dataset):
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


VERSION_ORDER = [(EXTRACTED_AT, "descending")]


def latest_version_partitions(source: Source, key: str, key_type: pa.DataType, version: str) -> pa.Table:
    """(key, date): the partition holding each record's newest version (greatest `version`, then the latest
    extraction), from a scan of four narrow columns only."""
    narrow = read(source, {key: key_type, version: TS, EXTRACTED_AT: TS, PARTITION_COLUMN: pa.string()})
    order = [(version, "descending"), *VERSION_ORDER, (PARTITION_COLUMN, "descending")]
    return first_per_key(narrow, [key], order).select([key, PARTITION_COLUMN])


def newest_partitions(source: Source, key: str, key_type: pa.DataType) -> pa.Table:
    """(key, date): the newest partition holding any row of each key. For child tables a partition holds the
    complete list of children of each parent it contains, so older partitions are superseded copies."""
    narrow = read(source, {key: key_type, PARTITION_COLUMN: pa.string()})
    return first_per_key(narrow, [key], [(PARTITION_COLUMN, "descending")])


def read_located(source: Source, located: pa.Table, key: str, columns: Mapping[str, pa.DataType],
                 filter: Optional[ds.Expression] = None) -> pa.Table:
    """`columns` of the rows whose (key, date) is in `located`, read partition by partition (files pruned);
    for an unpartitioned table (hand-built in tests), every row of those keys."""
    dataset = as_dataset(source)
    by_date: dict[Optional[str], list] = {}
    for date, record_key in zip(located.column(PARTITION_COLUMN).to_pylist(),
                                located.column(key).to_pylist()):
        by_date.setdefault(date if is_partitioned(dataset) else None, []).append(record_key)
    parts = []
    for date in sorted(by_date, key=str):
        keys = pa.array(by_date[date], type=located.schema.field(key).type)
        keys = keys.cast(dataset.schema.field(key).type)
        where = ds.field(key).isin(keys)
        if date is not None:
            where = (ds.field(PARTITION_COLUMN) == date) & where
        parts.append(read(dataset, columns, filter=where if filter is None else where & filter))
    return pa.concat_tables(parts) if parts else read(None, columns)


def is_partitioned(source: Source) -> bool:
    return PARTITION_COLUMN in column_names(source)


def latest_versions(source: Source, key: str, version: str, columns: Mapping[str, pa.DataType]) -> pa.Table:
    """The latest version of every record of an incremental table, read in two passes: where each record's
    newest version lives (narrow columns), then `columns` of those rows only, so wide columns are read once
    per record rather than once per version."""
    wanted = {**columns, version: TS, EXTRACTED_AT: TS}
    order = [(version, "descending"), *VERSION_ORDER]
    located = latest_version_partitions(source, key, columns[key], version)
    # a key stored twice in one partition (a failed primary-key check) still yields one row
    return first_per_key(read_located(source, located, key, wanted), [key], order).select(list(columns))


def lookup(keys: pa.ChunkedArray, mapping: Mapping, type_: pa.DataType = pa.string()) -> pa.Array:
    """`mapping[k]` for every key (null where absent)."""
    return pa.array([mapping.get(k) for k in keys.to_pylist()], type=type_)


def to_dict(table: pa.Table, key: str, value: str) -> dict:
    return {
        k: v for k, v in zip(table.column(key).to_pylist(), table.column(value).to_pylist()) if k is not None
    }


def rows_of_latest_partition(source: Source, key: str, columns: Mapping[str, pa.DataType],
                             filter: Optional[ds.Expression] = None) -> pa.Table:
    """For every `key`, all its rows from the newest partition that holds any (see `newest_partitions`)."""
    return read_located(source, newest_partitions(source, key, columns[key]), key, columns, filter)
