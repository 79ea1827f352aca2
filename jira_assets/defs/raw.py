"""The asset factory: one software-defined asset per catalog entry, all built the same way."""

import functools
import warnings
from typing import Any, Optional

import dagster as dg

from jira_assets.arrow import RecordConverter
from jira_assets.catalog import OBJECTS, JiraObject
from jira_assets.defs.partitions import incremental_partitions, snapshot_partitions, today_utc
from jira_assets.defs.resources import JiraCloudResource, int_setting
from jira_assets.extract import ExtractionError, Window, extract
from jira_assets.jira.errors import (
    ConfigError,
    JiraError,
    JiraProtocolError,
    JiraRateLimited,
    JiraScopeError,
    JiraServerError,
)
from jira_assets.issue_schema import issue_converter
from jira_assets.jira.redact import redact
from jira_assets.parquet.errors import StorageError
from jira_assets.parquet.stream import PartitionedInput, PartitionedOutput, RecordBatchStream
from jira_assets.scope import ScopeError

RAW_PREFIX = ["jira", "raw"]
GROUP = "jira_raw"
POOL = "jira_api"  # `dagster instance concurrency set jira_api N` caps concurrent Jira steps
# A backfill of many days runs DAYS_PER_RUN of them in one run: Dagster's fixed cost of a run and a step (about
# 2 CPU s: event log, run creation, loading the definitions) is paid once per range instead of once per day, which
# at a few thousand issues a day is as much CPU as the extraction itself. Each day is still its own partition,
# written and replaced atomically on its own (PartitionedOutput), one after another. The pool below, not the number
# of runs, is what bounds the load on Jira (deploy/README.md). A snapshot can only be captured today, so a backfill
# of snapshot dates stays one run per date: the runs of past dates fail alone, today's lands.
DAYS_PER_RUN = int_setting("JIRA_DAYS_PER_RUN", 10)  # read when the code location loads; 1 = a run per day
RANGE_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)
ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
# `backfill_policy` is a beta parameter of @asset in dagster 1.13: one BetaWarning per asset in every process that
# loads the code (daemon, code server, each run and step). The policy is deliberate, so that warning, and no
# other, is silenced for every asset that takes it (raw assets, the census, open_issues_daily).
warnings.filterwarnings("ignore", message=r".*`backfill_policy`", category=dg.BetaWarning)
# Transient failures (Jira 5xx/429 after the client's own retries) get two more tries of the whole step.
STEP_RETRIES = 2


def raw_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([*RAW_PREFIX, name])


def column_schema(obj: JiraObject) -> dg.TableSchema:
    """Declared columns (for issues, the standard ones; custom fields are added per site at run time)."""
    schema = issue_converter([]).schema if obj.name == "issues" else RecordConverter(obj.columns).schema
    return dg.TableSchema(
        columns=[
            dg.TableColumn(f.name, str(f.type), description=(f.metadata or {}).get(b"description", b"").decode())
            for f in schema
        ]
    )


def _description(obj: JiraObject) -> str:
    mode = (
        "Incremental: one partition per UTC day; backfill any past day."
        if obj.incremental
        else "Snapshot: one partition per capture date; only today's state can be fetched."
    )
    needs = f" Needs the Jira permission '{obj.permission}'." if obj.permission else ""
    return f"{obj.title} from `GET {obj.path}`. {obj.description} {mode}{needs}".replace("  ", " ")


def check_capture_date(obj: JiraObject, partition_key: str) -> None:
    today = today_utc()
    if partition_key != today:
        raise dg.Failure(
            allow_retries=False,
            description=(
                f"{obj.name} is a snapshot: Jira shows only its current state, so only today's capture date "
                f"({today}) can be materialized, not {partition_key}."
            )
        )


# Worth another attempt of the whole step; everything else needs the user (config, consent, permission).
TRANSIENT_ERRORS = (JiraServerError, JiraRateLimited, JiraProtocolError, ConnectionError, TimeoutError)
PERMANENT_ERRORS = (JiraError, ExtractionError, ConfigError, StorageError)  # a StorageError may say it is transient


def as_failure(obj: JiraObject, exc: Exception, last_attempt: bool = False) -> dg.Failure:
    """One clear line naming the object and the cause; permanent causes are not retried.

    On the last attempt even a transient cause is raised as not retryable: Dagster would otherwise end the
    step with "Exceeded max_retries" and leave the cause to the error's chain. An exception of no known kind
    (an answer of a shape nothing expected, a token store holding the wrong types) is named with its type and
    not retried: another attempt would read the same answer or the same file."""
    if isinstance(exc, JiraScopeError) and obj.scopes and not any(s in str(exc) for s in obj.scopes):
        exc = JiraScopeError(f"{obj.name} needs the OAuth scope {', '.join(obj.scopes)}",
                             endpoint=exc.endpoint, status=exc.status, messages=exc.messages, hint=exc.hint)
    known = isinstance(exc, PERMANENT_ERRORS + TRANSIENT_ERRORS)
    cause = str(exc) if known else f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
    return dg.Failure(
        description=f"{obj.name}: {cause}",
        metadata={"jira/error": type(exc).__name__, "jira/endpoint": obj.path},
        allow_retries=(isinstance(exc, TRANSIENT_ERRORS) or getattr(exc, "transient", False)) and not last_attempt,
    )


