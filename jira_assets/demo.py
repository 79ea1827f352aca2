"""`jira-assets demo`: the main job end to end, with no Jira site and no AWS account.

It starts the bundled simulator (real recorded Jira payloads plus generated volume), points the product at it
through the same environment variables a real deployment uses, materializes every asset through Dagster into
Parquet (a local folder by default, or s3://…), and prints what landed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

DEFAULT_HOME = Path(".jira_assets")
# Dagster's console logger prints every event at DEBUG; the demo shows its own progress instead.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
INSTANCE_YAML = "telemetry:\n  enabled: false\n"


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run every asset against the bundled simulator and show what landed")
    parser.add_argument("--lake", default=str(DEFAULT_HOME / "lake"),
                        help="where the Parquet goes: a folder (default .jira_assets/lake) or s3://bucket/prefix")
    parser.add_argument("--home", default=str(DEFAULT_HOME),
                        help="folder for the Dagster instance and the OAuth token store (default .jira_assets)")
    parser.add_argument("--issues", type=_at_least(1), default=400, help="generated issues (default 400)")
    parser.add_argument("--days", type=_at_least(0), default=7,
                        help="days of issue history to backfill before today (default 7)")
    parser.add_argument("--seed", type=int, default=42, help="the simulator's data seed (default %(default)s)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(func=run)


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is less than {minimum}")
        return value

    return parse


# Recorded payloads (real Jira Cloud responses, anonymized) for objects generated issues do not refer to, so
# the site stays consistent: every issue's project, status, priority and sprint exists in its own table.
DEMO_REPLAY = (
    "groups.json", "issue_notification_schemas.json", "issue_security_schemes.json", "issue_type.json",
    "issues_field_configurations.json", "jira_settings.json", "permissions.json", "dashboard.json",
    "application_role.json", "time_tracking.json",
)


def demo_replay_folder(into: Path) -> str:
    """A folder holding the recorded payloads the demo replays (copied from the package)."""
    from jira_assets.simulator.replay import PACKAGED

    into.mkdir(parents=True, exist_ok=True)
    for name in DEMO_REPLAY:
        shutil.copyfile(Path(PACKAGED) / name, into / name)
    return str(into)


def demo_environment(info: dict, lake: str, home: Path, history_start: str) -> dict[str, str]:
    """The variables a real deployment sets, filled in from the simulator's start-up line."""
    return {
        "JIRA_SITE_URL": info["site_url"],
        "JIRA_API_BASE_URL": info["api_base_url"],
        "JIRA_AUTH_BASE_URL": info["auth_base_url"],
        "JIRA_CLOUD_ID": info["cloud_id"],
        "JIRA_AUTH_METHOD": "oauth",
        "JIRA_CLIENT_ID": info["client_id"],
        "JIRA_CLIENT_SECRET": info["client_secret"],
        "JIRA_REFRESH_TOKEN": info["refresh_token"],
        "JIRA_TOKEN_STORE": str(home / "tokens.json"),
        "JIRA_ALLOW_LOCAL": "1",
        "JIRA_LAKE": lake,
        "JIRA_HISTORY_START": history_start,
    }


def materialize_everything(days: list[str], instance: Any, log=print) -> list[Any]:
    """Snapshots once for today; incremental assets once per day, each a run in the instance."""
    import dagster as dg

    from jira_assets.definitions import defs as load_defs

    defs = load_defs()
    graph = defs.resolve_asset_graph()
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    resources = defs.resources
    incremental = [k for k in graph.get_all_asset_keys() if graph.get(k).tags.get("jira/mode") == "incremental"]
    today = days[-1]
    results = []
    for day in days:
        selection = None if day == today else incremental
        log(f"  materializing {'every asset' if selection is None else 'incremental assets'} for {day} ...")
        result = dg.materialize(assets, partition_key=day, instance=instance, resources=resources,
                                selection=selection, raise_on_error=False, run_config=QUIET)
        results.append(result)
        for event in result.get_step_failure_events():
            log(f"    FAILED {event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}")
    return results


