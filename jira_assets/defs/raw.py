"""The asset factory: one software-defined asset per catalog entry, all built the same way."""

import warnings
from typing import Optional

import dagster as dg
import pyarrow.dataset as ds

from jira_assets.arrow import RecordConverter
from jira_assets.catalog import OBJECTS, JiraObject
from jira_assets.defs.partitions import incremental_partitions, snapshot_partitions, today_utc
from jira_assets.defs.resources import JiraCloudResource
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
from jira_assets.parquet.stream import RecordBatchStream
from jira_assets.scope import ScopeError

RAW_PREFIX = ["jira", "raw"]
GROUP = "jira_raw"
POOL = "jira_api"  # `dagster instance concurrency set jira_api N` caps concurrent Jira steps
# A backfill of many days becomes one run per day: the IO manager writes one partition per output (it refuses
# ranges), a day is the unit that is retried and re-run, and the runs spread over the run queue and the run
# launcher's machines. The pool above, not the number of runs, is what bounds the load on Jira (deploy/README.md).
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
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
PERMANENT_ERRORS = (JiraError, ExtractionError, ConfigError)


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
        allow_retries=isinstance(exc, TRANSIENT_ERRORS) and not last_attempt,
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
        backfill_policy=BACKFILL_POLICY,
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
                    upstream: Optional[ds.Dataset]) -> RecordBatchStream:
        window = None
        last_attempt = context.retry_number >= STEP_RETRIES
        if obj.incremental:
            start, end = context.partition_time_window
            window = Window(start, end)
        else:
            check_capture_date(obj, context.partition_key)
        try:  # for issues and their children the scope is checked against Jira first: nothing is written yet
            settings = jira.extract_settings(obj.name)
            stream = extract(obj, jira.get_client(), window=window, upstream=upstream, settings=settings)
        except ScopeError as exc:
            raise dg.Failure(description=f"{obj.name}: the extraction scope is wrong, nothing was written. "
                                         f"{exc}",
                             metadata={"problems": [f"{name}: {message}" for name, message in exc.problems]},
                             allow_retries=False) from exc
        except dg.Failure:
            raise
        except Exception as exc:
            raise as_failure(obj, exc, last_attempt) from exc
        return failing_clearly(obj, stream, last_attempt)

    if obj.reads:
        @dg.asset(ins={"upstream": dg.AssetIn(key=raw_key(obj.reads))}, **common)
        def _with_input(context: dg.AssetExecutionContext, jira: JiraCloudResource,
                        upstream: ds.Dataset) -> RecordBatchStream:
            return materialize(context, jira, upstream)

        return _with_input

    @dg.asset(**common)
    def _asset(context: dg.AssetExecutionContext, jira: JiraCloudResource) -> RecordBatchStream:
        return materialize(context, jira, None)

    return _asset


raw_assets: list[dg.AssetsDefinition] = [build_raw_asset(obj) for obj in OBJECTS]
