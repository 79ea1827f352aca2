"""`jira-assets bench`: extraction throughput, CPU and memory of the real materialization path.

What one case does (see `Case`):

1. starts the simulator in its own process (the `jira-assets simulate` options, wrapped so it can also report its
   counters), with `max_in_flight` = C: a request above the budget would get a 429;
2. materializes the selected assets for the partition range through Dagster - `dg.execute_job` on a
   reconstructable job of the code location's own definitions, resources (`JiraCloudResource`,
   `ParquetIOManager`) and the multiprocess executor, one run per `days_per_run` consecutive partitions (the
   product's backfill policy), `runs` of them at a time - in a
   separate "driver" process, so the CPU and memory of exactly the run's processes can be measured
   (`getrusage(RUSAGE_SELF + RUSAGE_CHILDREN)`, and /proc sampling of the process tree). Every process shares
   the `RequestBudget` (C slots, `JIRA_REQUEST_BUDGET_DIR`), so at most C requests are ever in flight;
3. the floor: the same pages fetched once and saved to disk, then only decoded (orjson), converted to Arrow
   (the product's converters) and written to Parquet in a bare loop, in one process;
4. for snapshot selections, the client alone: the same extractors and store without Dagster, as a baseline for
   Dagster's overhead.

It prints one table (a column per case) and writes everything to `bench_results/<timestamp>.json`.
`--quick` is the CI smoke run (tiny scale, seconds). `--preset` picks the cases; flags override their settings.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

RESULTS_DIR = "bench_results"
CHILD_ROUTES = {  # simulator route keys of the per-issue child endpoints
    "issue_comments": "GET /rest/api/2/issue/{issueIdOrKey}/comment",
    "issue_changelogs": "GET /rest/api/2/issue/{issueIdOrKey}/changelog",
}
SEARCH_ROUTE = "POST /rest/api/2/search/jql"
EMBEDDED = {"issue_comments": ("comment_total", 20, 100), "issue_changelogs": ("changelog_total", 40, 100)}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
INSTANCE_YAML = "telemetry:\n  enabled: false\n"
# The bench's job module, and what reconstructing a job built by build_reconstructable_job imports
BENCH_PRELOAD = ("jira_assets.bench", "dagster._utils.test.definitions")


@dataclass
class Case:
    """One measured configuration. `select` holds raw asset names, or ("snapshots",)."""

    name: str
    select: tuple[str, ...] = ("issues",)
    issues: int = 20_000
    days: int = 30  # the simulator spreads the issues over this many UTC days before today
    partitions: int = 30  # materialize the last N of those days
    custom_fields: int = 0
    latency_ms: float = 150.0
    jitter_ms: float = 0.0
    concurrency: int = 8  # C: request budget slots, and the simulator's max_in_flight
    runs: int = 3  # runs in parallel
    days_per_run: int = 0  # partitions one run covers, like a backfill; 0 = the product's JIRA_DAYS_PER_RUN
    steps: int = 3  # steps in parallel inside a run (multiprocess executor max_concurrent)
    max_in_flight: int = 0  # per process; 0 = C (the shared budget is the cap)
    window_splits: int = 4
    child_workers: int = 8
    start_method: str = "forkserver"  # of the multiprocess executor: forkserver (preloaded) or spawn
    launcher: str = "fork"  # run workers forked from a warm driver, or "subprocess" (fresh interpreters)
    executor: str = "multiprocess"  # or "in_process" (every step in the run worker)
    floor: bool = True
    floor_issues: int = 10_000  # the floor decodes a sample of whole partitions of about this many issues
    client_baseline: bool = False  # snapshots: the same extraction without Dagster
    checks: bool = False
    seed: int = 42
    note: str = ""

    @property
    def snapshots(self) -> bool:
        """Only snapshot assets: one run, for today's capture date."""
        return tuple(self.select) == ("snapshots",) or set(self.select) <= set(snapshot_names())

    @property
    def c(self) -> int:
        return self.concurrency

    @property
    def per_process(self) -> int:
        return self.max_in_flight or self.concurrency


def _presets() -> dict[str, list[Case]]:
    """The targets of issue #6, and a default set that runs in well under 10 minutes on 2 cores."""
    children = ("issues", "issue_comments", "issue_changelogs", "issue_worklogs")
    quick = [
        Case("quick", select=children, issues=400, days=2, partitions=2, latency_ms=20, concurrency=4, runs=2,
             steps=2, window_splits=2, child_workers=4, floor_issues=400),
        Case("quick-snapshots", select=("server_info", "projects", "project_versions"), issues=50, days=1,
             partitions=1, latency_ms=20, concurrency=4, steps=2, floor=False, client_baseline=True),
    ]
    p1 = Case("P1", issues=100_000, days=30, partitions=30, latency_ms=150, concurrency=8, runs=3, steps=1,
              window_splits=4, floor_issues=10_000, note="issues backfill: 30 daily partitions, 100k issues, "
              "L=150 ms, C=8")
    # 6 runs of 5 days, each step allowed all C requests: while one step lists or writes a day, the others use
    # the budget (3 runs of 10 days keep 7.1 of 8 requests busy, 6 runs 7.5; deploy/README "Throughput")
    p1_api = dataclasses.replace(p1, name="P1-api-bound", latency_ms=1_500, window_splits=8, runs=6, days_per_run=5,
                                 floor=False, note="the same backfill with L=1.5 s, where the API and not this "
                                 "machine's CPU is the bottleneck (C*P/L = 533 issues/s)")
    p3 = dataclasses.replace(p1, name="P3", latency_ms=0, runs=2, window_splits=2, floor_issues=100_000,
                             note="the P1 backfill at L=0: CPU per 1000 issues vs the floor")
    p3_one = dataclasses.replace(p3, name="P3-1-partition", issues=50_000, days=1, partitions=1, runs=1,
                                 floor_issues=50_000, note="one 50 000-issue partition at L=0: Dagster's per-run "
                                 "cost amortized")
    p4s = Case("P4-20k", select=children[:3], issues=20_000, days=1, partitions=1, latency_ms=0, concurrency=8,
               runs=1, steps=3, window_splits=2, floor=False, note="one 20 000-issue partition, with its children")
    p4l = dataclasses.replace(p4s, name="P4-200k", issues=200_000, note="one 200 000-issue partition")
    kids = Case("children", select=children, issues=6_000, days=3, partitions=3, latency_ms=150, concurrency=8,
                runs=3, steps=3, window_splits=2, child_workers=8, floor_issues=6_000,
                note="issues with comments, changelogs, worklogs: requests vs what truncated issues need")
    snaps = Case("snapshots", select=("snapshots",), issues=2_000, days=30, partitions=1, latency_ms=150,
                 concurrency=8, steps=8, floor=False, client_baseline=True,
                 note="every snapshot asset: Dagster vs the client alone")
    snaps_inproc = dataclasses.replace(snaps, name="snapshots-in-process", executor="in_process",
                                       note="every snapshot asset, Dagster's in-process executor")
    default = [
        dataclasses.replace(p1, name="backfill", issues=20_000, floor_issues=4_000,
                            note="P1 at 20k issues: 30 daily partitions, L=150 ms, C=8"),
        dataclasses.replace(p3, name="cpu", issues=20_000, days=6, partitions=6, floor_issues=4_000,
                            note="P3 at 20k issues (P1's 3 300 issues per partition), L=0"),
        kids, snaps,
    ]
    return {"default": default, "quick": quick, "p1": [p1, p1_api], "p3": [p3, p3_one], "p4": [p4s, p4l],
            "children": [kids], "snapshots": [snaps, snaps_inproc],
            "targets": [p1, p1_api, p3, p3_one, p4s, p4l, kids, snaps, snaps_inproc]}


