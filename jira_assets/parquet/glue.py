"""Optional AWS Glue Data Catalog registration of the Parquet tables a ``ParquetStore`` writes. No Jira import.

After a table (or one hive partition of it) is written to S3, ``GlueCatalog.register`` makes it queryable in
Athena at once: the table is created, or updated when its columns changed, as an EXTERNAL Parquet table over the
table's S3 folder, with the store's partition column (``date``) as a string partition key, and the partition is
added (or refreshed) at its folder. Arrow types map to Glue/Hive types (``glue_type``). Off unless a database is
configured; nothing here runs, and no AWS call is made, without one.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from jira_assets.parquet.errors import StorageError, is_transient

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
MAX_COMMENT = 255  # Glue's limit for a column comment


class GlueError(StorageError):
    """The Glue Data Catalog refused or failed a registration; the message names the table and the cause."""


def glue_type(type_: pa.DataType, column: str = "?") -> str:
    """The Glue/Hive type of an Arrow type, as Athena reads it from Parquet."""
    t = pa.types
    if t.is_dictionary(type_):
        return glue_type(type_.value_type, column)
    if t.is_string(type_) or t.is_large_string(type_) or t.is_null(type_):
        return "string"  # an all-null column reads as string
    if t.is_boolean(type_):
        return "boolean"
    if t.is_int8(type_):
        return "tinyint"
    if t.is_int16(type_) or t.is_uint8(type_):
        return "smallint"
    if t.is_int32(type_) or t.is_uint16(type_):
        return "int"
    if t.is_int64(type_) or t.is_uint32(type_):
        return "bigint"
    if t.is_uint64(type_):
        return "decimal(20,0)"
    if t.is_float16(type_) or t.is_float32(type_):
        return "float"
    if t.is_float64(type_):
        return "double"
    if t.is_decimal(type_):
        return f"decimal({type_.precision},{type_.scale})"
    if t.is_date(type_):
        return "date"
    if t.is_timestamp(type_):
        return "timestamp"
    if t.is_binary(type_) or t.is_large_binary(type_) or t.is_fixed_size_binary(type_):
        return "binary"
    if t.is_list(type_) or t.is_large_list(type_) or t.is_fixed_size_list(type_):
        return f"array<{glue_type(type_.value_type, column)}>"
    if t.is_map(type_):
        return f"map<{glue_type(type_.key_type, column)},{glue_type(type_.item_type, column)}>"
    if t.is_struct(type_):
        members = [f"{_name(type_.field(i).name)}:{glue_type(type_.field(i).type, column)}"
                   for i in range(type_.num_fields)]
        return f"struct<{','.join(members)}>"
    raise GlueError(f"column {column!r}: Arrow type {type_} has no Glue/Hive equivalent; cast it before writing")


def glue_columns(schema: pa.Schema, skip: Sequence[str] = ()) -> list[dict[str, str]]:
    """Glue ``Columns`` for a schema (lower-case names, as Hive keeps them), with descriptions as comments."""
    columns = []
    for field in schema:
        if field.name in skip:
            continue
        column = {"Name": _name(field.name), "Type": glue_type(field.type, field.name)}
        description = (field.metadata or {}).get(b"description")
        if description:
            column["Comment"] = description.decode(errors="replace")[:MAX_COMMENT]
        columns.append(column)
    return columns


def _name(name: str) -> str:
    return name.lower()


def table_name(table_path: Sequence[str], prefix: str = "") -> str:
    """``["jira", "raw", "issues"]`` -> ``jira_raw_issues`` (Glue names: lower case, letters, digits, _)."""
    name = prefix + "_".join(table_path)
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:255]


class GlueCatalog:
    """Registers tables and partitions in one Glue database (created on first use unless told not to)."""

    def __init__(
        self,
        database: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        table_prefix: str = "",
        create_database: bool = True,
        client: Any = None,
    ) -> None:
        if not re.fullmatch(r"[a-z0-9_]{1,255}", database or ""):
            raise GlueError(f"glue_database {database!r}: use lower-case letters, digits and _ (e.g. jira_lake)")
        self.database = database
        self.table_prefix = table_prefix
        self.create_database = create_database
        self._endpoint_url, self._region = endpoint_url, region
        self._client = client
        self._database_ready = False
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._client is None:  # lazily: no AWS client (or credentials) until a table is registered
            import boto3

            self._client = boto3.client("glue", endpoint_url=self._endpoint_url, region_name=self._region)
        return self._client

    # -------------------------------------------------------------------------------- register

    def register(
        self,
        table_path: Sequence[str],
        table_location: str,
        schema: pa.Schema,
        partition: tuple[str, str] | None = None,
        partition_location: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create or update the table, then add or refresh the partition. Returns metadata for the write."""
        if not table_location.startswith("s3://"):
            raise GlueError(
                f"cannot register {'/'.join(table_path)} in Glue: its location {table_location} is not on S3; "
                "Glue tables need an s3:// base_path (or turn Glue off by unsetting glue_database)"
            )
        name = table_name(table_path, self.table_prefix)
        where = f"{self.database}.{name}"
        partition_keys = [partition[0]] if partition else []
        columns = glue_columns(schema, skip=partition_keys)
        with _glue_errors(f"register table {where}"):
            self._ensure_database()
            action = self._upsert_table(name, _folder(table_location), columns, partition_keys, description)
        metadata: dict[str, Any] = {"glue/table": where, "glue/table_action": action}
        if partition:
            with _glue_errors(f"add partition {partition[0]}={partition[1]} to {where}"):
                metadata["glue/partition_action"] = self._upsert_partition(
                    name, [partition[1]], _folder(partition_location or table_location), columns)
            metadata["glue/partition"] = f"{partition[0]}={partition[1]}"
        return metadata

    def _ensure_database(self) -> None:
        if self._database_ready:
            return
        with self._lock:
            if self._database_ready:
                return
            try:
                self.client.get_database(Name=self.database)
            except self.client.exceptions.EntityNotFoundException:
                if not self.create_database:
                    raise GlueError(
                        f"Glue database {self.database!r} does not exist; create it, or allow the IO manager to "
                        "(glue_create_database=true)"
                    ) from None
                try:
                    self.client.create_database(DatabaseInput={
                        "Name": self.database, "Description": "Parquet tables registered by jira-assets"})
                except self.client.exceptions.AlreadyExistsException:
                    pass  # another process created it first
            self._database_ready = True

    def _upsert_table(self, name: str, location: str, columns: list[dict], partition_keys: list[str],
                      description: str | None) -> str:
        keys = [{"Name": _name(k), "Type": "string"} for k in partition_keys]
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            current = None
        if current is not None:
            existing_keys = [k["Name"] for k in current.get("PartitionKeys") or []]
            if existing_keys != [k["Name"] for k in keys]:
                raise GlueError(
                    f"Glue table {self.database}.{name} is partitioned by {existing_keys or 'nothing'}, but this "
                    f"write by {[k['Name'] for k in keys] or 'nothing'}; drop the table in Glue to re-create it"
                )
            old_columns = (current.get("StorageDescriptor") or {}).get("Columns") or []
            merged = _merge_columns(old_columns, columns)
            if merged == old_columns and (current.get("StorageDescriptor") or {}).get("Location") == location:
                return "unchanged"
            columns = merged
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "PartitionKeys": keys,
            "StorageDescriptor": _storage(location, columns),
        }
        if description:
            table_input["Description"] = description[:2048]
        if current is None:
            try:
                self.client.create_table(DatabaseName=self.database, TableInput=table_input)
                return "created"
            except self.client.exceptions.AlreadyExistsException:  # a concurrent writer: update instead
                return self._upsert_table(name, location, columns, partition_keys, description)
        self.client.update_table(DatabaseName=self.database, TableInput=table_input)
        return "updated"

    def _upsert_partition(self, name: str, values: list[str], location: str, columns: list[dict]) -> str:
        partition_input = {"Values": values, "StorageDescriptor": _storage(location, columns)}
        try:
            self.client.create_partition(DatabaseName=self.database, TableName=name, PartitionInput=partition_input)
            return "created"
        except self.client.exceptions.AlreadyExistsException:
            self.client.update_partition(DatabaseName=self.database, TableName=name, PartitionValueList=values,
                                         PartitionInput=partition_input)
            return "updated"


