"""Asset checks on every raw asset, one step per asset (all its checks read the partition once).

| check                  | severity | blocking | fails when                                                  |
|------------------------|----------|----------|-------------------------------------------------------------|
| `primary_key_unique`   | ERROR    | yes      | a primary key is stored twice in the partition              |
| `single_row`           | ERROR    | yes      | (objects without a key) more than one row                   |
| `primary_key_not_null` | ERROR    | yes      | a primary-key column is null or missing                     |
| `schema_unchanged`     | WARN     | no       | a column added, removed or retyped since the previous write |
| `count_matches_jira`   | ERROR    | no       | (issues) fewer stored than Jira counts for the window       |

Every check is evaluated per partition, also in a run that wrote a range of days: each day gets its own result, so a
duplicate is one stored twice within a day (an issue updated during the run may rightly sit in two days), and the
UI and automation see each day's status. Blocking checks stop downstream steps of the same run, and the marts'
automation condition holds them while a blocking check of any upstream partition is failing (see `automation.py`).
The count check is not blocking: missing issues make a partition incomplete, not wrong, and the next refresh of
that day repairs it.
"""

import dataclasses
import datetime as dt
import warnings
from typing import Any, Iterator, Optional

import dagster as dg
# Public AssetCheckEvaluation needs it to tie a result to the materialization it checked (what AssetCheckResult
# does for a step of one partition).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from jira_assets.catalog import OBJECTS, JiraObject
from jira_assets.defs.partitions import incremental_partitions, snapshot_partitions
from jira_assets.defs.raw import POOL, raw_key
from jira_assets.defs.resources import JiraCloudResource
from jira_assets.extract import Window, issue_jql
from jira_assets.marts import quality
from jira_assets.marts.census import CENSUS_OBJECT
from jira_assets.marts.tables import EXTRACTED_AT, PARTITION_COLUMN, TS
from jira_assets.parquet.errors import StorageError
from jira_assets.parquet.store import scan_errors
from jira_assets.parquet.stream import PartitionedInput

APPROXIMATE_COUNT_PATH = "/rest/api/2/search/approximate-count"
CHECKED_OBJECTS: tuple[JiraObject, ...] = (*OBJECTS, CENSUS_OBJECT)

UNIQUE = "primary_key_unique"
SINGLE_ROW = "single_row"
NOT_NULL = "primary_key_not_null"
SCHEMA = "schema_unchanged"
COUNT = "count_matches_jira"
PREVIOUS_PAGES = 20  # pages of 100 materializations searched for the previous run's (runs over many days, retries)


def check_names(obj: JiraObject) -> list[str]:
    names = [UNIQUE, NOT_NULL] if obj.primary_key else [SINGLE_ROW]
    names.append(SCHEMA)
    if obj.name == "issues":
        names.append(COUNT)
    return names


_DESCRIPTIONS = {
    UNIQUE: "Every primary key ({key}) appears once in the partition.",
    SINGLE_ROW: "The object is a singleton: at most one row per capture.",
    NOT_NULL: "No primary-key column ({key}) is null.",
    SCHEMA: "No column was added, removed or retyped since the previous materialization (a warning).",
    COUNT: "As many issues are stored as Jira's approximate count for the same JQL window, bounded by the "
    "time the extraction began (issues updated since then have moved to a later window).",
}
_BLOCKING = {UNIQUE, SINGLE_ROW, NOT_NULL}


def _specs(obj: JiraObject) -> list[dg.AssetCheckSpec]:
    """Partitioned like the asset, so a result belongs to the partition it checked (a Dagster preview feature
    in 1.13, whose warning is silenced here on purpose)."""
    partitions = incremental_partitions if obj.incremental else snapshot_partitions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name,
                asset=raw_key(obj.name),
                blocking=name in _BLOCKING,
                partitions_def=partitions,
                description=_DESCRIPTIONS[name].format(key=", ".join(obj.primary_key)),
            )
            for name in check_names(obj)
        ]


# ---- the checks themselves (each returns one AssetCheckResult) ---------------------------------------------

def _unique(obj: JiraObject, data: ds.Dataset) -> dg.AssetCheckResult:
    report = quality.duplicate_keys(data, obj.primary_key)
    return dg.AssetCheckResult(
        check_name=UNIQUE, passed=report.duplicated_keys == 0, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rows": report.rows, "duplicated_keys": report.duplicated_keys,
                  "duplicate_rows": report.duplicate_rows, "examples": dg.MetadataValue.json(
                      [list(e) if isinstance(e, tuple) else e for e in report.examples])},
        description=None if not report.duplicated_keys else
        f"{report.duplicated_keys} key(s) stored more than once, e.g. {report.examples[:3]}",
    )


