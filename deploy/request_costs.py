"""Measure what the issue family costs in Jira requests, against the simulator, and project a large site.

    python deploy/request_costs.py                       # measure (20 000 issues over 10 days) and project 10 M
    python deploy/request_costs.py --issues 50000 --days 20 --site-issues 10000000 --years 5

It materializes the raw issue family (issues, comments, changelogs, worklogs, worklog deletions) for every day of
the simulated site through the code location's own assets, resources and IO manager (in this process, one day at a
time), with every request of the process bounded by the budget: JIRA_MAX_IN_FLIGHT = window splits = child
workers = C. The simulator counts every request by route; from the counts it derives requests per issue, issues
per search page, and the measured throughput against the API limit C / L (L = the simulator's latency). The
projection for a site of N issues is then arithmetic on those measured ratios:

    requests      = N x requests per issue (measured)
    time at limit = requests x L / C        (every one of the C slots busy, each request taking L)
    partitions    = one per UTC day of history; runs = partitions (BackfillPolicy.multi_run(1))

The result is printed and written to --out as JSON (deploy/README.md quotes a run of it).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

FAMILY = ("issues", "issue_comments", "issue_changelogs", "issue_worklogs", "worklog_deletions")
SEARCH_ROUTE = "POST /rest/api/2/search/jql"


def measure(issues: int, days: int, latency_ms: float, budget: int, seed: int) -> dict:
    from jira_assets.demo import demo_environment
    from jira_assets.simulator import Simulator, SimulatorConfig

    work = Path(tempfile.mkdtemp(prefix="jira-request-costs-"))
    config = SimulatorConfig(seed=seed, issues=issues, days=days, latency_ms=latency_ms, max_in_flight=budget)
    with Simulator(config) as sim:
        env = demo_environment(sim.info(), str(work / "lake"), work, "2026-01-01")
        env.pop("JIRA_HISTORY_START")
        env.update({"JIRA_MAX_IN_FLIGHT": str(budget), "JIRA_WINDOW_SPLITS": str(budget),
                    "JIRA_CHILD_WORKERS": str(budget)})
        os.environ.update(env)
        for name in ("JIRA_REQUEST_BUDGET_DIR", "JIRA_THROTTLE_BOARD"):
            os.environ.pop(name, None)

        import dagster as dg

        from jira_assets.definitions import defs

        definitions = defs()
        assets = [a for a in definitions.assets if isinstance(a, dg.AssetsDefinition)]
        selection = [dg.AssetKey(["jira", "raw", name]) for name in FAMILY]
        today = dt.datetime.now(dt.timezone.utc).date()
        partitions = [(today - dt.timedelta(days=n)).isoformat() for n in range(days, 0, -1)]
        before = sim.stats()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        with dg.DagsterInstance.ephemeral() as instance:
            for day in partitions:
                result = dg.materialize(assets, selection=selection, partition_key=day, instance=instance,
                                        resources=definitions.resources, raise_on_error=True,
                                        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
                assert result.success, day
        wall = time.monotonic() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        after = sim.stats()
        stored = sum(len(sim.truth.issues(updated_from=dt.datetime.fromisoformat(d).replace(tzinfo=dt.timezone.utc),
                                          updated_to=dt.datetime.fromisoformat(d).replace(tzinfo=dt.timezone.utc)
                                          + dt.timedelta(days=1))) for d in partitions)
    by_route = {k: v - before["requests_by_route"].get(k, 0) for k, v in after["requests_by_route"].items()}
    by_route = {k: v for k, v in sorted(by_route.items(), key=lambda kv: -kv[1]) if v}
    api = {k: v for k, v in by_route.items() if "/rest/" in k}
    requests = sum(api.values())
    latency = latency_ms / 1000
    return {
        "simulated": {"issues": issues, "days": days, "latency_ms": latency_ms, "budget_C": budget, "seed": seed},
        "issues_extracted": stored,
        "partitions": len(partitions),
        "api_requests": requests,
        "requests_by_route": api,
        "requests_per_issue": round(requests / stored, 4),
        "issues_per_search_page": round(stored / max(1, api.get(SEARCH_ROUTE, 0)), 1),
        "wall_seconds": round(wall, 1),
        "requests_per_second": round(requests / wall, 1),
        "api_limit_requests_per_second": round(budget / latency, 1),
        "fraction_of_api_limit": round(requests / wall / (budget / latency), 3),
        "seconds_per_request_at_budget": round(wall / requests, 4),
        "max_in_flight_seen": after["max_in_flight"],
        "throttled_429": after["throttled_429"] - before["throttled_429"],
        "cpu_seconds_per_1000_issues": round(
            ((cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)) / stored * 1000,
            2),
    }


def project(measured: dict, site_issues: int, years: float, budget: int, latencies: list[float]) -> dict:
    days = round(years * 365.25)
    requests = site_issues * measured["requests_per_issue"]
    rows = []
    for latency in latencies:
        seconds = requests * latency / budget
        rows.append({"latency_s": latency, "hours_at_limit": round(seconds / 3600, 1),
                     "days_at_limit": round(seconds / 86400, 2)})
    return {
        "site_issues": site_issues, "history_days": days, "partitions": days, "runs": days,
        "issues_per_partition": round(site_issues / days),
        "search_pages_per_partition": round(site_issues / days / measured["issues_per_search_page"], 1),
        "requests": round(requests), "requests_per_partition": round(requests / days),
        "budget_C": budget, "time_at_limit": rows,
        "cpu_hours": round(site_issues / 1000 * measured["cpu_seconds_per_1000_issues"] / 3600, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--budget", type=int, default=8, help="C for the measurement")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--site-issues", type=int, default=10_000_000)
    parser.add_argument("--years", type=float, default=5.0, help="history of the projected site")
    parser.add_argument("--site-budget", type=int, default=10, help="C for the projection")
    parser.add_argument("--site-latency", type=float, action="append",
                        help="mean seconds per request on the real site (repeatable); default 0.25, 0.5, 1.0")
    parser.add_argument("--out", default="bench_results/request_costs.json",
                        help="JSON result (deploy/request_costs.measured.json is the run the README quotes)")
    args = parser.parse_args(argv)
    measured = measure(args.issues, args.days, args.latency_ms, args.budget, args.seed)
    projection = project(measured, args.site_issues, args.years, args.site_budget,
                         args.site_latency or [0.25, 0.5, 1.0])
    report = {"measured": measured, "projection": projection,
              "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
