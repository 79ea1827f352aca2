"""Downstream analyst tables (group `jira_marts`) and the raw-ish issue id census they need.

Thin wiring only: the transformations live in `jira_assets.marts` (pure pyarrow). Raw tables come in through
the Parquet IO manager as lazy datasets over every partition written so far (`AllPartitionMapping`, missing
partitions skipped); snapshot dimensions are read at their latest capture. Marts refresh themselves through
declarative automation (see `automation.py`) once the daemon's automation sensor is on.
"""

import datetime as dt
import functools
from typing import Any, Mapping

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds

from jira_assets.defs.automation import MART_AUTOMATION
from jira_assets.defs.partitions import incremental_partitions, snapshot_partitions
from jira_assets.defs.raw import GROUP as RAW_GROUP
from jira_assets.defs.raw import (
    ONE_PARTITION_PER_RUN,
    POOL,
    RANGE_BACKFILL,
    RAW_PREFIX,
    check_capture_date,
    raw_key,
)
from jira_assets.defs.resources import JiraCloudResource
from jira_assets.marts import census as census_mart
from jira_assets.marts import history as history_mart
from jira_assets.marts import issues as issues_mart
from jira_assets.marts import transitions as transitions_mart
from jira_assets.marts.dimensions import Dimensions
from jira_assets.parquet.errors import StorageError
from jira_assets.parquet.io_manager import table_schema
from jira_assets.parquet.stream import PartitionedOutput, RecordBatchStream

MART_PREFIX = ["jira", "marts"]
GROUP = "jira_marts"
KINDS = {"pyarrow", "parquet"}
CENSUS = "issue_id_census"

# input name -> raw table, for the snapshot dimensions a mart may join
DIMENSION_TABLES = {
    "projects": "projects", "users": "users", "statuses": "workflow_statuses",
    "status_categories": "workflow_status_categories", "priorities": "issue_priorities",
    "resolutions": "issue_resolutions", "issue_types": "issue_types", "sprints": "sprints",
    "issue_fields": "issue_fields",
}


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([*MART_PREFIX, name])


def _layer_key(layer: str, name: str) -> dg.AssetKey:
    return dg.AssetKey(["jira", layer, name])


def raw_input(name: str) -> dg.AssetIn:
    """Every partition of a raw table written so far, as one lazy dataset."""
    return dg.AssetIn(key=raw_key(name), partition_mapping=dg.AllPartitionMapping(),
                      metadata={"allow_missing_partitions": True})


def _dimension_inputs(*names: str) -> dict[str, dg.AssetIn]:
    return {name: raw_input(DIMENSION_TABLES[name]) for name in names}


def _dimensions(inputs: Mapping[str, Any]) -> Dimensions:
    return Dimensions.load(**{name: inputs[name] for name in DIMENSION_TABLES if name in inputs})


def column_lineage(
    spec: Mapping[str, list[tuple[str, str, str]]], columns: list[str]
) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=_layer_key(layer, name), column_name=source)
                 for layer, name, source in spec[column]]
        for column in columns if spec.get(column)
    })


def _output(data: pa.Table | RecordBatchStream, lineage: Mapping[str, list[tuple[str, str, str]]],
            **metadata: Any) -> dg.Output:
    return dg.Output(data, metadata={"dagster/column_lineage": column_lineage(lineage, data.schema.names),
                                     **metadata})


def _mart(name: str, description: str, ins: Mapping[str, dg.AssetIn], schema: pa.Schema | None = None,
          **extra: Any):
    metadata = {"dagster/column_schema": table_schema(schema)} if schema is not None else {}
    asset = dg.asset(
        name=name, key_prefix=MART_PREFIX, group_name=GROUP, kinds=KINDS, owners=["team:data-eng"],
        io_manager_key="parquet_io_manager", automation_condition=MART_AUTOMATION, description=description,
        ins=dict(ins), metadata=metadata, **extra,
    )

    def decorate(compute):
        @functools.wraps(compute)  # Dagster reads the inputs from the wrapped signature
        def naming_storage_errors(*args: Any, **kwargs: Any) -> Any:
            try:
                return compute(*args, **kwargs)
            except StorageError as exc:  # an upstream file unreadable: one line naming it, not a traceback
                raise dg.Failure(description=f"{name}: {exc}", allow_retries=exc.transient) from exc

        return asset(naming_storage_errors)

    return decorate