def _single_row(data: ds.Dataset) -> dg.AssetCheckResult:
    rows = data.count_rows()
    return dg.AssetCheckResult(check_name=SINGLE_ROW, passed=rows <= 1, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"rows": rows})


def _not_null(obj: JiraObject, data: ds.Dataset) -> dg.AssetCheckResult:
    nulls = quality.null_counts(data, obj.primary_key)
    bad = {c: n for c, n in nulls.items() if n}
    return dg.AssetCheckResult(
        check_name=NOT_NULL, passed=not bad, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"null_counts": dg.MetadataValue.json(nulls)},
        description=None if not bad else f"null primary-key values: {bad}",
    )


def _schema(context: dg.AssetCheckExecutionContext, obj: JiraObject, checked: Any,
            data: ds.Dataset) -> dg.AssetCheckResult:
    current, previous = _materialized_schemas(context, raw_key(obj.name), checked)
    if current is None:  # no materialization metadata: the schema of the stored partition
        current = quality.schema_of(data.schema, drop=[PARTITION_COLUMN])
    changes = quality.schema_changes(previous, current)
    changed = quality.any_change(changes)
    return dg.AssetCheckResult(
        check_name=SCHEMA,
        passed=not changed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "added": dg.MetadataValue.json(changes["added"]),
            "removed": dg.MetadataValue.json(changes["removed"]),
            "type_changed": dg.MetadataValue.json(changes["type_changed"]),
            "compared_with_previous": previous is not None,
        },
        description=None if not changed else _describe(changes),
    )


def _describe(changes: dict) -> str:
    parts = []
    if changes["added"]:
        parts.append("added " + ", ".join(changes["added"]))
    if changes["removed"]:
        parts.append("removed " + ", ".join(changes["removed"]))
    if changes["type_changed"]:
        parts.append("retyped " + ", ".join(f"{c} ({t})" for c, t in changes["type_changed"].items()))
    return "; ".join(parts)


def _materialized_schemas(context: dg.AssetCheckExecutionContext, key: dg.AssetKey,
                          checked: Any) -> tuple[Optional[dict], Optional[dict]]:
    """({column: type} of the materialization being checked, of the one before it), from the IO manager's
    `dagster/column_schema` metadata. The one checked is the day's newest; the previous one is the newest of
    any day written by an earlier run that succeeded (a run over a range writes many days with one schema; the days
    a failed run wrote were never checked, so a change they brought is still reported)."""
    if checked is None:
        return None, None
    previous = _previous_checked_materialization(context, key, checked)
    return _schema_metadata(checked), None if previous is None else _schema_metadata(previous)


def _previous_checked_materialization(context: dg.AssetCheckExecutionContext, key: dg.AssetKey,
                                      checked: Any) -> Any:
    succeeded: dict[str, bool] = {}
    cursor = None
    for _ in range(PREVIOUS_PAGES):
        page = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, before_storage_id=checked.storage_id), limit=100, cursor=cursor)
        for record in page.records:
            if record.run_id == checked.run_id:
                continue
            if record.run_id not in succeeded:
                run = context.instance.get_run_by_id(record.run_id) if record.run_id else None
                succeeded[record.run_id] = run is None or run.status == dg.DagsterRunStatus.SUCCESS
            if succeeded[record.run_id]:
                return record
        if not page.has_more:
            return None
        cursor = page.cursor
    return None


def _latest_materialization(context: dg.AssetCheckExecutionContext, key: dg.AssetKey, day: Optional[str]) -> Any:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=None if day is None else [day]), limit=1).records
    return records[0] if records else None


def _schema_metadata(record: Any) -> Optional[dict]:
    value = (
        record.asset_materialization.metadata.get("dagster/column_schema")
        if record.asset_materialization
        else None
    )
    schema = getattr(value, "schema", None)
    return None if schema is None else {c.name: c.type for c in schema.columns}


