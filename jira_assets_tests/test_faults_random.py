"""R2 — faults: 10 % of Jira requests fail at random and every raw asset still lands exactly Jira's rows.

The simulator injects, per request, one of: 500, 503 with Retry-After, 429 with Retry-After, 429 with
`Retry-After: 0`, the gateway's 429 without Retry-After (only `X-RateLimit-Reset`), a connection reset, a body
cut in half, and a slow answer. Through Dagster (the code location's resources, built from the environment)
every snapshot asset is materialized for today and every incremental asset for two past days; each table must
hold exactly the simulator's ground truth (primary keys and record contents), with no duplicates, and no step
may even need a Dagster retry: the client absorbs every fault.
"""
from __future__ import annotations

import datetime as dt
import time

import pytest

from jira_assets.catalog import get
from jira_assets.simulator import Simulator, SimulatorConfig
from jira_assets.simulator.config import ALL_FAULT_KINDS

from .fault_harness import (
    INCREMENTAL,
    SNAPSHOTS,
    compare_with_truth,
    environment,
    failures,
    fast_client_retries,
    jira_env,
    materialize,
    step_retries,
    stored,
    today,
)

FAULT_RATE = 0.10
# On top of the random 10 %, each kind of fault once on a different kind of endpoint, so every kind is
# exercised whatever the random draw: single pages, PageBeans, token pages, per-issue children, feeds,
# fan-outs, agile.
ONE_OF_EACH = {
    r"/rest/api/2/users/search$": "reset",
    r"/rest/api/2/search/jql$": "truncate",
    r"/rest/api/2/project/search$": "429_zero",
    r"/rest/api/2/issue/\d+/comment$": "429",
    r"/rest/api/2/worklog/updated$": "429_no_retry_after",
    r"/rest/api/2/field$": "503",
    r"/rest/agile/1.0/board/\d+/sprint$": "500",
    r"/rest/api/2/issue/\d+/changelog$": "slow",
}


def run_everything(days: list[dt.date]) -> dict[str, list]:
    """Snapshots for today, incremental assets for each day: like the demo and the schedules."""
    problems: dict[str, list] = {"failures": [], "step_retries": []}
    runs = [(today().isoformat(), SNAPSHOTS), *[(d.isoformat(), INCREMENTAL) for d in days]]
    for partition, objects in runs:
        result = materialize([o.name for o in objects], partition)
        problems["failures"] += [f"{partition} {k}: {v}" for k, v in failures(result).items()]
        problems["step_retries"] += [f"{partition} {k}" for k in step_retries(result)]
    return problems


@pytest.mark.slow
def test_every_raw_asset_lands_exactly_jiras_rows_when_ten_percent_of_requests_fail(tmp_path, monkeypatch,
                                                                                    capsys):
    config = SimulatorConfig(seed=11, issues=300, days=3, users=400, projects=5, fault_rate=FAULT_RATE,
                             fault_seed=3,
                             fault_kinds=ALL_FAULT_KINDS, fault_retry_after=(1, 1), slow_seconds=0.5)
    fast_client_retries(monkeypatch)
    days = [today() - dt.timedelta(days=n) for n in (1, 2)]
    with Simulator(config) as sim:
        for path, kind in ONE_OF_EACH.items():
            sim.script(path, [kind])
        env = jira_env(sim.info(), tmp_path / "lake", tmp_path, JIRA_ISSUE_PAGE_SIZE="5")
        started = time.monotonic()
        with environment(env):
            problems = run_everything(days)
        elapsed = time.monotonic() - started
        stats = sim.stats()
        assert problems == {"failures": [], "step_retries": []}
        rows = compare_with_truth(sim, tmp_path / "lake", today().isoformat(), days)
    faults = stats["faults_by_kind"]
    assert stats["scripted"] == len(ONE_OF_EACH), "every scripted kind of fault was sent"
    api_requests = sum(n for route, n in stats["requests_by_route"].items() if "/rest/" in route)
    issues = sum(n for table, n in rows.items() if table.startswith("issues/"))
    # JIRA_ISSUE_PAGE_SIZE=5 is honoured (it once was overwritten by the paging strategy's 100)
    assert stats["requests_by_route"]["POST /rest/api/2/search/jql"] >= issues / 5
    injected = sum(faults.values())
    assert injected >= 0.07 * api_requests, (injected, api_requests)
    figures = {"api_requests": api_requests, "random_faults": injected, "scripted_faults": len(ONE_OF_EACH),
               "by_kind": dict(sorted(faults.items())),
               "tables": len(rows), "rows": sum(rows.values()), "duplicates": 0, "lost": 0,
               "seconds": round(elapsed, 1)}
    with capsys.disabled():
        print(f"\n[R2 faults] {figures}")


def test_a_fan_out_parent_that_stays_unavailable_fails_the_step_instead_of_leaving_a_hole(tmp_path,
                                                                                         monkeypatch):
    """One project's versions answer 503 beyond every retry: project_versions must not succeed without that
    project's rows (a 404 for one parent is still recorded and skipped, C08); once Jira answers, it lands
    whole."""
    fast_client_retries(monkeypatch)
    with Simulator(SimulatorConfig(seed=11, issues=10)) as sim:
        env = jira_env(sim.info(), tmp_path / "lake", tmp_path)
        broken = sorted(str(p["id"]) for p in sim.truth.records("projects"))[0]
        with environment(env):
            assert failures(materialize(["projects"], today().isoformat())) == {}
            sim.script(rf"/project/{broken}/version$", [(503, {"Retry-After": "0"})] * 100)
            failed = failures(materialize(["project_versions"], today().isoformat()))
            assert "project_versions" in failed and f"/project/{broken}/version" in failed["project_versions"]
            assert "503" in failed["project_versions"]
            sim.clear_disruptions()
            assert failures(materialize(["project_versions"], today().isoformat())) == {}
        versions = stored(tmp_path / "lake", get("project_versions"), today().isoformat())
        assert versions.num_rows == len(sim.truth.records("project_versions"))


@pytest.mark.parametrize("kind", ALL_FAULT_KINDS)
def test_a_fault_at_the_token_endpoint_is_absorbed_by_the_client(kind, tmp_path, monkeypatch):
    """The OAuth refresh meets each kind of fault once: the request is retried with the same refresh token
    (a rotation whose answer was lost is inside Atlassian's reuse leeway), no step fails or is retried."""
    fast_client_retries(monkeypatch)
    with Simulator(SimulatorConfig(seed=11, issues=5, slow_seconds=0.3, fault_retry_after=(1, 1))) as sim:
        sim.script(r"^/oauth/token$", [kind])
        with environment(jira_env(sim.info(), tmp_path / "lake", tmp_path)):
            result = materialize(["projects"], today().isoformat())
        assert failures(result) == {} and step_retries(result) == []
        assert sim.stats()["scripted"] == 1
        assert sim.stats()["invalid_grant"] == 0 and sim.stats()["family_revocations"] == 0
