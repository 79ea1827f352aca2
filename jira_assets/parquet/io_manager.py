"""ParquetIOManager: Dagster outputs streamed into a ParquetStore, inputs loaded back lazily."""
from __future__ import annotations

import json
import types
import typing
from typing import Any, Optional

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import Field, PrivateAttr

from jira_assets.parquet.errors import MissingPartitionsError, StorageError
from jira_assets.parquet.glue import GlueCatalog
from jira_assets.parquet.store import ParquetStore, WriteResult, preview_list
from jira_assets.parquet.stream import PartitionedInput, PartitionedOutput, RecordBatchStream

DEFAULT_BASE_PATH = ".jira_assets/lake"


class ParquetIOManager(dg.ConfigurableIOManager):
    """Writes each asset to ``<base_path>/<asset key path>/<partition_column>=<key>/part-NNNNN.parquet``.

    Outputs may be a ``RecordBatchStream`` (streamed, never held whole), a ``pyarrow.Table`` or a
    pandas DataFrame; ``None`` writes nothing. A run over several partitions returns a
    ``PartitionedOutput`` (one producer per key): each partition is written in turn, with its own
    metadata. Inputs load as a lazy ``pyarrow.dataset.Dataset`` over the upstream partitions the input
    maps to, as a DataFrame / Table when annotated so, or, annotated ``PartitionedInput``, as one
    dataset per upstream partition.
    Set input metadata ``allow_missing_partitions=True`` to skip upstream partitions never written.
    """

    base_path: str = Field(
        default=DEFAULT_BASE_PATH, description="Local folder or s3://bucket/prefix for the Parquet tables."
    )
    compression: str = Field(default="zstd", description="Parquet compression codec.")
    s3_endpoint_url: Optional[str] = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, moto, ...)."
    )
    s3_region: Optional[str] = Field(default=None, description="AWS region of the bucket.")
    sse_kms_key_id: Optional[str] = Field(
        default=None, description="KMS key id or ARN: objects are written with SSE-KMS under this key."
    )
    partition_column: str = Field(
        default="date", description="Hive column name of the partition directories (<column>=<key>)."
    )
    max_rows_per_file: int = Field(
        default=1_000_000, description="A partition rolls over into a new part file after this many rows."
    )
    glue_database: Optional[str] = Field(
        default=None, description="AWS Glue Data Catalog database: when set, every table written is registered "
        "(or updated) there with its partitions, so Athena can query it at once. Off when empty."
    )
    glue_table_prefix: str = Field(default="", description="Prefix of the Glue table names (jira_raw_issues...).")
    glue_endpoint_url: Optional[str] = Field(
        default=None, description="Endpoint of the Glue API (a test server such as moto); default AWS."
    )
    glue_create_database: bool = Field(
        default=True, description="Create the Glue database on first use when it does not exist."
    )

    _store: ParquetStore | None = PrivateAttr(default=None)
    _glue: GlueCatalog | None = PrivateAttr(default=None)

    @property
    def store(self) -> ParquetStore:
        if self._store is None:
            self._store = ParquetStore(
                self.base_path, compression=self.compression, s3_endpoint_url=self.s3_endpoint_url,
                s3_region=self.s3_region, sse_kms_key_id=self.sse_kms_key_id,
                max_rows_per_file=self.max_rows_per_file,
            )
        return self._store

    @property
    def glue(self) -> GlueCatalog | None:
        if self.glue_database and self._glue is None:
            self._glue = GlueCatalog(
                self.glue_database, endpoint_url=self.glue_endpoint_url, region=self.s3_region,
                table_prefix=self.glue_table_prefix, create_database=self.glue_create_database,
            )
        return self._glue

    # --------------------------------------------------------------------------------- output

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return  # e.g. an asset that wrote its data itself
        keys = [str(key) for key in context.asset_partition_keys] if context.has_asset_partitions else []
        if len(keys) > 1 or isinstance(obj, PartitionedOutput):
            self._write_partitions(context, keys, obj)
            return
        partition = (self.partition_column, keys[0]) if keys else None
        context.add_output_metadata(self._write_one(context, partition, obj))

    def _write_partitions(self, context: dg.OutputContext, keys: list[str], obj: Any) -> None:
        """A run over several partitions: each written (atomically) in turn, each with its own metadata. A
        failure leaves the partitions already written complete and the later ones as they were."""
        table = "/".join(_table_path(context))
        if not isinstance(obj, PartitionedOutput):
            raise dg.DagsterInvariantViolationError(
                f"ParquetIOManager writes one partition per output, but this run covers {len(keys)} partitions "
                f"of {table} ({keys[0]} ... {keys[-1]}): return a PartitionedOutput with one producer per "
                "partition key, or launch one run per partition."
            )
        if sorted(obj.keys) != sorted(keys):
            raise dg.DagsterInvariantViolationError(
                f"{table}: the output's partitions {preview_list(obj.keys)} are not the run's {preview_list(keys)}"
            )
        written: list[tuple[str, dict[str, Any]]] = []
        for key in keys:
            try:
                metadata = self._write_one(context, (self.partition_column, key), obj.produce(key))
            except Exception as exc:
                _record_written(context, written)
                raise _naming_partition(exc, table, key, [k for k, _ in written], keys) from exc
            written.append((key, metadata))
            if len(keys) == 1:
                context.add_output_metadata(metadata)
            else:  # partition-scoped: each partition's materialization shows its own rows, files and requests
                context.step_context.add_asset_metadata(metadata, asset_key=context.asset_key, partition_key=key)

    def _write_one(self, context: dg.OutputContext, partition: tuple[str, str] | None, obj: Any) -> dict[str, Any]:
        data = _as_arrow(obj)
        table_path = _table_path(context)
        try:
            result = self.store.write(table_path, partition, data)
            metadata = _stream_metadata(obj)
            metadata.update(_write_metadata(result, partitioned=partition is not None))  # facts win over claims
            if self.glue is not None:  # after the data is in place: a table never points at files not yet written
                metadata.update(self.glue.register(
                    table_path, self.store.uri(table_path), result.schema, partition, result.uri,
                    description=_asset_description(context),
                ))
        except StorageError as exc:  # one line naming the cause as the step's error, not a wrapped traceback
            raise dg.Failure(description=f"{'/'.join(table_path)}: {exc}", allow_retries=exc.transient
                             and not _last_attempt(context)) from exc
        return metadata

    # ---------------------------------------------------------------------------------- input

    def load_input(self, context: dg.InputContext) -> Any:
        table_path = context.asset_key.path if context.has_asset_key else _table_path(context.upstream_output)
        partitions = None  # an unpartitioned upstream is read whole
        if context.has_asset_partitions:
            partitions = [str(key) for key in context.asset_partition_keys]
        allow_missing = bool((context.definition_metadata or {}).get("allow_missing_partitions", False))
        wanted = _wanted_type(context)
        try:
            if wanted is PartitionedInput and partitions is not None:
                return PartitionedInput(self.store.partition_datasets(table_path, partitions,
                                                                      allow_missing=allow_missing))
            dataset = self.store.dataset(table_path, partitions, allow_missing=allow_missing)
            if wanted is PartitionedInput:  # an unpartitioned upstream: the whole table under no key
                return PartitionedInput({None: dataset})
        except StorageError as exc:  # e.g. the upstream partition was never materialized: say so in one line
            name = "/".join(table_path)
            hint = f"; materialize {name} first" if isinstance(exc, MissingPartitionsError) else ""
            raise dg.Failure(description=f"input {name}: {exc}{hint}", allow_retries=exc.transient
                             and not _last_attempt(context)) from exc
        if wanted is pd.DataFrame:
            return dataset.to_table().to_pandas()
        if wanted is pa.Table:
            return dataset.to_table()
        return dataset


