"""A small Dagster deployment on one machine, made of the production pieces: deploy/dagster.yaml on a real Postgres,
the daemon (`dagster-daemon run`: run queue, backfills, run monitoring), code servers it starts from a workspace,
run workers launched by the default run launcher, and optionally Celery workers. Backfills are launched through
GraphQL (`dagster-graphql`, the same mutation the UI sends) and observed through the instance.

Used by the distributed tests; every process is started in its own process group and killed with it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import yaml

from jira_assets_tests.distributed_services import Service, start_group

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def production_instance_yaml(**limits: Any) -> dict:
    """deploy/dagster.yaml as it ships, with only the limits a small test machine needs lowered.

    ``max_concurrent_runs``, ``pool_default_limit``, ``op_granularity_run_buffer`` (None = leave as shipped).
    """
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    if limits.get("max_concurrent_runs") is not None:
        config["concurrency"]["runs"]["max_concurrent_runs"] = limits["max_concurrent_runs"]
    if limits.get("pool_default_limit") is not None:
        config["concurrency"]["pools"]["default_limit"] = limits["pool_default_limit"]
    if limits.get("op_granularity_run_buffer") is not None:
        config["concurrency"]["pools"]["op_granularity_run_buffer"] = limits["op_granularity_run_buffer"]
    return config


class Deployment:
    """DAGSTER_HOME + workspace + environment shared by every process of the deployment."""

    def __init__(self, root: Path, env: Mapping[str, str], instance_config: Mapping[str, Any],
                 location: Mapping[str, str]) -> None:
        self.root = Path(root)
        self.home = self.root / "dagster_home"
        # outside pytest's temp dirs (which keep only the last few sessions): kept when a test fails
        self.logs = Path(tempfile.mkdtemp(prefix="jira-assets-distributed-logs-"))
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(dict(instance_config), sort_keys=False))
        self.workspace = self.root / "workspace.yaml"
        entry = {**location, "working_directory": str(REPO), "location_name": "jira_assets"}
        if "relative_path" in entry:  # relative to the workspace file, which lives in a temp dir
            entry["relative_path"] = str(REPO / entry["relative_path"])
        kind = "python_file" if "relative_path" in location else "python_module"
        self.workspace.write_text(yaml.safe_dump({"load_from": [{kind: entry}]}))
        # the venv's bin first: `dagster-celery worker start` runs `celery` from the PATH
        path = f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
        self.env = {**env, "DAGSTER_HOME": str(self.home), "PYTHONUNBUFFERED": "1", "PATH": path}
        self.location = dict(location)
        self.services: list[Service] = []
        self._instance = None

    # ---- processes --------------------------------------------------------------------------------------

    def start(self, name: str, argv: Sequence[str], extra_env: Optional[Mapping[str, str]] = None) -> Service:
        service = start_group(name, argv, self.logs, env={**self.env, **(extra_env or {})}, cwd=str(REPO))
        self.services.append(service)
        return service

    def start_daemon(self) -> Service:
        return self.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])

    def set_pool_limit(self, pool: str, limit: int) -> None:
        """The deploy step `dagster instance concurrency set <pool> <limit>` (deploy/README.md). Left to the
        default limit, a pool is created by the first steps that use it, and Dagster 1.13 counts-then-inserts
        its slot rows: steps of several runs starting together can create the slots twice."""
        done = subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, str(limit)],
                              env=self.env, cwd=str(REPO), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def stop(self, keep_logs: bool = False) -> None:
        for service in reversed(self.services):
            service.stop(grace=40)  # the daemon stops its code servers, which reap their run workers
        self.services.clear()
        if keep_logs:
            print(f"logs of the deployment's processes (removed when the test passes): {self.logs}", file=sys.stderr)
        else:
            self.remove_logs()

    def remove_logs(self) -> None:
        shutil.rmtree(self.logs, ignore_errors=True)
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def assert_alive(self) -> None:
        for service in self.services:
            if service.proc.poll() is not None:
                raise AssertionError(f"{service.name} exited ({service.proc.returncode}):\n{service.log_tail()}")

    def logs_text(self) -> str:
        return "\n".join(f"==== {s.name} ====\n{s.log_tail(3000)}" for s in self.services)

    # ---- the instance, as every process sees it ---------------------------------------------------------

    @property
    def instance(self):
        if self._instance is None:
            import dagster as dg

            saved = dict(os.environ)
            os.environ.update(self.env)  # the yaml's {env: ...} values resolve when the instance is built
            try:
                self._instance = dg.DagsterInstance.from_config(str(self.home))
            finally:
                os.environ.clear()
                os.environ.update(saved)
        return self._instance

    def graphql(self, query: str, variables: Mapping[str, Any]) -> dict:
        """One GraphQL document (what the UI sends to the webserver) against this deployment's instance and code.

        The code location is loaded in this process rather than through a webserver or `dagster-graphql`: starting
        another Python process that imports the project costs tens of seconds on a loaded 2-core CI machine.
        """
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
        from dagster_graphql.test.utils import execute_dagster_graphql

        location = self.location
        origin = LoadableTargetOrigin(
            module_name=location.get("module_name"),
            python_file=str(REPO / location["relative_path"]) if "relative_path" in location else None,
            working_directory=str(REPO),
        )
        target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin, location_name="jira_assets"))
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            with WorkspaceProcessContext(self.instance, target) as process_context:
                result = execute_dagster_graphql(process_context.create_request_context(), query, dict(variables))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if result.errors:
            raise AssertionError(f"GraphQL errors: {result.errors}")
        return {"data": result.data}

    def launch_backfill(self, asset_keys: Iterable[Sequence[str]], partitions: Sequence[str], title: str,
                        run_config: Optional[Mapping[str, Any]] = None) -> str:
        params: dict[str, Any] = {"partitionNames": list(partitions), "title": title,
                                  "assetSelection": [{"path": list(k)} for k in asset_keys]}
        if run_config is not None:
            params["runConfigData"] = dict(run_config)
        answer = self.graphql(LAUNCH_BACKFILL, {"params": params})
        launched = (answer.get("data") or {}).get("launchPartitionBackfill") or {}
        if launched.get("__typename") != "LaunchBackfillSuccess":
            raise AssertionError(f"backfill not launched: {json.dumps(answer)[:3000]}")
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> Any:
        from dagster._core.execution.backfill import BulkActionStatus

        done = {BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED,
                BulkActionStatus.CANCELED, BulkActionStatus.COMPLETED}
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.instance.get_backfill(backfill_id)
            if backfill is not None and backfill.status in done:
                return backfill
            if time.monotonic() > deadline:
                status = backfill.status if backfill else "missing"
                raise AssertionError(f"backfill {backfill_id} still {status} after {timeout:.0f} s; runs: "
                                     f"{self.run_statuses(backfill_id)}\n{self.logs_text()}")
            self.assert_alive()
            time.sleep(2)

    # ---- what happened ----------------------------------------------------------------------------------

    def runs(self, backfill_id: str) -> list:
        """The backfill's run records (``.dagster_run``, ``.start_time``, ``.end_time``)."""
        import dagster as dg

        return list(self.instance.get_run_records(filters=dg.RunsFilter.for_backfill(backfill_id)))

    def run_statuses(self, backfill_id: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for record in self.runs(backfill_id):
            counts[record.dagster_run.status.value] += 1
        return dict(counts)

    def events(self, run_id: str) -> list:
        return list(self.instance.all_logs(run_id))


def intervals_overlap_max(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of [start, end) intervals open at one instant."""
    edges = []
    for start, end in intervals:
        edges += [(start, 1), (end, -1)]
    current = peak = 0
    for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        current += delta
        peak = max(peak, current)
    return peak


def busiest_moment(steps: Iterable[tuple]) -> list[tuple]:
    """The step attempts open together at the moment most are open (what a pool-limit failure shows)."""
    steps = list(steps)
    best: list[tuple] = []
    for candidate in steps:
        at = candidate[0]
        open_then = [s[2:4] for s in steps if s[0] <= at < s[1]]
        if len(open_then) > len(best):
            best = open_then
    return best


def run_intervals(runs: Iterable[Any]) -> list[tuple[float, float]]:
    return [(r.start_time, r.end_time) for r in runs if r.start_time and r.end_time]


def step_intervals(deployment: Deployment, records: Iterable[Any], step_filter=lambda key: True) -> list[tuple]:
    """(start, end, step key, run id, pid) of every attempt of every step: STEP_START or STEP_RESTARTED to
    STEP_SUCCESS, STEP_FAILURE or STEP_UP_FOR_RETRY (a step waiting to be retried holds no pool slot)."""
    out = []
    for run in (r.dagster_run for r in records):
        starts: dict[str, tuple[float, Optional[int]]] = {}
        for record in deployment.events(run.run_id):
            event = record.dagster_event
            if event is None or not event.step_key or not step_filter(event.step_key):
                continue
            if event.event_type_value in ("STEP_START", "STEP_RESTARTED"):
                starts[event.step_key] = (record.timestamp, event.pid)
            elif (event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY")
                  and event.step_key in starts):
                start, pid = starts.pop(event.step_key)
                out.append((start, record.timestamp, event.step_key, run.run_id, pid))
    return out


def pool_waits(deployment: Deployment, records: Iterable[Any], pool: str = "jira_api") -> int:
    """How many times a step waited for a slot of ``pool`` (Dagster's "Step blocked by limit for pool" events)."""
    needle = f"blocked by limit for pool {pool}"
    return sum(1 for r in records for record in deployment.events(r.dagster_run.run_id)
               if record.dagster_event is not None and record.dagster_event.event_type_value == "ENGINE_EVENT"
               and needle in (record.dagster_event.message or ""))


def utc_days(count: int, end_exclusive: dt.date) -> list[str]:
    return [(end_exclusive - dt.timedelta(days=n)).isoformat() for n in range(count, 0, -1)]


def start_celery_worker(deployment: Deployment, name: str, concurrency: int = 1) -> Service:
    """`dagster-celery worker start` with deploy/celery_worker.yaml, as on a worker machine."""
    return deployment.start(
        f"celery-{name}",
        [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
         "-y", str(DEPLOY / "celery_worker.yaml"), "-n", name, "--", f"--concurrency={concurrency}",
         "--without-gossip", "--without-mingle"],
    )


def celery_workers_by_step(deployment: Deployment, records: Iterable[Any]) -> dict[tuple[str, str], str]:
    """(run id, step key) -> the Celery worker that executed it, from the worker's own engine event."""
    out = {}
    for run in (r.dagster_run for r in records):
        for record in deployment.events(run.run_id):
            event = record.dagster_event
            if event is None or event.event_type_value != "ENGINE_EVENT" or not event.step_key:
                continue
            metadata = event.engine_event_data.metadata if event.engine_event_data else {}
            worker = metadata.get("Celery worker")
            if worker is not None:
                out[(run.run_id, event.step_key)] = worker.value
    return out


# ---- shared by the distributed tests --------------------------------------------------------------------------

TOKEN_KEY = "jira/oauth-tokens.json"


def jira_deployment_env(sim, lake: Path, bucket: str, s3_endpoint: str, pg, max_in_flight: int) -> dict[str, str]:
    """What every process of a deployment sees: the production variables (deploy/README.md), pointed at the
    simulator, a Postgres instance and an S3 bucket (moto) that holds the token store and the step logs."""
    from jira_assets.demo import demo_environment

    env = {**os.environ, **pg.env(), **demo_environment(sim.info(), str(lake), lake.parent, "2026-01-01")}
    env.pop("JIRA_HISTORY_START")  # the code location loaded in the test process already built its partitions
    for name in ("JIRA_REQUEST_BUDGET_DIR", "JIRA_REQUEST_BUDGET", "JIRA_THROTTLE_BOARD"):
        env.pop(name, None)
    env.update({
        "JIRA_TOKEN_STORE": f"s3://{bucket}/{TOKEN_KEY}",
        "JIRA_MAX_IN_FLIGHT": str(max_in_flight),
        "DAGSTER_COMPUTE_LOG_BUCKET": bucket,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    })
    return env


def run_days(run) -> list[str]:
    """The days a backfill run covers: its partition range (multi_run(N) runs carry a range of up to N days)."""
    start = run.tags.get("dagster/asset_partition_range_start", run.tags.get("dagster/partition"))
    end = run.tags.get("dagster/asset_partition_range_end", start)
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def stored_ids(lake: Path, asset: str, day: str, column: str = "id") -> list[str]:
    import pyarrow.dataset as ds

    path = lake / "jira" / "raw" / asset / f"date={day}"
    return [str(v) for v in ds.dataset(str(path), format="parquet").to_table(columns=[column]).column(0).to_pylist()]


def assert_issues_and_comments_equal_truth(sim, lake: Path, days: Sequence[str]) -> int:
    """Each day's issues (updated that UTC day) and their comments equal the simulator's ground truth; returns the
    number of issues compared."""
    compared = 0
    for day in days:
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
        truth = sim.truth.issues(updated_from=start, updated_to=start + dt.timedelta(days=1))
        assert sorted(stored_ids(lake, "issues", day)) == sorted(str(i["id"]) for i in truth), day
        comments = sorted(str(c["id"]) for i in truth for c in sim.truth.comments(i["id"]))
        assert sorted(stored_ids(lake, "issue_comments", day)) == comments, day
        compared += len(truth)
    return compared


class CpuSampler:
    """CPU seconds used by the deployment's process trees, per kind of process (sampled from /proc twice a
    second, so a process that lives less than half a second may be missed). For reports, not assertions."""

    KINDS = (("dagster-daemon", "daemon"), ("api grpc", "code server"), ("code-server", "code server"),
             ("spawn_main", "run worker"), ("execute_run", "run worker"), ("execute_step", "step worker"),
             ("celery", "celery worker"))

    def __init__(self, roots: Callable[[], Iterable[int]], interval: float = 0.5) -> None:
        import threading

        self._roots = roots
        self._interval = interval
        self._seen: dict[int, tuple[str, float]] = {}
        self._commands: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ticks = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "CpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def sample(self) -> None:
        parents: dict[int, int] = {}
        stats: dict[int, tuple[float, str]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            pid = int(entry)
            parents[pid] = int(fields[1])
            stats[pid] = ((int(fields[11]) + int(fields[12])) / self._ticks, cmdline)
        wanted = set(self._roots())
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in wanted and pid not in wanted:
                    wanted.add(pid)
                    changed = True
        for pid in wanted & stats.keys():
            cpu, cmdline = stats[pid]
            kind = next((k for needle, k in self.KINDS if needle in cmdline), "other")
            self._seen[pid] = (kind, max(cpu, self._seen.get(pid, (kind, 0.0))[1]))
            self._commands[pid] = cmdline[:160]

    def top(self, count: int = 10) -> list[tuple[float, str]]:
        return sorted(((cpu, self._commands.get(pid, "")) for pid, (_, cpu) in self._seen.items()), reverse=True)[:count]

    def by_kind(self) -> dict[str, tuple[int, float]]:
        """kind -> (processes, CPU seconds)."""
        out: dict[str, tuple[int, float]] = {}
        for kind, cpu in self._seen.values():
            count, total = out.get(kind, (0, 0.0))
            out[kind] = (count + 1, round(total + cpu, 1))
        return out
