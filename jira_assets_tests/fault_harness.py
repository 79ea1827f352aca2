"""Shared helpers of the fault and security suite (test_faults_*, test_crash_*, test_bad_input_*,
test_secrets_*).

No tests here. Everything runs the product the way a deployment does: environment variables -> the code
location's resources -> `dg.materialize` -> the client over real HTTP against the simulator -> Parquet. Two
timing knobs are shortened so the suite stays fast, and only timing: the client's exponential backoff (2 s
base in production, server-requested waits are still honoured as floors) and Dagster's step-retry delay (30 s
in production; the number of step retries is unchanged).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import dagster as dg
import orjson
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from jira_assets.catalog import OBJECTS, JiraObject, get
from jira_assets.demo import demo_environment

UTC = dt.timezone.utc
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
FAILURE_PREFIX = "dagster._core.definitions.events.Failure: "
SNAPSHOTS = [o for o in OBJECTS if not o.incremental]
INCREMENTAL = [o for o in OBJECTS if o.incremental]
# Objects whose `_raw` is not the endpoint's record as is (wrapped labels, /mypermissions entries, one row per
# project of a scheme association, sprints merged across boards): compared by primary key only.
RAW_DIFFERS = {"labels", "permissions", "workflow_scheme_project_associations", "sprints"}


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=UTC)
    return start, start + dt.timedelta(days=1)


def jira_env(info: dict, lake: str, home: Path, **extra: str) -> dict[str, str]:
    """What a deployment sets, pointed at a simulator (the partitions start at the product's default)."""
    env = demo_environment(info, str(lake), Path(home), "2026-01-01")
    env.pop("JIRA_HISTORY_START")
    env.update(extra)
    return env


@contextlib.contextmanager
def environment(env: dict[str, Optional[str]]) -> Iterator[None]:
    """Set (value) or unset (None) variables for the block, restoring the previous environment after."""
    saved = dict(os.environ)
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def fast_client_retries(monkeypatch, base_delay: float = 0.05, max_delay: float = 0.4) -> None:
    """The resource's RetryPolicy with a short exponential backoff (server-requested waits stay floors)."""
    from jira_assets.defs import resources
    from jira_assets.jira.retry import RetryPolicy

    def policy(**kwargs: Any) -> RetryPolicy:
        return RetryPolicy(base_delay=base_delay, max_delay=max_delay, **kwargs)

    monkeypatch.setattr(resources, "RetryPolicy", policy)


_QUICK_ASSETS: Optional[list] = None


def raw_assets_quick_step_retries() -> list[dg.AssetsDefinition]:
    """The raw assets exactly as the product builds them, but with Dagster's step-retry delay at 0 s
    (same number of retries), so a transient failure does not park a test for 30 + 60 s."""
    global _QUICK_ASSETS
    if _QUICK_ASSETS is None:
        from jira_assets.defs import raw

        real = dg.RetryPolicy

        def quick(max_retries: int = 1, **_ignored: Any) -> dg.RetryPolicy:
            return real(max_retries=max_retries, delay=0)

        dg.RetryPolicy = quick
        try:
            _QUICK_ASSETS = [raw.build_raw_asset(obj) for obj in OBJECTS]
        finally:
            dg.RetryPolicy = real
    return _QUICK_ASSETS


def raw_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["jira", "raw", name])


def materialize(names: Iterable[str], partition: str, *, resources: Optional[dict] = None,
                instance: Optional[dg.DagsterInstance] = None, assets: Optional[list] = None,
                run_config: Optional[dict] = None) -> dg.ExecuteInProcessResult:
    """Materialize some raw assets for one partition with the resources the code location builds from the
    current environment (or the given ones)."""
    from jira_assets.definitions import defs

    if resources is None:
        resources = dict(defs().resources)
    return dg.materialize(assets or raw_assets_quick_step_retries(), partition_key=partition,
                          resources=resources, selection=[raw_key(n) for n in names],
                          instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
                          run_config=QUIET if run_config is None else run_config)


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """{asset name: the failure's message as the UI shows it}."""
    found = {}
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        message = error.message.strip()
        found[event.step_key.split("__")[-1]] = message.removeprefix(FAILURE_PREFIX)
    return found