def _count(context: dg.AssetCheckExecutionContext, jira: JiraCloudResource, day: str, checked: Any,
           data: ds.Dataset) -> dg.AssetCheckResult:
    """Stored issues vs Jira's approximate count, over [window start, min(window end, extraction start)).

    An issue Jira counts there was last updated before the extraction began, so it must be stored; issues
    updated since have moved to a later window and are left out on both sides."""
    start, end = incremental_partitions.time_window_for_partition_key(day)
    began = [t for t in (_writer_run_start(context, checked), _earliest_extraction(data)) if t is not None]
    upper = min(end, _floor_minute(min(began))) if began else end
    metadata: dict[str, Any] = {"window_start": start.isoformat(), "window_end": end.isoformat(),
                                "compared_until": upper.isoformat()}
    if upper <= start:
        return dg.AssetCheckResult(check_name=COUNT, passed=True, metadata={**metadata, "skipped": True},
                                   description="the extraction began at the window start: nothing to compare")
    settings = dataclasses.replace(jira.extract_settings(), overlap_minutes=0)
    jql = issue_jql(Window(start, upper), settings).split(" ORDER BY ")[0]
    answer = jira.get_client().post_json(APPROXIMATE_COUNT_PATH, {"jql": jql}) or {}
    jira_count = int(answer.get("count", 0))
    stored = (
        data.count_rows(filter=ds.field("updated") < pa.scalar(upper, type=TS)) if data.count_rows() else 0
    )
    metadata.update({"jql": jql, "jira_count": jira_count, "stored_count": stored,
                     "missing": max(0, jira_count - stored)})
    return dg.AssetCheckResult(
        check_name=COUNT,
        passed=stored >= jira_count,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=(
            None
            if stored >= jira_count
            else f"Jira counts {jira_count} issues for {jql!r} but only {stored} are stored"
        ),
    )


def _earliest_extraction(data: ds.Dataset) -> Optional[dt.datetime]:
    return pc.min(data.to_table(columns=[EXTRACTED_AT]).column(0)).as_py() if data.count_rows() else None


def _writer_run_start(context: dg.AssetCheckExecutionContext, checked: Any) -> Optional[dt.datetime]:
    """When the run that wrote the checked partition started (known even when it stored no row)."""
    started = context.instance.get_run_stats(checked.run_id).start_time if checked is not None else None
    return dt.datetime.fromtimestamp(started, tz=dt.timezone.utc) if started else None


def _floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _results(context: dg.AssetCheckExecutionContext, obj: JiraObject, days: PartitionedInput,
             jira: Optional[JiraCloudResource] = None) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    """Each selected check of each partition read. A step of one partition yields AssetCheckResults, which
    Dagster ties to that partition; a step over a range yields one AssetCheckEvaluation per day and check, as
    AssetCheckResult has no partition of its own (Dagster 1.13)."""
    selected = {k.name for k in context.selected_asset_check_keys}
    key = raw_key(obj.name)
    for day, data in days.items():
        checked = _latest_materialization(context, key, day)  # the materialization every check of the day judges
        runners = {
            UNIQUE: lambda: _unique(obj, data),
            SINGLE_ROW: lambda: _single_row(data),
            NOT_NULL: lambda: _not_null(obj, data),
            SCHEMA: lambda: _schema(context, obj, checked, data),
            COUNT: lambda: _count(context, jira, day, checked, data),
        }
        for name in check_names(obj):
            if name not in selected:
                continue
            try:
                with scan_errors(data):
                    result = runners[name]()
            except StorageError as exc:  # the partition's file cannot be read: one line naming it
                raise dg.Failure(description=f"{obj.name} {name}: {exc}", allow_retries=exc.transient) from exc
            yield result if context.has_partition_key or day is None else _evaluation(key, day, checked, result)


def _evaluation(key: dg.AssetKey, day: str, checked: Any, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """The result of one day of a range, tied to that day's materialization (without it the UI counts the
    result as not current and the automation cannot hold the marts)."""
    return dg.AssetCheckEvaluation(
        asset_key=key, check_name=result.check_name, passed=result.passed, metadata=result.metadata,
        severity=result.severity, description=result.description, blocking=result.check_name in _BLOCKING,
        partition=day,
        target_materialization_data=None if checked is None else AssetCheckEvaluationTargetMaterializationData(
            run_id=checked.run_id, storage_id=checked.storage_id, timestamp=checked.timestamp),
    )


def build_raw_checks(obj: JiraObject) -> dg.AssetChecksDefinition:
    common = dict(name=f"{obj.name}_checks", specs=_specs(obj), can_subset=True,
                  ins={"data": dg.AssetIn(key=raw_key(obj.name))})
    if COUNT in check_names(obj):
        @dg.multi_asset_check(pool=POOL, **common)
        def _with_jira(context: dg.AssetCheckExecutionContext, data: PartitionedInput,
                       jira: JiraCloudResource) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]:
            yield from _results(context, obj, data, jira)

        return _with_jira

    @dg.multi_asset_check(**common)
    def _checks(context: dg.AssetCheckExecutionContext,
                data: PartitionedInput) -> Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]:
        yield from _results(context, obj, data)

    return _checks


raw_checks: list[dg.AssetChecksDefinition] = [build_raw_checks(obj) for obj in CHECKED_OBJECTS]