def failing_clearly(obj: JiraObject, stream: RecordBatchStream,
                    last_attempt: bool = False) -> RecordBatchStream:
    """The stream is consumed by the IO manager, so errors surface there: translate them on the way."""

    def batches():
        try:
            yield from stream
        except dg.Failure:
            raise
        except Exception as exc:
            raise as_failure(obj, exc, last_attempt) from exc

    return RecordBatchStream(stream.schema, batches(), metadata=stream.metadata)


def _deps(obj: JiraObject) -> list[dg.AssetDep]:
    """Lineage-only edges. Snapshot upstreams of incremental assets map to their latest capture."""
    deps = []
    for name in obj.upstream:
        mapping = dg.LastPartitionMapping() if obj.incremental else None
        deps.append(dg.AssetDep(raw_key(name), partition_mapping=mapping))
    return deps


def build_raw_asset(obj: JiraObject) -> dg.AssetsDefinition:
    common = dict(
        name=obj.name,
        key_prefix=RAW_PREFIX,
        group_name=GROUP,
        kinds={"jira", "parquet", "s3"},
        owners=["team:data-eng"],
        tags={"jira/mode": obj.mode.value},
        description=_description(obj),
        partitions_def=incremental_partitions if obj.incremental else snapshot_partitions,
        io_manager_key="parquet_io_manager",
        pool=POOL,
        backfill_policy=RANGE_BACKFILL if obj.incremental else ONE_PARTITION_PER_RUN,
        code_version=obj.version,
        deps=_deps(obj),
        metadata={
            "jira/endpoint": obj.path,
            "jira/scopes": ", ".join(obj.scopes) or "none",
            "jira/permission": obj.permission or "Browse",
            "jira/primary_key": ", ".join(obj.primary_key) or "(one row)",
            "jira/mode": obj.mode.value,
            "jira/appflow_object": obj.appflow,
            "dagster/column_schema": column_schema(obj),
        },
        retry_policy=dg.RetryPolicy(max_retries=STEP_RETRIES, delay=30, backoff=dg.Backoff.EXPONENTIAL),
    )

    def materialize(context: dg.AssetExecutionContext, jira: JiraCloudResource,
                    upstream: Optional[PartitionedInput]) -> RecordBatchStream | PartitionedOutput:
        last_attempt = context.retry_number >= STEP_RETRIES
        keys = context.partition_keys
        if not obj.incremental:
            for key in keys:
                check_capture_date(obj, key)
        try:  # for issues and their children the scope is checked against Jira first: nothing is written yet
            settings = jira.extract_settings(obj.name)
            client = jira.get_client()
        except ScopeError as exc:
            raise dg.Failure(description=f"{obj.name}: the extraction scope is wrong, nothing was written. "
                                         f"{exc}",
                             metadata={"problems": [f"{name}: {message}" for name, message in exc.problems]},
                             allow_retries=False) from exc
        except dg.Failure:
            raise
        except Exception as exc:
            raise as_failure(obj, exc, last_attempt) from exc

        def one_partition(key: str) -> RecordBatchStream:
            window = Window(*incremental_partitions.time_window_for_partition_key(key)) if obj.incremental else None
            try:
                stream = extract(obj, client, window=window, settings=settings,
                                 upstream=None if upstream is None else upstream.get(key))
            except Exception as exc:
                raise as_failure(obj, exc, last_attempt) from exc
            return failing_clearly(obj, stream, last_attempt)

        if len(keys) == 1:
            return one_partition(keys[0])
        return PartitionedOutput({key: functools.partial(one_partition, key) for key in keys})

    # The output is a RecordBatchStream or, for a run over several days, a PartitionedOutput: Dagster cannot
    # type-check a union, so the assets below return Any and the IO manager checks what it is given.

    if obj.reads:
        @dg.asset(ins={"upstream": dg.AssetIn(key=raw_key(obj.reads))}, **common)
        def _with_input(context: dg.AssetExecutionContext, jira: JiraCloudResource,
                        upstream: PartitionedInput) -> Any:
            return materialize(context, jira, upstream)

        return _with_input

    @dg.asset(**common)
    def _asset(context: dg.AssetExecutionContext, jira: JiraCloudResource) -> Any:
        return materialize(context, jira, None)

    return _asset


raw_assets: list[dg.AssetsDefinition] = [build_raw_asset(obj) for obj in OBJECTS]