def _record_written(context: dg.OutputContext, written: list[tuple[str, dict[str, Any]]]) -> None:
    """Record the partitions a failing multi-partition write completed: Dagster only reports a step's
    materializations when it succeeds, and these partitions are already replaced on storage."""
    for key, metadata in written:
        context.log_event(dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata))


def _naming_partition(exc: Exception, table: str, key: str, written: list[str], keys: list[str]) -> dg.Failure:
    """The step's error for a multi-partition write that failed on ``key``: which partition failed, which
    were written before it, which are not recorded (their stored data is as before, except when only the Glue
    registration of ``key`` failed), then the cause."""
    done = f"{_span(written)} written and recorded; " if written else ""
    where = f"{table} partition {key} failed ({done}{_span(keys[keys.index(key):])} not recorded)"
    if isinstance(exc, dg.Failure):
        return dg.Failure(description=f"{where}: {exc.description}", metadata=exc.metadata,
                          allow_retries=exc.allow_retries)
    return dg.Failure(description=f"{where}: {type(exc).__name__}: {exc}")


def _span(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]} ({len(keys)} partitions)"


def _last_attempt(context: dg.OutputContext | dg.InputContext) -> bool:
    """True on the step's last attempt: no retry policy, or its retries are used up."""
    try:
        step = context.step_context
        policy = step.op_retry_policy
        return policy is None or step.previous_attempt_count >= policy.max_retries
    except Exception:  # noqa: BLE001 - contexts built by hand have no step
        return False