# ---- the census (raw-ish: it calls Jira, so it sits with the raw assets and shares their pool) -------------


@dg.asset(
    name=CENSUS,
    key_prefix=RAW_PREFIX,
    group_name=RAW_GROUP,
    kinds={"jira", "parquet", "s3"},
    owners=["team:data-eng"],
    tags={"jira/mode": "snapshot"},
    partitions_def=snapshot_partitions,
    io_manager_key="parquet_io_manager",
    pool=POOL,
    code_version="1",
    backfill_policy=ONE_PARTITION_PER_RUN,
    description=(
        "Issue id census: every issue id in scope, from an id-only `GET /rest/api/2/search/jql` (fields=id, "
        "5000 a page). Compared with the stored issues it reveals deletions, which incremental reads never "
        "see (C10). Snapshot: one partition per capture date; only today's state can be fetched."
    ),
    metadata={
        "jira/endpoint": census_mart.SEARCH_PATH,
        "jira/primary_key": "id",
        "jira/mode": "snapshot",
        "dagster/column_schema": table_schema(census_mart.CENSUS_SCHEMA),
    },
    retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL),
)
def issue_id_census(context: dg.AssetExecutionContext, jira: JiraCloudResource) -> RecordBatchStream:
    for key in context.partition_keys:  # a run over a range of dates is refused like the snapshot raw assets'
        check_capture_date(census_mart.CENSUS_OBJECT, key)
    return census_mart.census_stream(jira.get_client(), jira.extract_settings())


# ---- marts -------------------------------------------------------------------------------------------------


@_mart(
    "deleted_issues",
    "Stored issues the latest id census no longer returns: `deleted`, or `no_longer_visible` when their "
    "project left the project roster (C10).",
    {"issues": raw_input("issues"), "census": raw_input(CENSUS), **_dimension_inputs("projects")},
    schema=census_mart.DELETED_ISSUES_SCHEMA,
)
def deleted_issues(context: dg.AssetExecutionContext, issues: ds.Dataset, census: ds.Dataset,
                   projects: ds.Dataset) -> dg.Output:
    table = census_mart.deleted_issues(issues, census, Dimensions.load(projects=projects))
    states = table.column("state").to_pylist()
    return _output(table, census_mart.DELETED_ISSUES_LINEAGE,
                   **{"jira/deleted": states.count(issues_mart.DELETED),
                      "jira/no_longer_visible": states.count(issues_mart.NO_LONGER_VISIBLE)})


@_mart(
    "issues_current",
    "One row per issue at its latest `updated` across partitions, deleted issues left out (C10), with "
    "readable names: status and status category, priority, resolution, issue type, project, "
    "assignee/reporter/creator display names and sprints. Issues of a project that left the roster are kept "
    "with visibility=no_longer_visible.",
    {
        "issues": raw_input("issues"),
        "deleted_issues": dg.AssetIn(key=mart_key("deleted_issues")),
        **_dimension_inputs(*DIMENSION_TABLES),
    },
)
def issues_current(context: dg.AssetExecutionContext, issues: ds.Dataset, deleted_issues: ds.Dataset,
                   **dimensions: ds.Dataset) -> dg.Output:
    table = issues_mart.issues_current(issues, _dimensions(dimensions), deleted_issues)
    return _output(table, issues_mart.issues_current_lineage(table.column_names))


@_mart(
    "worklogs_current",
    "The newest version of every worklog, without worklogs listed by /worklog/deleted or belonging to "
    "deleted issues (C10).",
    {
        "worklogs": raw_input("issue_worklogs"),
        "deletions": raw_input("worklog_deletions"),
        "deleted_issues": dg.AssetIn(key=mart_key("deleted_issues")),
        **_dimension_inputs("users"),
    },
)
def worklogs_current(context: dg.AssetExecutionContext, worklogs: ds.Dataset, deletions: ds.Dataset,
                     deleted_issues: ds.Dataset, users: ds.Dataset) -> dg.Output:
    table = issues_mart.worklogs_current(worklogs, deletions, Dimensions.load(users=users), deleted_issues)
    return _output(table, issues_mart.WORKLOGS_CURRENT_LINEAGE)


