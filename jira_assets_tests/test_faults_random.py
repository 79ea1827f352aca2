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
    expected_incremental,
    failures,
    fast_client_retries,
    jira_env,
    materialize,
    snapshot_keys,
    step_retries,
    stored,
    stored_keys,
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


@pytest.fixture
def s3_blips():
    """15 % of the S3 requests boto3 makes answer 503 SlowDown (what S3 sends under load), decided before
    anything is sent; yields the list of requests that got one."""
    import random

    import botocore.client
    from botocore.awsrequest import AWSResponse

    rng, hit = random.Random(1), []
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")

    class Raw:
        def stream(self, **_):
            yield body

    def before_send(request, **_):
        if rng.random() < 0.15:
            hit.append(request.url)
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, Raw())
        return None

    real_init = botocore.client.BaseClient.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        if self.meta.service_model.service_name == "s3":
            self.meta.events.register("before-send.s3", before_send)

    botocore.client.BaseClient.__init__ = init
    try:
        yield hit
    finally:
        botocore.client.BaseClient.__init__ = real_init


def test_s3_slowdowns_on_the_lake_are_absorbed_and_every_row_lands(tmp_path, monkeypatch, s3_server,
                                                                    s3_bucket, s3_blips):
    from jira_assets.parquet.store import ParquetStore

    fast_client_retries(monkeypatch)
    day = (today() - dt.timedelta(days=1)).isoformat()
    with Simulator(SimulatorConfig(seed=11, issues=60, days=3)) as sim:
        env = jira_env(sim.info(), f"s3://{s3_bucket}/lake", tmp_path, JIRA_S3_ENDPOINT_URL=s3_server,
                       AWS_REGION="us-east-1")
        snapshots = ["projects", "project_versions", "users", "boards", "sprints"]
        with environment(env):
            first = materialize(snapshots, today().isoformat())
            second = materialize(["issues", "issue_comments", "issue_changelogs"], day)
        for result in (first, second):
            assert failures(result) == {} and step_retries(result) == []
        assert len(s3_blips) >= 5, "S3 should have refused some requests"
        store = ParquetStore(f"s3://{s3_bucket}/lake", s3_endpoint_url=s3_server, s3_region="us-east-1")
        for name in snapshots:
            obj = get(name)
            got = stored_keys(stored(store, obj, today().isoformat()), obj)
            assert sorted(got, key=str) == sorted(snapshot_keys(obj, sim.truth.records(name)), key=str), name
        for name in ("issues", "issue_comments", "issue_changelogs"):
            want, _ = expected_incremental(sim, name, dt.date.fromisoformat(day))
            got = stored_keys(stored(store, get(name), day), get(name))
            assert len(got) == len(set(got)) and sorted(got) == sorted(want), name


def test_answers_slower_than_the_read_timeout_are_retried(tmp_path, monkeypatch):
    """`slow` faults longer than the resource's read timeout: the client gives up on each, retries, and the
    asset lands whole with no step retry."""
    from jira_assets.defs.resources import JiraCloudResource, io_manager_from_env

    fast_client_retries(monkeypatch)
    with Simulator(SimulatorConfig(seed=11, issues=5, slow_seconds=1.5)) as sim:
        info = sim.info()
        sim.script(r"/rest/api/2/users/search$", ["slow", "slow"])
        sim.script(r"/rest/api/2/field$", ["slow"])
        env = jira_env(info, tmp_path / "lake", tmp_path)
        with environment(env):
            jira = JiraCloudResource(
                site_url=info["site_url"], client_id=info["client_id"], client_secret=info["client_secret"],
                refresh_token=info["refresh_token"], token_store=str(tmp_path / "tokens.json"),
                api_base_url=info["api_base_url"], auth_base_url=info["auth_base_url"],
                cloud_id=info["cloud_id"], allow_local=True, read_timeout_seconds=0.5)
            result = materialize(["users", "issue_fields"], today().isoformat(),
                                 resources={"jira": jira, "parquet_io_manager": io_manager_from_env()})
        assert failures(result) == {} and step_retries(result) == []
        assert sim.stats()["scripted"] == 3
        for name in ("users", "issue_fields"):
            obj = get(name)
            got = stored_keys(stored(tmp_path / "lake", obj, today().isoformat()), obj)
            assert sorted(got, key=str) == sorted(snapshot_keys(obj, sim.truth.records(name)), key=str)
        [event] = result.asset_materializations_for_node("jira__raw__users")
        assert event.metadata["jira/retries"].value >= 2