# ==================================================================================================
# command line
# ==================================================================================================


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench", help="benchmark the real materialization path against the simulator (see README: Benchmarks)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    presets = _presets()
    parser.add_argument("--quick", action="store_true", help="tiny scale, seconds (CI smoke run)")
    parser.add_argument("--preset", choices=sorted(presets), default=None,
                        help="which cases (default: 'default', about 5-8 minutes on 2 cores)")
    parser.add_argument("--case", action="append", default=None, help="run only the named case(s) of the preset")
    parser.add_argument("--issues", type=int, help="issues in the simulator")
    parser.add_argument("--days", type=int, help="days the issues are spread over")
    parser.add_argument("--partitions", type=int, help="daily partitions to materialize (the most recent)")
    parser.add_argument("--custom-fields", type=int, help="extra generic custom fields (wide schema)")
    parser.add_argument("--latency-ms", type=float, help="simulator latency per request (L)")
    parser.add_argument("--jitter-ms", type=float, help="random extra latency, uniform 0..jitter")
    parser.add_argument("--concurrency", "-C", type=int, help="C: requests in flight across all processes")
    parser.add_argument("--runs", type=int, help="runs in parallel")
    parser.add_argument("--days-per-run", type=int, help="partitions one run covers (default: the product's, 10)")
    parser.add_argument("--steps", type=int, help="steps in parallel in a run (multiprocess max_concurrent)")
    parser.add_argument("--max-in-flight", type=int, help="per-process max_in_flight (default C)")
    parser.add_argument("--window-splits", type=int,
                        help="a day's search pages fetched concurrently (JIRA_WINDOW_SPLITS)")
    parser.add_argument("--child-workers", type=int, help="concurrent child requests per step")
    parser.add_argument("--select", help="comma list of raw asset names, or 'snapshots'")
    parser.add_argument("--start-method", choices=["forkserver", "spawn"], help="multiprocess executor start method")
    parser.add_argument("--executor", choices=["multiprocess", "in_process"],
                        help="Dagster executor of each run (default multiprocess)")
    parser.add_argument("--launcher", choices=["fork", "subprocess"],
                        help="run workers forked from a warm process (default) or fresh interpreters")
    parser.add_argument("--floor-issues", type=int, help="size of the floor's sample of issues")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor")
    parser.add_argument("--checks", action="store_true", help="run the raw asset checks too")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", default=RESULTS_DIR, help="folder for the JSON results (default bench_results)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--compare", default=None, metavar="JSON", help="an earlier result to show side by side")
    parser.add_argument("--debug", action="store_true", help="keep scratch files, show tracebacks")
    parser.set_defaults(func=run)


_OVERRIDES = ("issues", "days", "partitions", "custom_fields", "latency_ms", "jitter_ms", "concurrency", "runs",
              "days_per_run", "steps", "max_in_flight", "window_splits", "child_workers", "start_method", "launcher",
              "executor", "floor_issues", "seed")


def cases_from_args(args: argparse.Namespace) -> list[Case]:
    preset = "quick" if args.quick and not args.preset else (args.preset or "default")
    cases = _presets()[preset]
    if args.case:
        wanted = {c.lower() for c in args.case}
        cases = [c for c in cases if c.name.lower() in wanted]
        if not cases:
            raise SystemExit(f"no case named {args.case} in preset {preset!r}")
    out = []
    for case in cases:
        changes = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k, None) is not None}
        if args.select:
            changes["select"] = tuple(s.strip() for s in args.select.split(",") if s.strip())
        if args.no_floor:
            changes["floor"] = False
        if args.checks:
            changes["checks"] = True
        if "days" in changes and "partitions" not in changes:
            changes["partitions"] = min(case.partitions, changes["days"])
        out.append(dataclasses.replace(case, **changes))
    return out


def run(args: argparse.Namespace) -> int:
    cases = cases_from_args(args)
    started = dt.datetime.now(dt.timezone.utc)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="jira-bench-"))
    results = []
    print(f"jira-assets bench: {len(cases)} case(s) on {os.cpu_count()} CPU(s); scratch in {work_root}", flush=True)
    try:
        for case in cases:
            print(f"\n== {case.name}: {describe(case)}", flush=True)
            work = work_root / case.name
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            result = run_case(case, work)
            results.append(result)
            if not args.debug:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.debug and not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    payload = {
        "started": started.isoformat(timespec="seconds"),
        "command": "jira-assets " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else sys.argv[1:]),
        "machine": machine_info(),
        "git": _git_commit(),
        "cases": results,
    }
    path = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    previous = json.loads(Path(args.compare).read_text()) if args.compare else None
    print()
    print(render_table(results, previous))
    print(f"\nResults written to {path}")
    failed = [r["case"] for r in results if r.get("failures")]
    if failed:
        print(f"failed steps in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def describe(case: Case) -> str:
    what = "every snapshot asset" if tuple(case.select) == ("snapshots",) else "+".join(case.select)
    parts = [what, f"{case.issues} issues over {case.days} d", f"{case.partitions} partition(s)",
             f"L={case.latency_ms:g}+{case.jitter_ms:g} ms", f"C={case.c}", f"runs={case.runs}",
             f"steps={case.steps}", f"splits={case.window_splits}", f"child_workers={case.child_workers}"]
    if case.custom_fields:
        parts.append(f"+{case.custom_fields} custom fields")
    return ", ".join(parts)


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    except OSError:
        pass
    return info


def _git_commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except Exception:  # noqa: BLE001 - informational only
        return None


# ==================================================================================================
# one case: simulator process, driver process (Dagster), floor process, client-only process
# ==================================================================================================


def today_midnight() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.timezone.utc)


def partition_days(case: Case) -> list[str]:
    """The last `partitions` full UTC days before today (the simulator's clock starts at today 00:00 UTC)."""
    if case.snapshots:
        return [today_midnight().date().isoformat()]
    first = today_midnight().date() - dt.timedelta(days=case.partitions)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(case.partitions)]