@_mart(
    "issue_field_history",
    "One row per field value change from the complete changelog, plus each field's initial value at creation "
    "(Fivetran dbt_jira parity). Multi-value fields also carry the whole set after each change.",
    {
        "changelogs": raw_input("issue_changelogs"),
        "issues": raw_input("issues"),
        "deleted_issues": dg.AssetIn(key=mart_key("deleted_issues")),
        **_dimension_inputs("issue_fields"),
    },
    schema=history_mart.FIELD_HISTORY_SCHEMA,
)
def issue_field_history(context: dg.AssetExecutionContext, changelogs: ds.Dataset, issues: ds.Dataset,
                        deleted_issues: ds.Dataset, issue_fields: ds.Dataset) -> dg.Output:
    dims = Dimensions.load(issue_fields=issue_fields)
    batches = history_mart.field_history_batches(changelogs, issues, dims, deleted_issues)
    stream = RecordBatchStream(history_mart.FIELD_HISTORY_SCHEMA, batches)
    return _output(stream, history_mart.FIELD_HISTORY_LINEAGE)


@_mart(
    "issue_status_transitions",
    "Every status an issue has been in, when it entered and left, the seconds spent there (open visits "
    "counted to the run time), and the issue's lead time (created -> done) and cycle time (in progress -> "
    "done).",
    {
        "changelogs": raw_input("issue_changelogs"),
        "issues_current": dg.AssetIn(key=mart_key("issues_current")),
        **_dimension_inputs("statuses"),
    },
    schema=transitions_mart.TRANSITIONS_SCHEMA,
)
def issue_status_transitions(context: dg.AssetExecutionContext, changelogs: ds.Dataset,
                             issues_current: ds.Dataset, statuses: ds.Dataset) -> dg.Output:
    table = transitions_mart.issue_status_transitions(
        changelogs, issues_current, Dimensions.load(statuses=statuses), dt.datetime.now(dt.timezone.utc)
    )
    return _output(table, transitions_mart.TRANSITIONS_LINEAGE)


@_mart("open_issues_daily",
       "Open issues (status category not done) per project and status at the end of each UTC day (now, for "
       "today): the table a burndown or a dashboard reads. Past days are rebuilt from the status history.",
       {"transitions": dg.AssetIn(key=mart_key("issue_status_transitions"))},
       schema=transitions_mart.OPEN_ISSUES_SCHEMA, partitions_def=incremental_partitions,
       backfill_policy=RANGE_BACKFILL)
def open_issues_daily(context: dg.AssetExecutionContext, transitions: ds.Dataset) -> dg.Output:
    now = dt.datetime.now(dt.timezone.utc)
    spans = transitions_mart.status_spans(transitions)  # read once for every day of the run

    def one_day(key: str) -> pa.Table:
        return transitions_mart.open_issues_daily(spans, dt.date.fromisoformat(key), now)

    keys = context.partition_keys
    if len(keys) == 1:
        return _output(one_day(keys[0]), transitions_mart.OPEN_ISSUES_LINEAGE)
    # a run over a range of days (a backfill): each day is written as its own partition, one after another
    lineage = column_lineage(transitions_mart.OPEN_ISSUES_LINEAGE, transitions_mart.OPEN_ISSUES_SCHEMA.names)
    return dg.Output(PartitionedOutput({key: functools.partial(one_day, key) for key in keys}),
                     metadata={"dagster/column_lineage": lineage})


# the census is a raw asset (group jira_raw, freshness policy and checks of its own); these are the marts
mart_assets: list[dg.AssetsDefinition] = [
    deleted_issues, issues_current, worklogs_current, issue_field_history, issue_status_transitions,
    open_issues_daily,
]