def _merge_columns(old: list[dict], new: list[dict]) -> list[dict]:
    """The table keeps every column an older partition may still hold; new columns are appended, and a column
    written with a new type takes it (the store itself refuses mixed types on read)."""
    by_name = {c["Name"]: c for c in new}
    merged = [by_name.pop(c["Name"], c) for c in old]
    merged += [c for c in new if c["Name"] in by_name]
    return [{k: v for k, v in c.items() if k in ("Name", "Type", "Comment")} for c in merged]


def _storage(location: str, columns: list[dict]) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "Compressed": True,
    }


def _folder(uri: str) -> str:
    return uri.rstrip("/") + "/"


class _glue_errors:
    """Botocore failures inside the block become one-line ``GlueError``s naming what was being done."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, StorageError):
            return False
        try:
            import botocore.exceptions as boto
        except ImportError:  # pragma: no cover
            return False
        if isinstance(exc, boto.ClientError):
            error = exc.response.get("Error", {})
            cause = f"{error.get('Code', '')}: {error.get('Message', '') or exc}"
        elif isinstance(exc, boto.NoCredentialsError):
            cause = "no AWS credentials found"
        elif isinstance(exc, boto.BotoCoreError):
            cause = str(exc)
        else:
            return False
        raise GlueError(f"Glue Data Catalog: cannot {self.action}: {cause}", transient=is_transient(exc)) from exc
