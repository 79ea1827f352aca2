"""Jira records -> typed Arrow record batches, losslessly. No Dagster import.

Typed columns are a convenience for analysts; the whole record also lands as JSON text, so a value that does
not fit its column's type (a custom field holding a list one day and a string the next, C09) is never lost:
the typed cell is null, the mismatch is counted for the materialization's metadata, and `_raw` keeps it.
"""
from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from typing import Any, Callable, Iterable, Optional, Sequence

import orjson
import pyarrow as pa

from jira_assets.catalog import BOOL, DATE, FLOAT, INT, JSON, STR, STR_LIST, TS, Column

def _prefer_jemalloc() -> None:
    """Arrow's jemalloc pool instead of its default (mimalloc): in a step that streams pages into Parquet it
    holds ~45 MB less resident memory and spends less CPU. An explicit ARROW_DEFAULT_MEMORY_POOL wins."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError, pa.ArrowNotImplementedError):  # a build without jemalloc
        pass


_prefer_jemalloc()

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


_ONE_MS = dt.timedelta(milliseconds=1)


def to_epoch_ms(value: Any) -> int:
    """Jira timestamps: ISO strings with any offset form ("-0800", "Z", "+05:30") or epoch milliseconds."""
    if type(value) is str:  # the common case first (hot: every timestamp cell)
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Mismatch(value) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return (parsed - _EPOCH) // _ONE_MS
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
        return (parsed - _EPOCH) // _ONE_MS
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


# A value of exactly this Python type is already what its column stores: no coercion call needed.
_PASS_THROUGH: dict[pa.DataType, type] = {STR: str, INT: int, FLOAT: float, BOOL: bool}


class _Never:
    """Matches no value's type (columns whose every value needs converting)."""


def path_getter(path: Sequence[str]) -> Callable[[Any], Any]:
    """`dig` for one fixed path, unrolled (it runs for every cell of every page)."""
    if len(path) == 1:
        (a,) = path

        def get(record: Any) -> Any:
            return record.get(a, _MISSING) if isinstance(record, dict) else _MISSING
    elif len(path) == 2:
        a, b = path

        def get(record: Any) -> Any:
            if not isinstance(record, dict):
                return _MISSING
            value = record.get(a, _MISSING)
            return value.get(b, _MISSING) if isinstance(value, dict) else _MISSING
    elif len(path) == 3:
        a, b, c = path

        def get(record: Any) -> Any:
            if not isinstance(record, dict):
                return _MISSING
            value = record.get(a, _MISSING)
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(b, _MISSING)
            return value.get(c, _MISSING) if isinstance(value, dict) else _MISSING
    else:
        path = tuple(path)

        def get(record: Any) -> Any:
            return dig(record, path)
    return get


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


def _json_array(values: list, type_: pa.DataType) -> pa.Array:
    """orjson's output is valid UTF-8, so binary -> string is a zero-copy view."""
    return pa.array(values, type=pa.large_binary() if type_ == pa.large_string() else pa.binary()).view(type_)


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
        # per column: name, how to read the value, how to coerce it, the type that passes as is, JSON text?
        self._plan = [
            (c.name, self._getters.get(c.name) or path_getter(c.path), coerce,
             _PASS_THROUGH.get(c.type, _Never), c.type == JSON)
            for c, coerce in zip(self.columns, self._coercers)
        ]
        self._extracted_at_ms = to_epoch_ms((extracted_at or dt.datetime.now(dt.timezone.utc)).isoformat())
        self.type_mismatches: Counter[str] = Counter()
        self.rows = 0

    def convert(self, records: Sequence[Any]) -> pa.RecordBatch:
        arrays: list[pa.Array] = []
        mismatches = self.type_mismatches
        dumps = orjson.dumps
        for (name, get, coerce, as_is, json_text), field in zip(self._plan, self.schema):
            values: list = []
            append = values.append
            if json_text:  # JSON text goes to Arrow as UTF-8 bytes: no str objects in between
                for record in records:
                    value = get(record)
                    append(None if value is None or value is _MISSING else dumps(value))
                arrays.append(_json_array(values, field.type))
                continue
            for record in records:
                value = get(record)
                if value is None or value is _MISSING:
                    append(None)
                elif type(value) is as_is:
                    append(value)
                else:
                    try:
                        append(coerce(value))
                    except Mismatch:
                        mismatches[name] += 1
                        append(None)
            arrays.append(pa.array(values, type=field.type))
        if self._keep_raw:
            arrays.append(_json_array([dumps(r) for r in records], JSON))
        arrays.append(pa.array([self._extracted_at_ms] * len(records), type=TS))
        self.rows += len(records)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def batches(self, pages: Iterable[Sequence[Any]]) -> Iterable[pa.RecordBatch]:
        for page in pages:
            if page:
                yield self.convert(page)

    def metadata(self) -> dict:
        return {"jira/type_mismatches": dict(self.type_mismatches)} if self.type_mismatches else {}
