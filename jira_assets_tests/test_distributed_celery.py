"""The same selection with the Celery executor (deploy/celery_location.py) on a real Redis broker and two worker
processes (deploy/celery_worker.yaml): the steps of the backfill's runs spread over both workers, while the pool,
the per-process limit and this machine's request-budget slots keep every request within one budget.

Here the three layers are all on: pool P x per-process M <= C - 1 (across machines), and the lock-file budget
(JIRA_REQUEST_BUDGET_DIR, C slots shared by every process of this machine). The throttle board in the same
directory would make every worker back off on a 429 (test_distributed_throttle.py).
"""
from __future__ import annotations

import datetime as dt
import os
from collections import Counter

import pytest

from jira_assets_tests.distributed_harness import (
    Deployment,
    assert_issues_and_comments_equal_truth,
    celery_workers_by_step,
    busiest_moment,
    intervals_overlap_max,
    jira_deployment_env,
    pool_waits,
    production_instance_yaml,
    run_days,
    start_celery_worker,
    step_intervals,
    utc_days,
)
from jira_assets_tests.distributed_services import ServiceUnavailable, postgres_server, redis_server

pytestmark = pytest.mark.slow

BUDGET = 5  # C
POOL_LIMIT = 2  # P
MAX_IN_FLIGHT = 2  # M
DAYS = int(os.environ.get("JIRA_ASSETS_CELERY_TEST_DAYS", "4"))
TIMEOUT = float(os.environ.get("JIRA_ASSETS_TEST_TIMEOUT", "600"))
ASSETS = (("jira", "raw", "issues"), ("jira", "raw", "issue_comments"))
WORKERS = ("worker-a", "worker-b")


@pytest.fixture(scope="module")
def services():
    try:
        with postgres_server() as pg, redis_server() as redis_url:
            yield pg, redis_url
    except ServiceUnavailable as exc:
        pytest.skip(f"PostgreSQL or Redis cannot be installed or started here: {exc}")


def test_steps_of_a_backfill_spread_over_two_celery_workers_within_one_request_budget(
        services, s3_server, s3_bucket, tmp_path):
    from jira_assets.simulator import Simulator, SimulatorConfig

    pg, redis_url = services
    assert POOL_LIMIT * MAX_IN_FLIGHT <= BUDGET - 1
    days = utc_days(DAYS, dt.datetime.now(dt.timezone.utc).date())
    config = SimulatorConfig(seed=31, issues=30 * (DAYS + 2), days=DAYS + 2, latency_ms=150, max_in_flight=BUDGET,
                             access_token_ttl=20)
    lake = tmp_path / "lake"
    with Simulator(config) as sim:
        env = jira_deployment_env(sim, lake, s3_bucket, s3_server, pg, MAX_IN_FLIGHT)
        env.update({
            "JIRA_WINDOW_SPLITS": str(MAX_IN_FLIGHT),
            "JIRA_DAYS_PER_RUN": "1",  # a run per day: many steps for the two workers to share
            "DAGSTER_CELERY_BROKER_URL": f"{redis_url}/0",
            "DAGSTER_CELERY_BACKEND_URL": f"{redis_url}/1",
            "JIRA_REQUEST_BUDGET_DIR": str(tmp_path / "request-budget"),
            "JIRA_REQUEST_BUDGET": str(BUDGET),
        })
        instance_yaml = production_instance_yaml(max_concurrent_runs=DAYS, pool_default_limit=POOL_LIMIT)
        deployment = Deployment(tmp_path, env, instance_yaml, {"relative_path": "deploy/celery_location.py"})
        try:
            for name in WORKERS:
                start_celery_worker(deployment, name, concurrency=1)
            deployment.set_pool_limit("jira_api", POOL_LIMIT)  # as deploy/README.md says
            backfill_id = deployment.launch_backfill(ASSETS, days, title=f"{DAYS} days on Celery")
            deployment.start_daemon()
            backfill = deployment.wait_for_backfill(backfill_id, timeout=TIMEOUT)
            runs = deployment.runs(backfill_id)
            steps = step_intervals(deployment, runs)
            workers = celery_workers_by_step(deployment, runs)
            waits = pool_waits(deployment, runs)
            stats = sim.stats()
        finally:
            deployment.stop(keep_logs=True)  # removed at the end if every assertion holds

        assert backfill.status.value == "COMPLETED_SUCCESS", deployment.run_statuses(backfill_id)
        assert sorted(day for r in runs for day in run_days(r.dagster_run)) == days

        # every step ran in a Celery worker, and both workers took steps, Jira steps included
        assert {key for _, key in workers} >= {"jira__raw__issues", "jira__raw__issue_comments"}
        assert len(workers) == len(steps), "a step ran outside the Celery workers"
        by_worker = Counter(name.split("@")[0] for name in workers.values())
        assert set(by_worker) == set(WORKERS), by_worker
        jira_by_worker = Counter(name.split("@")[0] for (_, key), name in workers.items()
                                 if key in ("jira__raw__issues", "jira__raw__issue_comments"))
        assert set(jira_by_worker) == set(WORKERS), jira_by_worker
        assert len({s[4] for s in steps}) >= 2  # step processes: the workers' pool processes, not the run workers

        # the pool held Jira steps to P over all runs and workers; the site saw at most C requests, no 429
        jira_steps = [s for s in steps if s[2] in ("jira__raw__issues", "jira__raw__issue_comments", "issues_checks")]
        assert intervals_overlap_max((s[0], s[1]) for s in jira_steps) <= POOL_LIMIT, busiest_moment(jira_steps)
        assert stats["max_in_flight"] <= BUDGET, stats
        assert stats["throttled_429"] == 0, stats
        assert stats["invalid_grant"] == 0 and stats["family_revocations"] == 0, stats
        assert stats["token_refreshes"] >= 1, stats
        assert list((tmp_path / "request-budget").glob("slot-*.lock")), "the machine's lock-file budget was not used"

        assert assert_issues_and_comments_equal_truth(sim, lake, days) > 0

        print(f"\n{DAYS} partitions as {len(runs)} runs; {len(steps)} steps over Celery workers {dict(by_worker)} "
              f"(Jira steps {dict(jira_by_worker)}); Jira steps at once "
              f"{intervals_overlap_max((s[0], s[1]) for s in jira_steps)} (pool {POOL_LIMIT}; steps waited for a slot "
              f"{waits} times); requests in flight at "
              f"most {stats['max_in_flight']} (budget {BUDGET}); 429s {stats['throttled_429']}; token refreshes "
              f"{stats['token_refreshes']}; invalid_grant {stats['invalid_grant']}")
        deployment.remove_logs()
