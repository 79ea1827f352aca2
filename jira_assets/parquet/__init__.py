"""Generic streaming Parquet storage (local folder or S3) and its Dagster IO manager.

``ParquetIOManager`` is imported lazily so the store can be used without importing Dagster.
"""
from jira_assets.parquet.errors import MissingPartitionsError, StorageError
from jira_assets.parquet.store import ParquetStore, WriteResult
from jira_assets.parquet.stream import PartitionedInput, PartitionedOutput, RecordBatchStream

__all__ = [
    "MissingPartitionsError",
    "ParquetIOManager",
    "ParquetStore",
    "PartitionedInput",
    "PartitionedOutput",
    "RecordBatchStream",
    "StorageError",
    "WriteResult",
]


def __getattr__(name: str):
    if name == "ParquetIOManager":
        from jira_assets.parquet.io_manager import ParquetIOManager

        return ParquetIOManager
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