def run_case(case: Case, work: Path) -> dict:
    result: dict[str, Any] = {"case": case.name, "settings": dataclasses.asdict(case), "note": case.note}
    sim = SimulatorProcess(case, work)
    try:
        info = sim.start()
        result["simulator_start_seconds"] = round(sim.start_seconds, 2)
        env = product_environment(case, info, work)
        spec = {"case": dataclasses.asdict(case), "days": partition_days(case), "work": str(work)}
        before = sim.stats(reset_peak=True)
        print(f"  materializing {len(spec['days'])} partition(s) through Dagster ...", flush=True)
        busy0, own0 = machine_busy_seconds(), _own_cpu()
        driver = run_child("driver", spec, env, work, sample_tree=True)
        after = sim.stats()
        busy = machine_busy_seconds() - busy0
        others = busy - driver["cpu_seconds"] - (after["cpu_seconds"] - before["cpu_seconds"]) - (_own_cpu() - own0)
        result["machine"] = {"busy_cpu_seconds": round(busy, 1), "other_processes_cpu_seconds": round(others, 1),
                             "load_average_after": _loadavg()}
        result["product"] = driver
        result["server"] = server_delta(before, after)
        if driver.get("failures"):
            result["failures"] = driver["failures"]
            for failure in driver["failures"][:5]:
                print(f"  FAILED {failure}", flush=True)
        result["lake"] = lake_summary(case, work / "lake", spec["days"])
        if case.client_baseline:
            print("  the client alone, same extraction without Dagster ...", flush=True)
            base_env = {**env, "JIRA_LAKE": str(work / "lake-client"),
                        "JIRA_TOKEN_STORE": str(work / "tokens-client.json")}
            before = sim.stats(reset_peak=True)
            result["client_only"] = run_child("client", spec, base_env, work)
            result["client_only"]["server"] = server_delta(before, sim.stats())
        if case.floor and not case.snapshots:
            print("  floor: fetch pages once, then decode + Arrow + Parquet in a bare loop ...", flush=True)
            floor_env = {k: v for k, v in env.items() if not k.startswith("JIRA_REQUEST_BUDGET")}
            result["floor"] = run_child("floor", {**spec, "info": info}, floor_env, work)
        result["simulator_cpu_seconds"] = round(sim.stats().get("cpu_seconds", 0.0), 2)
    finally:
        sim.stop()
    result["metrics"] = metrics(case, result)
    return result


def product_environment(case: Case, info: dict, work: Path) -> dict[str, str]:
    from jira_assets.demo import demo_environment

    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    history_start = (today_midnight().date() - dt.timedelta(days=max(case.days, case.partitions) + 1)).isoformat()
    env = demo_environment(info, str(work / "lake"), work, history_start)
    env.update({
        "DAGSTER_HOME": str(home),
        "JIRA_REQUEST_BUDGET_DIR": str(work / "budget"),
        "JIRA_REQUEST_BUDGET": str(case.c),
        "JIRA_MAX_IN_FLIGHT": str(case.per_process),
        "JIRA_WINDOW_SPLITS": str(case.window_splits),
        "JIRA_CHILD_WORKERS": str(case.child_workers),
    })
    if case.days_per_run:
        env["JIRA_DAYS_PER_RUN"] = str(case.days_per_run)
    return env


class SimulatorProcess:
    """The simulator in its own process (`python -m jira_assets.bench _simulator ...`): the `jira-assets
    simulate` options, plus a stdin command to report `Simulator.stats()`, its CPU and in-flight figures."""

    def __init__(self, case: Case, work: Path) -> None:
        self.case, self.work = case, work
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds = 0.0
        self._lock = threading.Lock()

    def argv(self) -> list[str]:
        c = self.case
        start = today_midnight().isoformat()
        return [*_child_argv("_simulator"), "--seed", str(c.seed), "--issues",
                str(c.issues), "--days", str(max(1, c.days)), "--custom-fields", str(c.custom_fields),
                "--latency-ms", str(c.latency_ms), "--jitter-ms", str(c.jitter_ms), "--max-in-flight", str(c.c),
                "--start", start]

    def start(self) -> dict:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=self.work)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator did not start (exit code {self.proc.wait()})")
        self.start_seconds = time.monotonic() - t0
        return json.loads(line)

    def stats(self, reset_peak: bool = False) -> dict:
        with self._lock:
            self.proc.stdin.write("stats reset\n" if reset_peak else "stats\n")
            self.proc.stdin.flush()
            return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _loadavg() -> Optional[str]:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def server_delta(before: dict, after: dict) -> dict:
    routes = {k: v - before["requests_by_route"].get(k, 0) for k, v in after["requests_by_route"].items()}
    statuses = {k: v - before["responses_by_status"].get(k, 0) for k, v in after["responses_by_status"].items()}
    seconds = after["meter_seconds"] - before["meter_seconds"]
    area = after["in_flight_area"] - before["in_flight_area"]
    requests = after["requests_total"] - before["requests_total"]
    return {
        "requests": requests,
        "requests_by_route": {k: v for k, v in sorted(routes.items(), key=lambda kv: -kv[1]) if v},
        "responses_by_status": {k: v for k, v in statuses.items() if v},
        "throttled_429": after["throttled_429"] - before["throttled_429"],
        "max_in_flight": after["peak_in_flight"],
        "mean_in_flight": round(area / seconds, 2) if seconds > 0 else 0.0,
        "mean_request_seconds": round(area / requests, 4) if requests else None,
        "internal_errors": after["internal_errors"] - before["internal_errors"],
        "throttled_detail": after.get("throttled_detail", [])[len(before.get("throttled_detail", [])):],
        "cpu_seconds": round(after["cpu_seconds"] - before["cpu_seconds"], 2),
        "bytes_sent": after["bytes_sent"] - before["bytes_sent"],
    }


def _child_argv(*args: str) -> list[str]:
    """A bench helper process. Not `python -m jira_assets.bench`: a forkserver started from it would import the
    module twice (as __main__ and as itself)."""
    return [sys.executable, "-c", "import sys; from jira_assets.bench import main; sys.exit(main(sys.argv[1:]))",
            *args]


