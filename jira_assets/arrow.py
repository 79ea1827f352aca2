"""Jira records -> typed Arrow record batches, losslessly. No Dagster import.

Typed columns are a convenience for analysts; the whole record also lands as JSON text, so a value that does
not fit its column's type (a custom field holding a list one day and a string the next, C09) is never lost:
the typed cell is null, the mismatch is counted for the materialization's metadata, and `_raw` keeps it.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Callable, Iterable, Optional, Sequence

import orjson
import pyarrow as pa

from jira_assets.catalog import BOOL, DATE, FLOAT, INT, JSON, STR, STR_LIST, TS, Column

RAW_COLUMN = "_raw"
EXTRACTED_AT_COLUMN = "_extracted_at"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MISSING = object()


class Mismatch(Exception):
    """A value whose JSON type does not fit its column."""


def dig(record: Any, path: Sequence[str]) -> Any:
    """The value at a dotted path, or _MISSING when any step is absent (null stays None)."""
    value = record
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


def to_epoch_ms(value: Any) -> int:
    """Jira timestamps: ISO strings with any offset form ("-0800", "Z", "+05:30") or epoch milliseconds."""
    if isinstance(value, bool):
        raise Mismatch(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Mismatch(value) from None
        if parsed.tzinfo is None:  # a bare date or local time: Jira means UTC for our purposes
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
    raise Mismatch(value)


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise Mismatch(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise Mismatch(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise Mismatch(value) from None
    raise Mismatch(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise Mismatch(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise Mismatch(value) from None
    raise Mismatch(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):  # Jira settings carry booleans as strings
        return value == "true"
    raise Mismatch(value)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            raise Mismatch(value) from None
    raise Mismatch(value)


def to_json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _to_str_list(value: Any) -> list:
    if not isinstance(value, list):
        raise Mismatch(value)
    return [_to_str(v) for v in value]


def _to_int_list(value: Any) -> list:
    if not isinstance(value, list):
        raise Mismatch(value)
    return [_to_int(v) for v in value]


_COERCERS: dict[pa.DataType, Callable[[Any], Any]] = {
    STR: _to_str,
    INT: _to_int,
    FLOAT: _to_float,
    BOOL: _to_bool,
    TS: to_epoch_ms,
    DATE: _to_date,
    JSON: to_json_text,
    STR_LIST: _to_str_list,
    pa.list_(pa.int64()): _to_int_list,
}


def coercer(type_: pa.DataType) -> Callable[[Any], Any]:
    try:
        return _COERCERS[type_]
    except KeyError:
        raise TypeError(f"no conversion from JSON to Arrow type {type_}") from None


def column_field(column: Column) -> pa.Field:
    description = column.description or f"from `{column.source or column.name}`"
    if column.type == JSON:
        description += " (JSON text)"
    return pa.field(column.name, column.type, nullable=True, metadata={"description": description})


class RecordConverter:
    """Turns pages of records into record batches of one fixed schema, counting type mismatches.

    `getters` lets a caller supply a function per column instead of a dotted path (issues use this for
    custom fields typed from /field).
    """

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        getters: Optional[dict[str, Callable[[Any], Any]]] = None,
        keep_raw: bool = True,
        extracted_at: Optional[dt.datetime] = None,
    ) -> None:
        self.columns = tuple(columns)
        fields = [column_field(c) for c in self.columns]
        if keep_raw:
            fields.append(pa.field(RAW_COLUMN, JSON, metadata={"description": "the record exactly as Jira sent it (JSON text)"}))
        fields.append(pa.field(EXTRACTED_AT_COLUMN, TS, metadata={"description": "when jira-assets fetched the record"}))
        self.schema = pa.schema(fields)
        self._keep_raw = keep_raw
        self._getters = getters or {}
        self._paths = [c.path for c in self.columns]
        self._coercers = [coercer(c.type) for c in self.columns]
        self._extracted_at_ms = to_epoch_ms((extracted_at or dt.datetime.now(dt.timezone.utc)).isoformat())
        self.type_mismatches: Counter[str] = Counter()
        self.rows = 0

    def convert(self, records: Sequence[Any]) -> pa.RecordBatch:
        arrays: list[list] = []
        for column, path, coerce in zip(self.columns, self._paths, self._coercers):
            getter = self._getters.get(column.name)
            values = []
            append = values.append
            for record in records:
                value = getter(record) if getter else dig(record, path)
                if value is None or value is _MISSING:
                    append(None)
                    continue
                try:
                    append(coerce(value))
                except Mismatch:
                    self.type_mismatches[column.name] += 1
                    append(None)
            arrays.append(values)
        if self._keep_raw:
            arrays.append([to_json_text(r) for r in records])
        arrays.append([self._extracted_at_ms] * len(records))
        self.rows += len(records)
        return pa.RecordBatch.from_arrays(
            [pa.array(values, type=f.type) for values, f in zip(arrays, self.schema)], schema=self.schema
        )

    def batches(self, pages: Iterable[Sequence[Any]]) -> Iterable[pa.RecordBatch]:
        for page in pages:
            if page:
                yield self.convert(page)

    def metadata(self) -> dict:
        return {"jira/type_mismatches": dict(self.type_mismatches)} if self.type_mismatches else {}