def summarize(lake: str) -> list[dict]:
    """Every asset of the code location with its partitions and row counts, read back from the Parquet."""
    from jira_assets.definitions import defs as load_defs
    from jira_assets.parquet.store import ParquetStore

    store = ParquetStore(lake)
    rows = []
    for key in sorted(load_defs().resolve_asset_graph().get_all_asset_keys(), key=lambda k: (k.path[1], k.path)):
        table = list(key.path)
        partitions = store.list_partitions(table)
        if not partitions and not store.exists(table, None):
            continue
        count = store.dataset(table).count_rows()
        rows.append({"asset": "/".join(table), "partitions": len(partitions), "rows": count,
                     "latest_partition": partitions[-1] if partitions else None})
    return rows


def print_summary(rows: list[dict], out=sys.stdout) -> None:
    width = max(len(r["asset"]) for r in rows)
    print(f"\n{'asset'.ljust(width)}  partitions  rows     latest", file=out)
    for r in rows:
        print(f"{r['asset'].ljust(width)}  {r['partitions'] or '-':>10}  {r['rows']:>7}  {r['latest_partition'] or '-'}",
              file=out)


def _sibling_command(name: str) -> str:
    """A console script of the environment running this one, so the printed command works unactivated."""
    candidate = Path(sys.executable).with_name(name)
    if not candidate.exists():
        return name
    try:
        return str(candidate.relative_to(Path.cwd()))
    except ValueError:
        return str(candidate)


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", module="dagster")  # preview/beta notices: not the user's concern here
    from jira_assets.simulator import Simulator, SimulatorConfig

    home = Path(args.home).resolve()
    from jira_assets.defs.resources import lake_location

    location = lake_location(args.lake, "--lake")
    lake = location if location.startswith("s3://") else str(Path(location).resolve())
    today = dt.datetime.now(dt.timezone.utc).date()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in range(args.days, -1, -1)]
    home.mkdir(parents=True, exist_ok=True)
    # A fresh simulator grants a fresh refresh token: an old token store would hold a dead grant.
    (home / "tokens.json").unlink(missing_ok=True)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)

    replay = demo_replay_folder(home / "replay")
    config = SimulatorConfig(seed=args.seed, issues=args.issues, days=args.days, replay_dir=replay)
    with Simulator(config) as sim:
        info = sim.info()
        print(f"Simulated Jira Cloud site at {info['site_url']} (cloud id {info['cloud_id']})")
        os.environ.update(demo_environment(info, lake, home, days[0]))
        os.environ["DAGSTER_HOME"] = str(dagster_home)

        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            results = materialize_everything(days, instance)
    rows = summarize(lake)
    print_summary(rows)
    summary_path = _write_summary(lake, rows, days)
    failed = sum(len(r.get_step_failure_events()) for r in results)
    print(f"\nSummary written to {summary_path}")
    print("Open the Dagster UI on the same instance and data:")
    print(f"  DAGSTER_HOME={dagster_home} JIRA_LAKE={lake} {_sibling_command('dagster')} dev -w workspace.yaml")
    if failed:
        print(f"{failed} asset step(s) failed; see above.", file=sys.stderr)
        return 1
    return 0


def _write_summary(lake: str, rows: list[dict], days: list[str]) -> str:
    payload = json.dumps({"days": days, "assets": rows}, indent=2)
    if lake.startswith("s3://"):
        import boto3

        bucket, _, prefix = lake[5:].partition("/")
        key = f"{prefix.rstrip('/')}/_summary.json".lstrip("/")
        boto3.client("s3", endpoint_url=os.environ.get("JIRA_S3_ENDPOINT_URL")).put_object(
            Bucket=bucket, Key=key, Body=payload.encode())
        return f"s3://{bucket}/{key}"
    path = Path(lake) / "_summary.json"
    path.write_text(payload)
    return str(path)
