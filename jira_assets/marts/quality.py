"""Data-quality measurements behind the raw asset checks, on lazy datasets. No Dagster import."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

EXAMPLES = 5


@dataclass(frozen=True)
class KeyReport:
    rows: int
    duplicated_keys: int  # distinct keys stored more than once
    duplicate_rows: int  # rows beyond the first of each key
    examples: list  # a few duplicated keys


def duplicate_keys(data: ds.Dataset | pa.Table, key: Sequence[str]) -> KeyReport:
    """Keys stored more than once (reads only the key columns). A missing key column is the not-null check's
    finding, so it counts no duplicates here."""
    if any(k not in data.schema.names for k in key):
        return KeyReport(data.count_rows() if isinstance(data, ds.Dataset) else data.num_rows, 0, 0, [])
    table = data.to_table(columns=list(key)) if isinstance(data, ds.Dataset) else data.select(list(key))
    if table.num_rows == 0:
        return KeyReport(0, 0, 0, [])
    counts = table.group_by(list(key)).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    extra = int(pc.sum(repeated.column("count_all")).as_py() or 0) - repeated.num_rows
    examples = [tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]
                for r in repeated.slice(0, EXAMPLES).to_pylist()]
    return KeyReport(table.num_rows, repeated.num_rows, extra, examples)


def null_counts(data: ds.Dataset | pa.Table, columns: Sequence[str]) -> dict[str, int]:
    """Nulls per column; a required column absent from the data counts every row as null."""
    names = data.schema.names
    present = [c for c in columns if c in names]
    table = data.to_table(columns=present) if isinstance(data, ds.Dataset) else data.select(present)
    rows = (
        table.num_rows if present else (data.count_rows() if isinstance(data, ds.Dataset) else data.num_rows)
    )
    return {c: (table.column(c).null_count if c in present else rows) for c in columns}


def schema_of(schema: pa.Schema, drop: Sequence[str] = ()) -> dict[str, str]:
    return {f.name: str(f.type) for f in schema if f.name not in drop}


def schema_changes(previous: Optional[Mapping[str, str]], current: Mapping[str, str]) -> dict[str, object]:
    """Columns added, removed or retyped between two {column: type} schemas (nothing when there is no
    previous)."""
    if previous is None:
        return {"added": [], "removed": [], "type_changed": {}}
    return {
        "added": sorted(set(current) - set(previous)),
        "removed": sorted(set(previous) - set(current)),
        "type_changed": {c: f"{previous[c]} -> {current[c]}" for c in sorted(set(previous) & set(current))
                         if previous[c] != current[c]},
    }


def any_change(changes: Mapping[str, object]) -> bool:
    return bool(changes["added"] or changes["removed"] or changes["type_changed"])
