"""A backfill on the production instance (deploy/dagster.yaml on a real Postgres), through the run queue, as many
concurrent runs, against the simulator with latency and a request budget: every request shares one budget and one
OAuth grant, kept in the S3 token store.

    C  = JIRA_REQUEST_BUDGET     requests the Jira site may see in flight at once (the simulator 429s above it)
    P  = pool "jira_api" limit   Jira steps at once over all runs and machines (deploy/dagster.yaml ships 2)
    M  = JIRA_MAX_IN_FLIGHT      requests in flight per step process (the client's limit)
    P x M <= C - 1               the simulator serves OAuth on the site's host, and the single-flight refresh
                                 (one at a time over all machines, through the token store's lease) takes one

Nothing here bounds the requests but Dagster's pool and the client's per-process limit: no request-budget directory
is set, as on several machines, where a lock-file budget cannot reach. The access token lives 20 s, so the grant
rotates several times while runs in different processes use it.

The runs use the in-process executor (one process per run, steps one after another inside it): a CI machine with
2 cores cannot start the ~80 Python processes of 20 multiprocess runs in the time budget. Steps in separate
processes are what the Celery test exercises.
"""
from __future__ import annotations

import datetime as dt
import os
import sys

import boto3
import pytest

from jira_assets_tests.distributed_harness import (
    TOKEN_KEY,
    CpuSampler,
    Deployment,
    assert_issues_and_comments_equal_truth,
    busiest_moment,
    intervals_overlap_max,
    jira_deployment_env,
    pool_waits,
    production_instance_yaml,
    run_intervals,
    run_days,
    step_intervals,
    utc_days,
)
from jira_assets_tests.distributed_services import ServiceUnavailable, postgres_server

pytestmark = pytest.mark.slow

BUDGET = 5  # C
POOL_LIMIT = 2  # P
MAX_IN_FLIGHT = 2  # M
MAX_RUNS = 4
DAYS_PER_RUN = 4  # JIRA_DAYS_PER_RUN: 20 days as 5 runs, more than MAX_RUNS: the queue holds one back
DAYS = int(os.environ.get("JIRA_ASSETS_TEST_DAYS", "20"))
TIMEOUT = float(os.environ.get("JIRA_ASSETS_TEST_TIMEOUT", "600"))
ASSETS = (("jira", "raw", "issues"), ("jira", "raw", "issue_comments"))
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@pytest.fixture(scope="module")
def postgres():
    try:
        with postgres_server() as pg:
            yield pg
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL cannot be installed or started here: {exc}")


def test_a_20_day_backfill_runs_as_concurrent_queued_runs_within_one_request_budget_and_one_grant(
        postgres, s3_server, s3_bucket, tmp_path):
    from jira_assets.simulator import Simulator, SimulatorConfig

    assert POOL_LIMIT * MAX_IN_FLIGHT <= BUDGET - 1
    days = utc_days(DAYS, dt.datetime.now(dt.timezone.utc).date())
    config = SimulatorConfig(seed=23, issues=30 * (DAYS + 2), days=DAYS + 2, latency_ms=150, max_in_flight=BUDGET,
                             access_token_ttl=20)
    lake = tmp_path / "lake"
    with Simulator(config) as sim:
        seed_refresh_token = sim.info()["refresh_token"]
        env = jira_deployment_env(sim, lake, s3_bucket, s3_server, postgres, MAX_IN_FLIGHT)
        env["JIRA_WINDOW_SPLITS"] = str(MAX_IN_FLIGHT)  # a day's search uses all M of its step's requests
        env["JIRA_DAYS_PER_RUN"] = str(DAYS_PER_RUN)
        instance_yaml = production_instance_yaml(max_concurrent_runs=MAX_RUNS, pool_default_limit=POOL_LIMIT)
        deployment = Deployment(tmp_path, env, instance_yaml, {"module_name": "jira_assets.definitions"})
        cpu = CpuSampler(lambda: [s.proc.pid for s in deployment.services])
        try:
            deployment.set_pool_limit("jira_api", POOL_LIMIT)  # as deploy/README.md says
            backfill_id = deployment.launch_backfill(ASSETS, days, title=f"{DAYS} days", run_config=IN_PROCESS)
            deployment.start_daemon()
            with cpu:
                backfill = deployment.wait_for_backfill(backfill_id, timeout=TIMEOUT)
            runs = deployment.runs(backfill_id)
            steps = step_intervals(deployment, runs)
            waits = pool_waits(deployment, runs)
            stats = sim.stats()
        finally:
            deployment.stop(keep_logs=True)  # removed at the end if every assertion holds
        print(f"\nCPU seconds of the deployment's processes, by kind (processes, seconds): {cpu.by_kind()}",
              file=sys.stderr)

        # the queue ran the backfill as runs of up to DAYS_PER_RUN days, several at once, each day written once,
        # and the pool held the Jira steps to P
        assert backfill.status.value == "COMPLETED_SUCCESS", (deployment.run_statuses(backfill_id), backfill.error)
        assert sorted(day for r in runs for day in run_days(r.dagster_run)) == days
        assert len(runs) == -(-DAYS // DAYS_PER_RUN)
        assert {r.dagster_run.status.value for r in runs} == {"SUCCESS"}
        concurrent_runs = intervals_overlap_max(run_intervals(runs))
        assert concurrent_runs >= 2, "the runs did not overlap"
        assert concurrent_runs <= MAX_RUNS
        jira_steps = [s for s in steps if s[2] in ("jira__raw__issues", "jira__raw__issue_comments", "issues_checks")]
        assert len({(s[2], s[3]) for s in jira_steps if s[2] != "issues_checks"}) == 2 * len(runs)
        assert intervals_overlap_max((s[0], s[1]) for s in jira_steps) <= POOL_LIMIT, busiest_moment(jira_steps)

        # the site never saw more than C requests at once, never throttled, and the grant survived its rotations
        assert stats["max_in_flight"] <= BUDGET, stats
        assert stats["throttled_429"] == 0, stats
        assert stats["invalid_grant"] == 0 and stats["family_revocations"] == 0, stats
        assert stats["token_refreshes"] >= 2, stats  # the 20 s access token was refreshed while runs used it
        s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
        stored = s3.get_object(Bucket=s3_bucket, Key=TOKEN_KEY)["Body"].read()
        assert seed_refresh_token.encode() not in stored  # the store holds the rotated grant, not the seed

        # every partition equals the simulator's ground truth
        assert assert_issues_and_comments_equal_truth(sim, lake, days) > DAYS  # not a vacuous comparison

        # step logs went to S3 (the run workers' machines are gone when someone reads them)
        logs = s3.list_objects_v2(Bucket=s3_bucket, Prefix="dagster/compute-logs/")
        assert logs.get("KeyCount", 0) > 0

        print(f"\n{DAYS} partitions as {len(runs)} runs, at most {concurrent_runs} at once; Jira steps at once: "
              f"{intervals_overlap_max((s[0], s[1]) for s in jira_steps)} (pool {POOL_LIMIT}; steps waited for a slot "
              f"{waits} times); requests in flight "
              f"at most {stats['max_in_flight']} (budget {BUDGET}); 429s {stats['throttled_429']}; token refreshes "
              f"{stats['token_refreshes']}; invalid_grant {stats['invalid_grant']}; requests {stats['requests_total']}")
        deployment.remove_logs()