def step_retries(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def assert_one_clear_line(message: str, *needles: str) -> None:
    """One line, no stack trace, naming the cause (every needle, case-insensitive)."""
    assert message, "no error message"
    assert "\n" not in message.strip(), f"not one line:\n{message}"
    assert "Traceback" not in message and 'File "' not in message, message
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not named in: {message}"


# ---- the lake ----------------------------------------------------------------------------------------------


def visible_parquet_paths(lake: Path) -> list[Path]:
    """Every file under a local lake outside hidden (".", "_") staging/replaced directories."""
    found = []
    for root, dirs, files in os.walk(lake):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [Path(root) / f for f in files if not f.startswith((".", "_"))]
    return sorted(found)


def corrupt_files(paths: Iterable[Any], filesystem=None) -> list[str]:
    """Files at final paths that do not open as complete Parquet (footer and every row group readable)."""
    bad = []
    for path in paths:
        try:
            pq.read_table(str(path), filesystem=filesystem)
        except Exception as exc:  # noqa: BLE001 - any failure to read is corruption here
            bad.append(f"{path}: {type(exc).__name__}: {exc}")
    return bad


def s3_final_keys(client, bucket: str, prefix: str = "") -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return [k for k in keys if not any(part.startswith((".", "_")) for part in k.split("/"))]


def comparable_rows(table) -> list[bytes]:
    """Rows as canonical JSON, sorted, without the extraction timestamp (the one column that differs from run
    to run)."""
    table = table.drop_columns([c for c in ("_extracted_at",) if c in table.column_names])
    return sorted(orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
                  for row in table.to_pylist())


def lake_tables(store) -> dict[str, list[bytes]]:
    """{table/partition: comparable rows} of every raw table in a ParquetStore."""
    tables = {}
    for obj in OBJECTS:
        path = ["jira", "raw", obj.name]
        for partition in store.list_partitions(path):
            tables[f"{obj.name}/{partition}"] = comparable_rows(store.read_table(path, [partition]))
    return tables


# ---- ground truth ------------------------------------------------------------------------------------------


def _dig(record: Any, dotted: str) -> Any:
    for step in dotted.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(step)
    return record


def _key(values: Iterable[Any]) -> tuple:
    return tuple(None if v is None else str(v) for v in values)


def snapshot_keys(obj: JiraObject, records: Iterable[Any]) -> list[tuple]:
    """Primary keys computed straight from the simulator's records (as the endpoint sends them)."""
    sources = {c.name: (c.source or c.name) for c in obj.columns}
    keys = []
    for record in records:
        if obj.name == "labels":
            keys.append((str(record),))
        elif obj.name == "workflow_scheme_project_associations":
            scheme = record.get("workflowScheme") or {}
            keys += [_key((p, scheme.get("id"))) for p in record.get("projectIds", [])]
        else:
            keys.append(_key(_dig(record, sources[k]) for k in obj.primary_key))
    return keys


def stored(lake_or_store, obj: JiraObject, partition: str):
    if isinstance(lake_or_store, (str, Path)):
        path = Path(lake_or_store) / "jira" / "raw" / obj.name / f"date={partition}"
        return ds.dataset(str(path), format="parquet").to_table()
    return lake_or_store.read_table(["jira", "raw", obj.name], [partition])


def stored_keys(table, obj: JiraObject) -> list[tuple]:
    columns = [table.column(k).to_pylist() for k in obj.primary_key]
    return [_key(row) for row in zip(*columns)]


def canonical(value: Any) -> bytes:
    """Sorted-key JSON; the round trip expands the simulator's pre-rendered (orjson Fragment) parts first."""
    return orjson.dumps(orjson.loads(orjson.dumps(value)), option=orjson.OPT_SORT_KEYS)


def expected_incremental(sim, name: str, day: dt.date) -> tuple[list[tuple], Optional[list[bytes]]]:
    """(primary keys, canonical `_raw` records or None) the simulator says belong to one UTC day."""
    start, end = day_window(day)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    truth = sim.truth
    obj = get(name)
    if name == "issues":
        issues = truth.issues(updated_from=start, updated_to=end)
        return [(str(i["id"]),) for i in issues], None
    if name in ("issue_comments", "issue_changelogs"):
        issues = truth.issues(updated_from=start, updated_to=end)
        if name == "issue_comments":
            comments = [c for i in issues for c in truth.comments(i["id"])]
            return [(str(c["id"]),) for c in comments], [canonical(c) for c in comments]
        keys = [(str(i["id"]), str(h["id"]), str(n)) for i in issues for h in truth.changelog(i["id"])
                for n, _item in enumerate(h.get("items") or [])]
        return keys, None
    if name in ("issue_worklogs", "worklog_deletions"):
        ids, stamps = sim.site.worklog_feed(deleted=name == "worklog_deletions")
        chosen = sorted(int(i) for i, t in zip(ids.tolist(), stamps.tolist()) if start_ms <= t < end_ms)
        if name == "worklog_deletions":
            return [(str(i),) for i in chosen], None
        records = sim.site.worklogs_by_id(chosen, sim.site.admin_view())
        return [(str(w["id"]),) for w in records], [canonical(w) for w in records]
    if name == "audit_records":
        from jira_assets.arrow import to_epoch_ms

        records = [r for r in truth.records("audit_records")
                   if start_ms <= to_epoch_ms(r["created"]) < end_ms]
        return snapshot_keys(obj, records), [canonical(r) for r in records]
    raise KeyError(name)


def compare_with_truth(sim, lake_or_store, day_of_snapshots: str, days: Iterable[dt.date]) -> dict[str, int]:
    """Assert every raw table equals the simulator's ground truth; returns {table/partition: rows}."""
    rows: dict[str, int] = {}
    problems: list[str] = []
    for obj in SNAPSHOTS:
        table = stored(lake_or_store, obj, day_of_snapshots)
        rows[f"{obj.name}/{day_of_snapshots}"] = table.num_rows
        if not obj.primary_key:  # singletons
            if table.num_rows != 1:
                problems.append(f"{obj.name}: {table.num_rows} rows, expected 1")
            continue
        records = sim.truth.records(obj.name)
        got, want = stored_keys(table, obj), snapshot_keys(obj, records)
        if len(got) != len(set(got)):
            problems.append(f"{obj.name}: {len(got) - len(set(got))} duplicate primary keys")
        if sorted(got, key=str) != sorted(want, key=str):
            problems.append(f"{obj.name}: keys differ: {len(got)} stored, {len(want)} in Jira")
        if obj.name not in RAW_DIFFERS and "_raw" in table.column_names:
            raw = sorted(canonical(orjson.loads(r)) for r in table.column("_raw").to_pylist())
            if raw != sorted(canonical(r) for r in records):
                problems.append(f"{obj.name}: row contents differ from Jira's records")
    for day in days:
        for obj in INCREMENTAL:
            table = stored(lake_or_store, obj, day.isoformat())
            rows[f"{obj.name}/{day}"] = table.num_rows
            want_keys, want_raw = expected_incremental(sim, obj.name, day)
            got = stored_keys(table, obj)
            if len(got) != len(set(got)):
                problems.append(f"{obj.name}/{day}: {len(got) - len(set(got))} duplicate primary keys")
            if sorted(got) != sorted(want_keys):
                problems.append(f"{obj.name}/{day}: keys differ: {len(got)} stored, {len(want_keys)} in Jira")
            if want_raw is not None:
                raw = [orjson.loads(r) for r in table.column("_raw").to_pylist()]
                if obj.name == "issue_comments":
                    for record in raw:
                        record.pop("issue_id", None)  # the parent's id, added to every comment row
                if sorted(canonical(r) for r in raw) != sorted(want_raw):
                    problems.append(f"{obj.name}/{day}: row contents differ from Jira's records")
            if obj.name == "issues":
                problems += _issue_fields_problems(sim, table, day)
    assert not problems, "\n".join(problems)
    return rows


def _issue_fields_problems(sim, table, day: dt.date) -> list[str]:
    start, end = day_window(day)
    want = {}
    for issue in sim.truth.issues(updated_from=start, updated_to=end):
        fields = {k: v for k, v in issue["fields"].items() if k not in ("comment", "worklog")}
        want[str(issue["id"])] = canonical(fields)
    got = {str(i): canonical(orjson.loads(f)) for i, f in
           zip(table.column("id").to_pylist(), table.column("fields_json").to_pylist())}
    differing = sorted(k for k in want if got.get(k) != want[k])
    if not differing:
        return []
    return [f"issues/{day}: fields differ for {len(differing)} issues, e.g. {differing[:3]}"]