def run_child(mode: str, spec: dict, env: dict, work: Path, sample_tree: bool = False) -> dict:
    """`python -m jira_assets.bench _<mode> spec out`, with its process tree's RSS sampled from /proc."""
    spec_path, out_path = work / f"{mode}-spec.json", work / f"{mode}-result.json"
    spec_path.write_text(json.dumps(spec))
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    log_path = work / f"{mode}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(_child_argv(f"_{mode}", str(spec_path), str(out_path)), env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        sampler = TreeSampler(proc.pid) if sample_tree else None
        if sampler:
            sampler.start()
        code = proc.wait()
        if sampler:
            sampler.stop()
    if code != 0 or not out_path.exists():
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"bench {mode} process failed (exit {code}):\n{tail}")
    result = json.loads(out_path.read_text())
    if sampler:
        names = {pid: f"{day} {step}" for day, run in (result.get("runs") or {}).items()
                 for step, pid in (run.get("step_pids") or {}).items()}
        result["tree"] = sampler.summary(names)
    return result


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants from /proc (no psutil)."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self._stop_event = threading.Event()
        self.peak_total_kb = 0
        self.peak_processes = 0
        self.hwm_kb: dict[int, tuple[int, str]] = {}
        self.cpu: dict[int, float] = {}  # last CPU seconds seen per process (misses at most its last interval)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def sample(self) -> None:
        total, count, stack = 0, 0, [self.root]
        while stack:
            pid = stack.pop()
            stack.extend(_children_of(pid))
            rss, hwm, name = _proc_memory(pid)
            if rss is None:
                continue
            self.cpu[pid] = _proc_cpu(pid) or self.cpu.get(pid, 0.0)
            total += rss
            count += 1
            if hwm > self.hwm_kb.get(pid, (0, ""))[0]:
                self.hwm_kb[pid] = (hwm, name)
        self.peak_total_kb = max(self.peak_total_kb, total)
        self.peak_processes = max(self.peak_processes, count)

    def summary(self, names: Optional[dict[int, str]] = None) -> dict:
        names = names or {}
        named = sorted(((kb, names.get(pid, name)) for pid, (kb, name) in self.hwm_kb.items()), reverse=True)
        by_step: dict[str, float] = {}
        cpu_by_step: dict[str, float] = {}
        for pid, (kb, _) in self.hwm_kb.items():
            if pid in names:
                step = names[pid].split(" ", 1)[-1]
                by_step[step] = max(by_step.get(step, 0.0), round(kb / 1024, 1))
                cpu_by_step[step] = round(cpu_by_step.get(step, 0.0) + self.cpu.get(pid, 0.0), 2)
        return {"peak_total_rss_mb": round(self.peak_total_kb / 1024, 1), "peak_processes": self.peak_processes,
                "processes_seen": len(self.hwm_kb),
                "largest_processes_mb": [[round(kb / 1024, 1), name] for kb, name in named[:6]],
                "peak_rss_mb_by_step": by_step, "cpu_seconds_by_step": cpu_by_step}


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _proc_cpu(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _proc_memory(pid: int) -> tuple[Optional[int], int, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None, 0, ""
    rss = hwm = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm, _short_command(cmd)


def _short_command(cmd: str) -> str:
    if "forkserver" in cmd:
        return "forkserver (and the steps forked from it)"
    if "_driver" in cmd:
        return "driver (run orchestration)"
    return cmd[-60:]


# ==================================================================================================
# the figures
# ==================================================================================================


def lake_summary(case: Case, lake: Path, days: list[str]) -> dict:
    from jira_assets.parquet.store import ParquetStore

    store = ParquetStore(str(lake))
    names = snapshot_names() if tuple(case.select) == ("snapshots",) else list(case.select)
    rows: dict[str, int] = {}
    for name in names:
        try:
            rows[name] = store.dataset(["jira", "raw", name], days, allow_missing=True).count_rows()
        except Exception:  # noqa: BLE001 - a table that never landed counts 0
            rows[name] = 0
    summary: dict[str, Any] = {"rows": rows}
    if "issues" in names and rows.get("issues"):
        import pyarrow.compute as pc

        table = store.dataset(["jira", "raw", "issues"], days, allow_missing=True).to_table(
            columns=["comment_total", "changelog_total"])
        needed = {}
        for child, (column, embedded, page) in EMBEDDED.items():
            totals = table.column(column).fill_null(0)
            truncated = pc.greater(totals, embedded)
            # a truncated issue needs ceil(total / page) requests of its own endpoint; complete ones need none
            pages = pc.sum(pc.if_else(truncated, pc.divide(pc.add(totals, page - 1), page), 0)).as_py() or 0
            needed[child] = {"truncated_issues": pc.sum(truncated).as_py() or 0, "minimum_requests": int(pages)}
        summary["children_needed"] = needed
    return summary


def snapshot_names() -> list[str]:
    from jira_assets.catalog import OBJECTS  # no Dagster import

    return [o.name for o in OBJECTS if not o.incremental]


def metrics(case: Case, result: dict) -> dict:
    product, server, lake = result["product"], result["server"], result["lake"]
    rows = lake["rows"]
    issues = rows.get("issues", 0)
    wall = product["wall_seconds"]
    cpu = product["cpu_seconds"]
    limit = case.c * 100 / (case.latency_ms / 1000) if case.latency_ms else None
    m: dict[str, Any] = {
        "wall_seconds": round(wall, 2),
        "issues": issues,
        "issues_per_second": round(issues / wall, 1) if wall and issues else None,
        "rows_per_second": {k: round(v / wall, 1) for k, v in rows.items() if k != "issues"} if wall else {},
        "rows": rows,
        "requests": server["requests"],
        "search_requests": server["requests_by_route"].get(SEARCH_ROUTE, 0),
        "throttled_429": server["throttled_429"],
        "retries": product["metadata_totals"].get("jira/retries", 0),
        "max_in_flight": server["max_in_flight"],
        "mean_in_flight": server["mean_in_flight"],
        "mean_request_seconds": server["mean_request_seconds"],
        "cpu_seconds": round(cpu, 1),
        "cpu_per_1000_issues": round(cpu / issues * 1000, 3) if issues else None,
        "startup_cpu_seconds": product.get("startup_cpu_seconds"),
        "cpu_per_1000_issues_after_startup": round((cpu - (product.get("startup_cpu_seconds") or 0)) / issues * 1000, 3)
        if issues else None,
        "simulator_cpu_seconds": server["cpu_seconds"],
        "peak_rss_mb": product["peak_rss_mb"],
        "peak_tree_rss_mb": (product.get("tree") or {}).get("peak_total_rss_mb"),
        "api_limit_issues_per_second": round(limit, 1) if limit else None,
        "failures": len(product.get("failures") or []),
        "other_processes_cpu_seconds": (result.get("machine") or {}).get("other_processes_cpu_seconds"),
        "peak_rss_mb_by_step": (product.get("tree") or {}).get("peak_rss_mb_by_step"),
        "cpu_seconds_by_step": (product.get("tree") or {}).get("cpu_seconds_by_step"),
    }
    if limit and issues:
        m["ratio_to_api_limit"] = round(issues / wall / limit, 3)
        # what the machine allowed: the limit at the latency the server actually delivered (its CPU shares the
        # machine), scaled by how full the budget was kept
        if server["mean_request_seconds"]:
            m["api_limit_at_served_latency"] = round(case.c * 100 / server["mean_request_seconds"], 1)
    # CPU-bound ceiling: cores / (CPU per issue of the product + of the simulator)
    if issues and wall:
        per_issue = (cpu + server["cpu_seconds"]) / issues
        m["cpu_ceiling_issues_per_second"] = round((os.cpu_count() or 1) / per_issue, 1) if per_issue else None
    if "children_needed" in lake:
        children = {}
        for child, need in lake["children_needed"].items():
            if child in case.select:
                route = CHILD_ROUTES[child]
                children[child] = {**need, "requests": server["requests_by_route"].get(route, 0)}
        m["children"] = children
    floor = result.get("floor")
    if floor and floor.get("issues"):
        m["floor_issues"] = floor["issues"]
        m["floor_cpu_per_1000_issues"] = round(floor["cpu_seconds"] / floor["issues"] * 1000, 3)
        m["floor_breakdown_per_1000"] = {k: round(v / floor["issues"] * 1000, 3)
                                         for k, v in floor["cpu_by_stage"].items()}
        if m.get("cpu_per_1000_issues"):
            m["ratio_to_floor"] = round(m["cpu_per_1000_issues"] / m["floor_cpu_per_1000_issues"], 2)
            m["ratio_to_floor_after_startup"] = round(
                m["cpu_per_1000_issues_after_startup"] / m["floor_cpu_per_1000_issues"], 2)
    client = result.get("client_only")
    if client:
        m["client_only_wall_seconds"] = round(client["wall_seconds"], 2)
        m["client_only_requests"] = client["server"]["requests"]
        m["dagster_to_client_ratio"] = round(wall / client["wall_seconds"], 2) if client["wall_seconds"] else None
    return m


_TABLE = [
    ("wall s", "wall_seconds"),
    ("issues", "issues"),
    ("issues/s", "issues_per_second"),
    ("API limit C*P/L issues/s", "api_limit_issues_per_second"),
    ("ratio to the API limit", "ratio_to_api_limit"),
    ("limit at served latency", "api_limit_at_served_latency"),
    ("CPU-bound ceiling issues/s", "cpu_ceiling_issues_per_second"),
    ("requests (server)", "requests"),
    ("  search/jql pages", "search_requests"),
    ("429s received", "throttled_429"),
    ("retries", "retries"),
    ("max in flight (server)", "max_in_flight"),
    ("mean in flight (server)", "mean_in_flight"),
    ("mean request s (server)", "mean_request_seconds"),
    ("CPU s (run processes)", "cpu_seconds"),
    ("CPU s / 1000 issues", "cpu_per_1000_issues"),
    ("  one-off start-up CPU s", "startup_cpu_seconds"),
    ("  CPU s / 1000 issues after start-up", "cpu_per_1000_issues_after_startup"),
    ("floor CPU s / 1000 issues", "floor_cpu_per_1000_issues"),
    ("ratio to the floor", "ratio_to_floor"),
    ("  after start-up", "ratio_to_floor_after_startup"),
    ("simulator CPU s", "simulator_cpu_seconds"),
    ("peak RSS MB (largest process)", "peak_rss_mb"),
    ("peak RSS MB (all run processes)", "peak_tree_rss_mb"),
    ("client alone wall s", "client_only_wall_seconds"),
    ("Dagster / client alone", "dagster_to_client_ratio"),
    ("other processes' CPU s (machine)", "other_processes_cpu_seconds"),
    ("failed steps", "failures"),
]


def table_rows(result: dict) -> dict[str, Any]:
    m = result["metrics"]
    out = {label: m.get(key) for label, key in _TABLE}
    by_step = m.get("peak_rss_mb_by_step") or {}
    if 0 < len(by_step) <= 6:
        for step, mb in sorted(by_step.items()):
            out[f"peak RSS MB {step.replace('jira__raw__', '')}"] = mb
        for step, cpu in sorted((m.get("cpu_seconds_by_step") or {}).items()):
            out[f"CPU s {step.replace('jira__raw__', '')} (all partitions)"] = cpu
    rates = m.get("rows_per_second") or {}
    if len(rates) > 6:  # the snapshot catalog: one total
        out["rows/s (all tables)"] = round(sum(rates.values()), 1)
        rates = {}
    for name, value in rates.items():
        out[f"{name} rows/s"] = value
    for name, child in (m.get("children") or {}).items():
        out[f"{name}: truncated issues"] = child["truncated_issues"]
        out[f"{name}: requests (min needed)"] = f"{child['requests']} ({child['minimum_requests']})"
    return out


def render_table(results: list[dict], previous: Optional[dict] = None) -> str:
    columns = [(r["case"], table_rows(r)) for r in results]
    if previous:
        columns += [(f"{r['case']} (was)", table_rows(r)) for r in previous.get("cases", [])
                    if any(r["case"] == c for c, _ in columns)]
    labels: list[str] = []
    for _, rows in columns:
        labels += [k for k, v in rows.items() if k not in labels and v is not None]
    labels = [label for label in labels if any(rows.get(label) is not None for _, rows in columns)]
    width = max(len(label) for label in labels)
    widths = [max(12, len(name)) for name, _ in columns]
    lines = ["metric".ljust(width) + "  " + "  ".join(n.rjust(w) for (n, _), w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    for label in labels:
        cells = [_cell(rows.get(label)).rjust(w) for (_, rows), w in zip(columns, widths)]
        lines.append(label.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# ==================================================================================================
# child processes
# ==================================================================================================


def _cpu_and_memory() -> dict:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "cpu_self_seconds": own.ru_utime + own.ru_stime,
        "cpu_children_seconds": children.ru_utime + children.ru_stime,
        "peak_rss_mb": round(max(own.ru_maxrss, children.ru_maxrss) / 1024, 1),  # ru_maxrss is KiB on Linux
        "peak_rss_self_mb": round(own.ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(children.ru_maxrss / 1024, 1),
    }


def _serve_simulator(argv: Sequence[str]) -> int:
    """The simulator with a stdin control channel: `stats [reset]` prints one JSON line; EOF stops it."""
    import resource

    from jira_assets.simulator import Simulator
    from jira_assets.simulator.cli import add_arguments, config_from_args

    parser = argparse.ArgumentParser(prog="jira-assets bench _simulator")
    add_arguments(parser)
    config = config_from_args(parser.parse_args(argv))
    with Simulator(config) as sim:
        meter = InFlightMeter(sim.site.disruptor)
        sys.stdout.write(json.dumps(sim.info()) + "\n")
        sys.stdout.flush()
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "stats":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                payload = {**sim.stats(), **meter.snapshot(reset="reset" in words),
                           "cpu_seconds": usage.ru_utime + usage.ru_stime}
                sys.stdout.write(json.dumps(payload, default=str) + "\n")
                sys.stdout.flush()
    return 0


class InFlightMeter:
    """Time-weighted requests in flight at the server (wraps the disruptor's enter/leave in this process)."""

    def __init__(self, disruptor: Any) -> None:
        self._lock = threading.Lock()
        self._n = 0
        self._t = self._t0 = time.monotonic()
        self._area = 0.0
        self._peak = 0
        self._paths: dict[int, str] = {}  # thread -> the request it serves
        self.throttled: list[dict] = []  # the 429s sent for the in-flight limit, with what was in flight
        enter, leave, plan = disruptor.enter, disruptor.leave, disruptor.plan

        def metered_enter() -> int:
            self._change(+1)
            return enter()

        def metered_leave() -> None:
            self._change(-1)
            self._paths.pop(threading.get_ident(), None)
            leave()

        def metered_plan(method: str, path: str, route_key: str, in_flight: int, api: bool = True) -> Any:
            self._paths[threading.get_ident()] = f"{method} {route_key}"
            planned, extra = plan(method, path, route_key, in_flight, api)
            if planned is not None and planned.status == 429 and len(self.throttled) < 20:
                others = sorted(v for k, v in list(self._paths.items()) if k != threading.get_ident())
                self.throttled.append({"request": f"{method} {route_key}", "in_flight": in_flight,
                                       "others": others, "at": round(time.monotonic() - self._t0, 3)})
            return planned, extra

        disruptor.enter, disruptor.leave, disruptor.plan = metered_enter, metered_leave, metered_plan

    def _change(self, delta: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._area += self._n * (now - self._t)
            self._t = now
            self._n += delta
            self._peak = max(self._peak, self._n)

    def snapshot(self, reset: bool = False) -> dict:
        self._change(0)
        with self._lock:
            out = {"in_flight_area": self._area, "meter_seconds": self._t - self._t0, "peak_in_flight": self._peak,
                   "throttled_detail": list(self.throttled)}
            if reset:
                self._peak = self._n
            return out


# ---- the driver: Dagster runs, each over a range of partitions as a backfill launches them --------------------


def bench_job(names: tuple[str, ...], checks: bool = False):
    """The job the driver executes: the code location's own definitions and executor, the selected raw assets."""
    import dagster as dg

    from jira_assets.catalog import OBJECTS
    from jira_assets.definitions import defs as load_defs
    from jira_assets.defs.execution import step_executor
    from jira_assets.defs.raw import raw_key

    if tuple(names) == ("snapshots",):
        names = tuple(o.name for o in OBJECTS if not o.incremental)
    d = load_defs()
    selection = dg.AssetSelection.assets(*(raw_key(n) for n in names))
    if not checks:
        selection = selection.without_checks()
    job = dg.define_asset_job("jira_assets_bench", selection=selection)
    return dg.Definitions(assets=d.assets, asset_checks=d.asset_checks, resources=d.resources, jobs=[job],
                          executor=step_executor(preload=BENCH_PRELOAD)).resolve_job_def("jira_assets_bench")


def _driver(spec_path: str, out_path: str) -> int:
    """Launch a run per range of partitions (as a backfill does), `runs` at a time, each in its own run-worker
    process, and wait for them.

    launcher "fork": run workers are forked from this process once the code location is imported (a warm
    worker, like a code server that forks instead of starting a fresh interpreter); "subprocess": each run worker
    is a fresh interpreter (what Dagster's DefaultRunLauncher does). Steps are started by the multiprocess
    executor (start method forkserver with the code location preloaded, or spawn).
    """
    import importlib

    import dagster as dg  # imported before forking: the warm part

    importlib.import_module("jira_assets.definitions")

    spec = json.loads(Path(spec_path).read_text())
    case = _case(spec)
    work = Path(spec["work"])
    t_setup = time.monotonic()
    with dg.DagsterInstance.get() as instance:  # create the storage once: concurrent first opens race (alembic)
        instance.get_runs(limit=1)
    if case.start_method == "forkserver" and case.launcher == "fork":
        _warm_forkserver()
    warmup = time.monotonic() - t_setup
    startup_cpu = _cpu_and_memory()["cpu_seconds"] + _forkserver_cpu()

    # Newest ranges first: recent days hold the most updated issues, and a big range started last would leave
    # the budget idle while it finishes alone.
    pending = [",".join(days) for days in reversed(run_ranges(spec["days"], _days_per_run(case)))]
    running: dict[int, tuple[str, float, Path]] = {}
    runs: dict[str, dict] = {}
    t0 = time.monotonic()
    while pending or running:
        while pending and len(running) < max(1, case.runs):
            day = pending.pop(0)
            out = work / f"run-{day}.json"
            if case.launcher == "fork":
                pid = os.fork()
                if pid == 0:  # the run worker
                    code = 1
                    try:
                        _reuse_parent_forkserver()
                        code = _execute_run(case, day, out)
                    except BaseException:  # noqa: BLE001 - reported, then the worker ends
                        import traceback

                        traceback.print_exc()
                    finally:
                        sys.stdout.flush()
                        sys.stderr.flush()
                        os._exit(code)
            else:
                pid = subprocess.Popen(_child_argv("_run", spec_path, day, str(out))).pid
            running[pid] = (day, time.monotonic(), out)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        day, started, out = running.pop(pid)
        run = json.loads(out.read_text()) if out.exists() else {"failures": [f"{day}: run worker exited {status}"]}
        run.update({"wall_seconds": round(time.monotonic() - started, 2),
                    "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)})
        runs[day] = run
    wall = time.monotonic() - t0
    _stop_forkserver()
    failures = [f for run in runs.values() for f in run.get("failures", [])]
    totals: dict[str, float] = {}
    for run in runs.values():
        for label, value in run.get("metadata_totals", {}).items():
            totals[label] = round(totals.get(label, 0) + value, 3)
    result = {"wall_seconds": wall, "warmup_seconds": round(warmup, 2), "startup_cpu_seconds": round(startup_cpu, 2),
              "failures": failures,
              "runs": {day: {k: v for k, v in run.items() if k != "metadata_totals"} for day, run in
                       sorted(runs.items())},
              "metadata_totals": totals, **_cpu_and_memory()}
    Path(out_path).write_text(json.dumps(result, default=str))
    return 0


def _days_per_run(case: Case) -> int:
    from jira_assets.defs.raw import DAYS_PER_RUN  # the product's setting, from JIRA_DAYS_PER_RUN or its default

    return 1 if case.snapshots else DAYS_PER_RUN


def run_ranges(days: list[str], per_run: int) -> list[list[str]]:
    """Consecutive days in chunks of `per_run`, oldest first: how a multi_run backfill policy splits them."""
    days = sorted(days)
    return [days[i:i + per_run] for i in range(0, len(days), max(1, per_run))]


def _case(spec: dict) -> Case:
    return Case(**{**spec["case"], "select": tuple(spec["case"]["select"])})


def _execute_run(case: Case, day: str, out: Path) -> int:
    """One run (`day`: one partition, or a comma list of consecutive ones) through the multiprocess executor;
    its results and metadata to `out`."""
    import dagster as dg

    job = dg.build_reconstructable_job("jira_assets.bench", "bench_job",
                                       reconstructable_args=(tuple(case.select), case.checks))
    execution: dict = {"in_process": {}}
    if case.executor != "in_process":  # spawn: Dagster's default start method, for comparison
        spawn = {"start_method": {"spawn": {}}} if case.start_method == "spawn" else {}
        execution = {"multiprocess": {"max_concurrent": case.steps, **spawn}}
    run_config = {**QUIET, "execution": {"config": execution}}
    failures: list[str] = []
    with dg.DagsterInstance.get() as instance:
        days = day.split(",")
        partition = ({"dagster/partition": day} if len(days) == 1 else
                     {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]})
        result = dg.execute_job(job, instance=instance, run_config=run_config,
                                tags={**partition, "jira-assets/bench": case.name})
        for event in result.all_events:
            if event.is_step_failure:
                message = event.event_specific_data.error.message.strip().splitlines()[0]
                failures.append(f"{day} {event.step_key}: {message}")
        if not result.success and not failures:
            failures.append(f"{day}: run failed")
        totals, steps = _materialization_totals(instance, result.run_id)
        step_seconds, step_pids = _step_seconds(instance, result.run_id)
    out.write_text(json.dumps({"run_id": result.run_id, "success": result.success, "failures": failures,
                               "metadata_totals": totals, "steps": steps, "step_seconds": step_seconds,
                               "step_pids": step_pids}))
    return 0


def _run(spec_path: str, day: str, out_path: str) -> int:
    """A run worker in a fresh interpreter (launcher "subprocess")."""
    return _execute_run(_case(json.loads(Path(spec_path).read_text())), day, Path(out_path))


def _reuse_parent_forkserver() -> None:
    """In a forked run worker: use the forkserver the parent started (it cannot waitpid its parent's child)."""
    import multiprocessing.forkserver
    from multiprocessing import resource_tracker

    server = multiprocessing.forkserver._forkserver  # noqa: SLF001
    if server._forkserver_address is not None:  # noqa: SLF001
        server.ensure_running = resource_tracker.ensure_running


def _step_seconds(instance: Any, run_id: str) -> dict:
    import dagster as dg

    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    pids: dict[str, int] = {}
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START,
                                                     dg.DagsterEventType.STEP_SUCCESS,
                                                     dg.DagsterEventType.STEP_FAILURE}):
        event = record.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
            if event.pid:
                pids[event.step_key] = event.pid
        elif event.step_key in starts:
            seconds[event.step_key] = round(record.timestamp - starts[event.step_key], 2)
    return seconds, pids


def _warm_forkserver() -> None:
    """Start the executor's forkserver with the code location preloaded before the clock starts (a long-lived
    worker's state); its start-up CPU is still counted in the run's CPU."""
    import multiprocessing
    import multiprocessing.forkserver

    from jira_assets.defs.execution import PRELOAD

    multiprocessing.get_context("forkserver").set_forkserver_preload([*PRELOAD, *BENCH_PRELOAD])
    multiprocessing.forkserver.ensure_running()


def _forkserver_cpu() -> float:
    """CPU the running forkserver has used so far (its preload), from /proc."""
    try:
        import multiprocessing.forkserver

        pid = multiprocessing.forkserver._forkserver._forkserver_pid  # noqa: SLF001
        return (_proc_cpu(pid) or 0.0) if pid else 0.0
    except Exception:  # noqa: BLE001
        return 0.0


def _stop_forkserver() -> None:
    """Stop the forkserver and reap it, so its CPU (and that of the steps it forked) counts in RUSAGE_CHILDREN."""
    try:
        import multiprocessing.forkserver

        multiprocessing.forkserver._forkserver._stop()  # noqa: SLF001 - no public way to reap it
    except Exception:  # noqa: BLE001
        pass


def _materialization_totals(instance: Any, run_id: str) -> tuple[dict, dict]:
    import dagster as dg

    totals: dict[str, float] = {}
    steps: dict[str, dict] = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None:
            continue
        name = materialization.asset_key.path[-1]
        for label, value in materialization.metadata.items():
            if label.startswith("jira/") or label in ("dagster/row_count", "parquet/bytes"):
                raw = getattr(value, "value", value)
                if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                    totals[label] = totals.get(label, 0) + raw
                    entry = steps.setdefault(name, {})
                    entry[label] = entry.get(label, 0) + raw
    return {k: round(v, 3) for k, v in totals.items()}, steps


# ---- the client alone (snapshots): the same extractors and store, no Dagster ---------------------------------


def _client(spec_path: str, out_path: str) -> int:
    import concurrent.futures as cf

    import dagster as dg

    from jira_assets.catalog import OBJECTS
    from jira_assets.defs.resources import io_manager_from_env, jira_resource_from_env
    from jira_assets.extract import extract

    spec = json.loads(Path(spec_path).read_text())
    case = _case(spec)
    day = spec["days"][0]
    objects = [o for o in OBJECTS if not o.incremental] if tuple(case.select) == ("snapshots",) else \
        [o for o in OBJECTS if o.name in case.select]
    with dg.build_resources({"jira": jira_resource_from_env()}) as resources:  # EnvVar values resolved
        client = resources.jira.get_client()
        settings = resources.jira.extract_settings()
    store = io_manager_from_env().store
    done: set[str] = set()
    pending = list(objects)
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=max(1, case.steps)) as pool:
        while pending:
            ready = [o for o in pending if not o.reads or o.reads in done or o.reads not in {p.name for p in objects}]
            pending = [o for o in pending if o not in ready]

            def one(obj: Any) -> None:
                upstream = store.dataset(["jira", "raw", obj.reads], [day]) if obj.reads else None
                store.write(["jira", "raw", obj.name], ("date", day), extract(obj, client, upstream=upstream,
                                                                             settings=settings))

            for future in [pool.submit(one, o) for o in ready]:
                future.result()
            done.update(o.name for o in ready)
    wall = time.monotonic() - t0
    Path(out_path).write_text(json.dumps({"wall_seconds": wall, "objects": len(objects), **_cpu_and_memory()}))
    return 0


# ---- the floor: pages fetched once, then decode + Arrow + Parquet in a bare loop ------------------------------


def _floor(spec_path: str, out_path: str) -> int:
    import orjson

    from jira_assets.catalog import get
    from jira_assets.extract import ExtractSettings, Window, _in_window, issue_jql
    from jira_assets.jira import ApiToken, JiraClient

    spec = json.loads(Path(spec_path).read_text())
    case = _case(spec)
    info = spec["info"]
    pages_dir = Path(spec["work"]) / "floor-pages"
    pages_dir.mkdir(exist_ok=True)
    client = JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"]), allow_local=True,
                        max_in_flight=case.c)
    settings = ExtractSettings()
    fields = client.get_json("/rest/api/2/field")
    (pages_dir / "fields.json").write_bytes(orjson.dumps(fields))
    paging = get("issues").paging
    sample: list[tuple[str, int]] = []
    issues_total = 0
    t_fetch = time.monotonic()
    for day in reversed(spec["days"]):  # the most recent partitions, until the sample is big enough
        if issues_total >= case.floor_issues:
            break
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
        window = Window(start, start + dt.timedelta(days=1))
        body = {"jql": issue_jql(window, settings), "fields": ["*all"], "expand": "changelog"}
        count = 0
        for n, page in enumerate(client.iter_pages("/rest/api/2/search/jql", paging, body=body)):
            (pages_dir / f"{day}-issues-{n:05d}.json").write_bytes(orjson.dumps({"issues": page}))
            for issue in page:
                count += 1
                _save_child_pages(client, pages_dir, day, issue, case.select)
        if "issue_worklogs" in case.select:
            _save_worklog_pages(client, pages_dir, day, window)
        sample.append((day, len(list(pages_dir.glob(f"{day}-issues-*.json")))))
        issues_total += count
    fetch_seconds = time.monotonic() - t_fetch
    client.close()

    cpu_by_stage = _floor_loop(case, pages_dir, [d for d, _ in sample], Path(spec["work"]) / "floor-lake",
                               _in_window, Window)
    result = {"issues": cpu_by_stage.pop("_issues"), "partitions": [d for d, _ in sample],
              "fetch_seconds": round(fetch_seconds, 2), "cpu_seconds": sum(cpu_by_stage.values()),
              "cpu_by_stage": cpu_by_stage}
    Path(out_path).write_text(json.dumps(result))
    return 0


def _save_child_pages(client: Any, pages_dir: Path, day: str, issue: dict, select: Sequence[str]) -> None:
    import orjson

    from jira_assets.jira.paging import PageBean, StartAtTotal

    fields = issue.get("fields") or {}
    wanted = []
    if "issue_comments" in select:
        page = fields.get("comment") or {}
        if page.get("total", 0) > len(page.get("comments") or []):
            wanted.append(("comment", StartAtTotal("comments", 100)))
    if "issue_changelogs" in select:
        page = issue.get("changelog") or {}
        if page.get("total", 0) > len(page.get("histories") or []):
            wanted.append(("changelog", PageBean(100)))
    for kind, paging in wanted:
        items: list = []
        for chunk in client.iter_pages(f"/rest/api/2/issue/{issue['id']}/{kind}", paging):
            items.extend(chunk)
        (pages_dir / f"{day}-{kind}-{issue['id']}.json").write_bytes(orjson.dumps(items))


def _save_worklog_pages(client: Any, pages_dir: Path, day: str, window: Any) -> None:
    import orjson

    from jira_assets.catalog import get

    obj = get("issue_worklogs")
    ids: list[int] = []
    for page in client.iter_pages(obj.path, obj.paging, params={"since": window.start_ms}):
        ids += [int(v["worklogId"]) for v in page if window.contains_ms(int(v.get("updatedTime", 0)))]
        if page and int(page[-1].get("updatedTime", 0)) >= window.end_ms:
            break
    for n, start in enumerate(range(0, len(ids), 1000)):
        bodies = client.post_json("/rest/api/2/worklog/list", {"ids": ids[start:start + 1000]}) or []
        (pages_dir / f"{day}-worklogs-{n:05d}.json").write_bytes(orjson.dumps(bodies))


def _floor_loop(case: Case, pages_dir: Path, days: list[str], lake: Path, in_window: Any, Window: Any) -> dict:
    """Decode, convert and write, timed per stage with the process's own CPU clock."""
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jira_assets.arrow import RecordConverter
    from jira_assets.catalog import get
    from jira_assets.extract import _changelog_rows, _comment_rows
    from jira_assets.issue_schema import issue_converter

    clock = time.process_time
    stages = {"decode": 0.0, "arrow": 0.0, "parquet": 0.0}
    fields = orjson.loads((pages_dir / "fields.json").read_bytes())
    issues_count = 0
    row_group = 100_000
    for day in days:
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
        window = Window(start, start + dt.timedelta(days=1))
        converters = {"issues": issue_converter(fields)}
        for name in ("issue_comments", "issue_changelogs", "issue_worklogs"):
            if name in case.select:
                converters[name] = RecordConverter(get(name).columns)
        writers: dict[str, Any] = {}
        pending: dict[str, list] = {name: [] for name in converters}

        def emit(name: str, batch: Any, final: bool = False) -> None:
            t = clock()
            if batch is not None and batch.num_rows:
                pending[name].append(batch)
            if pending[name] and (final or sum(b.num_rows for b in pending[name]) >= row_group):
                if name not in writers:
                    path = lake / name / f"date={day}"
                    path.mkdir(parents=True, exist_ok=True)
                    writers[name] = pq.ParquetWriter(str(path / "part-00000.parquet"), converters[name].schema,
                                                     compression="zstd")
                writers[name].write_table(pa.Table.from_batches(pending[name]))
                pending[name] = []
            stages["parquet"] += clock() - t

        for page_file in sorted(pages_dir.glob(f"{day}-issues-*.json")):
            t = clock()
            page = orjson.loads(page_file.read_bytes())["issues"]
            stages["decode"] += clock() - t
            t = clock()
            kept = [i for i in page if in_window((i.get("fields") or {}).get("updated"), window)]
            issues_count += len(kept)
            batch = converters["issues"].convert(kept) if kept else None
            stages["arrow"] += clock() - t
            emit("issues", batch)
            for name, list_key, kind, to_rows in (("issue_comments", "comments", "comment", _comment_rows),
                                                 ("issue_changelogs", "histories", "changelog", _changelog_rows)):
                if name not in converters:
                    continue
                rows: list = []
                for issue in kept:
                    embedded = (issue.get("fields") or {}).get("comment") if kind == "comment" else issue.get("changelog")
                    embedded = embedded or {}
                    items = embedded.get(list_key) or []
                    if embedded.get("total", len(items)) > len(items):
                        t = clock()
                        items = orjson.loads((pages_dir / f"{day}-{kind}-{issue['id']}.json").read_bytes())
                        stages["decode"] += clock() - t
                    t = clock()
                    rows += to_rows(str(issue["id"]), items)
                    stages["arrow"] += clock() - t
                t = clock()
                batch = converters[name].convert(rows) if rows else None
                stages["arrow"] += clock() - t
                emit(name, batch)
        if "issue_worklogs" in converters:
            for page_file in sorted(pages_dir.glob(f"{day}-worklogs-*.json")):
                t = clock()
                page = orjson.loads(page_file.read_bytes())
                stages["decode"] += clock() - t
                t = clock()
                batch = converters["issue_worklogs"].convert(page) if page else None
                stages["arrow"] += clock() - t
                emit("issue_worklogs", batch)
        for name in converters:
            emit(name, None, final=True)
            t = clock()
            if name in writers:
                writers[name].close()
            stages["parquet"] += clock() - t
    return {**stages, "_issues": issues_count}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        from jira_assets.cli import main as cli_main

        return cli_main(["bench", "--help"])
    mode, rest = argv[0], argv[1:]
    if mode == "_simulator":
        return _serve_simulator(rest)
    if mode == "_driver":
        return _driver(*rest)
    if mode == "_run":
        return _run(*rest)
    if mode == "_client":
        return _client(*rest)
    if mode == "_floor":
        return _floor(*rest)
    from jira_assets.cli import main as cli_main

    return cli_main(["bench", *argv])


if __name__ == "__main__":
    sys.exit(main())