def _asset_description(context: dg.OutputContext) -> str | None:
    try:
        return context.asset_spec.description if context.has_asset_key else None
    except Exception:  # noqa: BLE001 - contexts built by hand may have no assets definition
        return None


def _table_path(context: dg.OutputContext | None) -> list[str]:
    if context is None:
        raise dg.DagsterInvariantViolationError("ParquetIOManager cannot locate an input without upstream")
    if context.has_asset_key:
        return list(context.asset_key.path)
    return list(context.get_identifier())  # op outputs: run id / step / output name


def _wanted_type(context: dg.InputContext) -> Any:
    try:
        wanted = context.dagster_type.typing_type
    except dg.DagsterInvariantViolationError:  # contexts built by hand may carry no type
        return ds.Dataset
    if typing.get_origin(wanted) in (typing.Union, types.UnionType):  # Optional[pd.DataFrame]
        wanted = next((arg for arg in typing.get_args(wanted) if arg is not type(None)), wanted)
    return wanted if wanted in (pd.DataFrame, pa.Table, PartitionedInput) else ds.Dataset


def _as_arrow(obj: Any) -> RecordBatchStream | pa.Table:
    if isinstance(obj, (RecordBatchStream, pa.Table)):
        return obj
    if isinstance(obj, pa.RecordBatchReader):
        return RecordBatchStream.from_reader(obj)
    if isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    raise dg.DagsterInvariantViolationError(
        f"ParquetIOManager cannot store a {type(obj).__name__}: return a RecordBatchStream, "
        "a pyarrow.Table or a pandas DataFrame"
    )


def _write_metadata(result: WriteResult, *, partitioned: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(result.rows),
        "dagster/uri": dg.MetadataValue.path(result.uri),
        "parquet/files": dg.MetadataValue.json(result.files),
        "parquet/bytes": dg.MetadataValue.int(result.bytes),
        "dagster/column_schema": dg.MetadataValue.table_schema(table_schema(result.schema)),
    }
    if partitioned:
        metadata["dagster/partition_row_count"] = dg.MetadataValue.int(result.rows)
    return metadata


def table_schema(schema: pa.Schema) -> dg.TableSchema:
    """The Dagster column schema of an Arrow schema (field metadata ``description`` is kept)."""
    columns = []
    for field in schema:
        description = (field.metadata or {}).get(b"description")
        columns.append(
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=description.decode() if description else None,
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
        )
    return dg.TableSchema(columns=columns)


def _stream_metadata(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, RecordBatchStream):
        return {}
    return {str(key): _metadata_value(value) for key, value in obj.metadata().items()}


def _metadata_value(value: Any) -> Any:
    """A value Dagster accepts as metadata: native ones pass, containers become JSON, others text."""
    if value is None or isinstance(value, (dg.MetadataValue, dg.TableSchema, str, bool, int, float)):
        return value
    if isinstance(value, (dict, list, tuple, set)):
        if isinstance(value, set):
            value = sorted(value, key=str)
        return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))
    return dg.MetadataValue.text(str(value))
