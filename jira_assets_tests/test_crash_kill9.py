"""R3 — crashes: a run killed with SIGKILL at 20 random moments leaves nothing corrupt, and re-running
converges to exactly the data of a run that was never interrupted.

A run here is what a Dagster run worker does: today's snapshots and today's partition of issues with their
children and worklogs, through `dg.materialize`, against the simulator over HTTP (each request 15 ms late, so
the moments spread over fetching), with access tokens that live 2 s (refreshed about every second, each
refresh slowed to 0.3 s) and Parquet streamed into a local folder (10 kills) or moto's S3 (10 kills), half of
them while the lake is empty and half while it holds a complete run whose partitions are being replaced. In
each group of five, one kill waits for a token refresh, one for a request in flight and one for an open
partition write; two strike wherever their random moment falls. After every kill: every file at a final path opens as complete Parquet, every file complete before is still there,
and the token store is valid JSON, mode 0600, whose refresh token the simulator still accepts. Then one
uninterrupted run per lake, whose tables must equal the never-interrupted baseline row for row, with no
staging leftovers or orphaned multipart uploads.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from jira_assets.parquet.store import ParquetStore
from jira_assets.simulator import Simulator, SimulatorConfig

from .fault_harness import (
    corrupt_files,
    jira_env,
    lake_tables,
    s3_final_keys,
    today,
    visible_parquet_paths,
)

ROOT = Path(__file__).resolve().parents[1]
KILLS_PER_LAKE = 10
SEED = 20
SNAPSHOTS = ["projects", "project_versions", "users"]
INCREMENTAL = ["issues", "issue_comments", "issue_changelogs", "issue_worklogs"]


def steps() -> list[dict]:
    """One run: today's snapshots and today's partition of the incremental assets (the hourly refresh)."""
    return [{"names": SNAPSHOTS + INCREMENTAL, "partition": today().isoformat()}]


class Zygote:
    """fault_zygote.py: imports once, forks one run per `start`."""

    def __init__(self, env: dict, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jira_assets_tests.fault_zygote"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "ab"),
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
        assert self.process.stdout.readline().strip() == "ready", log.read_text()[-3000:]

    def start(self, spec: dict) -> int:
        self.process.stdin.write("run " + json.dumps(spec) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        assert answer[:1] == ["pid"], answer
        return int(answer[1])

    def wait(self) -> int:
        self.process.stdin.write("wait\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        assert answer[:1] == ["exit"], answer
        return int(answer[1])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()


def accepted(sim: Simulator, refresh_token: str) -> str:
    """'current' (the grant's newest refresh token), 'leeway' (rotated, still inside the reuse window),
    or why the simulator would refuse it. Reads the auth server's state without spending the token."""
    auth = sim.site.auth
    token = auth._refresh.get(refresh_token)
    if token is None:
        return "unknown"
    if token.grant.revoked:
        return "revoked"
    if token.rotated_ms is None:
        return "current"
    if sim.clock.now_ms() - token.rotated_ms < sim.config.refresh_leeway * 1000:
        return "leeway"
    return "rotated beyond the leeway"


def check_token_store(sim: Simulator, path: Path) -> str:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())  # valid JSON, or the test fails here
    verdict = accepted(sim, stored["refresh_token"])
    assert verdict in ("current", "leeway"), verdict
    return verdict


class Lake:
    """Where a series writes: a local folder or a prefix on moto's S3."""

    def __init__(self, tmp: Path, s3: tuple[str, str] | None) -> None:
        self.s3 = s3
        if s3 is None:
            self.base = str(tmp / "lake")
            self.env = {"JIRA_LAKE": self.base}
        else:
            endpoint, bucket = s3
            self.base = f"s3://{bucket}/lake"
            self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            self.env = {"JIRA_LAKE": self.base, "JIRA_S3_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"}

    def corrupt(self) -> tuple[set[str], list[str]]:
        """(files at final paths, those that do not open as complete Parquet)."""
        if self.s3 is None:
            files = visible_parquet_paths(Path(self.base))
            return {str(f) for f in files}, corrupt_files(files)
        bucket = self.s3[1]
        bad = []
        keys = s3_final_keys(self.client, bucket, "lake/")
        for key in keys:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                pq.read_table(io.BytesIO(body))
            except Exception as exc:  # noqa: BLE001
                bad.append(f"s3://{bucket}/{key}: {exc}")
        return set(keys), bad

    def leftovers(self) -> list[str]:
        """Staging folders or unfinished multipart uploads (invisible, but garbage)."""
        if self.s3 is None:
            return [str(p) for p in Path(self.base).rglob(".*staging*")]
        uploads = self.client.list_multipart_uploads(Bucket=self.s3[1]).get("Uploads", [])
        return [u["Key"] for u in uploads]

    def tables(self) -> dict:
        endpoint = self.s3[0] if self.s3 else None
        return lake_tables(ParquetStore(self.base, s3_endpoint_url=endpoint, s3_region="us-east-1"))


@pytest.fixture
def crash_site():
    # a frozen clock keeps today's data fixed (the worklog feed hides its last minute); the client still sees
    # its access tokens expire every 2 s by its own clock, and refreshes
    config = SimulatorConfig(seed=5, issues=150, days=2, latency_ms=15, access_token_ttl=2, slow_seconds=0.3,
                             frozen_clock=True)
    with Simulator(config) as sim:
        sim.script(r"^/oauth/token$", ["slow"] * 100_000)  # every refresh takes 0.3 s: kills land inside some
        yield sim


def run_series(sim, zygote: Zygote, lake: Lake, state: Path, env: dict, rng: random.Random, longest: float,
               kills: int, seen: Counter) -> None:
    """Kill runs at random moments until `kills` of them died mid-run (a run that finishes first is counted
    and another moment drawn); check the lake and the token store after each kill: every file at a final
    path opens, and every file that was complete before the series is still there. The first three kills of
    a series wait, after their moment, for a token refresh to be under way (the window where a rotated
    refresh token is on the wire and not yet stored), for a request to Jira to be in flight, and for a
    partition write (staging folder or S3 multipart upload) to be open; the others strike where they fall."""
    complete_before, _ = lake.corrupt()
    first = seen["killed"]
    waits = [lambda: (state / "refreshing").exists(), lambda: sim.stats()["in_flight"] > 0,
             lambda: (state / "writing").exists()]
    while seen["killed"] < first + kills and seen["finished before the kill"] < KILLS_PER_LAKE:
        moment = rng.uniform(0.2, longest)
        index = seen["killed"] - first
        wait_for = waits[index] if index < len(waits) else None
        for mark in ("refreshing", "writing", "result.json"):
            (state / mark).unlink(missing_ok=True)
        pid = zygote.start({"env": {**env, **lake.env}, "steps": steps(), "state_dir": str(state),
                            "log": str(zygote.log)})
        time.sleep(moment / 3 if wait_for else moment)
        deadline = time.monotonic() + 10
        while wait_for is not None and not wait_for() and time.monotonic() < deadline:
            time.sleep(0.002)
        in_flight = sim.stats()["in_flight"]
        refreshing, writing = (state / "refreshing").exists(), (state / "writing").exists()
        os.kill(pid, signal.SIGKILL)  # our child: not reaped before `wait`, so the pid is still its own
        if zygote.wait() != -signal.SIGKILL:  # it finished before the moment came: not a kill
            seen["finished before the kill"] += 1
            continue
        seen["killed"] += 1
        seen["during fetch"] += in_flight > 0
        seen["during token refresh"] += refreshing
        seen["during Parquet write" if lake.s3 is None else "during S3 upload"] += writing
        files, bad = lake.corrupt()
        assert not bad, f"a kill at {moment:.2f} s left corrupt files: {bad}"
        assert complete_before <= files, f"a kill at {moment:.2f} s lost {sorted(complete_before - files)}"
        seen["kills while replacing complete partitions"] += bool(complete_before)
        deadline = time.monotonic() + 5  # requests of the dead run finish on the server (a refresh rotates)
        while sim.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["token store: " + check_token_store(sim, Path(env["JIRA_TOKEN_STORE"]))] += 1


def converge(zygote: Zygote, lake: Lake, state: Path, env: dict) -> float:
    (state / "result.json").unlink(missing_ok=True)
    zygote.start({"env": {**env, **lake.env}, "steps": steps(), "state_dir": str(state),
                  "log": str(zygote.log)})
    code = zygote.wait()
    result = json.loads((state / "result.json").read_text())
    assert code == 0 and not result["failures"], (code, result, zygote.log.read_text()[-3000:])
    return result["seconds"]


@pytest.mark.slow
def test_runs_killed_at_20_random_moments_leave_nothing_corrupt_and_converge(crash_site, tmp_path, s3_server,
                                                                            s3_bucket, capsys):
    sim = crash_site
    env = {**jira_env(sim.info(), tmp_path / "unused", tmp_path, JIRA_ISSUE_PAGE_SIZE="10"),
           "JIRA_TOKEN_STORE": str(tmp_path / "tokens.json"),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    state = tmp_path / "state"
    state.mkdir()
    zygote = Zygote(env, tmp_path / "runs.log")
    try:
        baseline_lake = Lake(tmp_path / "baseline", None)
        duration = converge(zygote, baseline_lake, state, env)  # never interrupted; also times a run
        baseline = baseline_lake.tables()
        rng = random.Random(SEED)
        local, s3 = Lake(tmp_path, None), Lake(tmp_path, (s3_server, s3_bucket))
        figures = {"run_seconds": round(duration, 1)}
        for lake in (local, s3):
            seen = Counter()
            # half the kills while the lake is empty (first writes), half while complete partitions are
            # being replaced (the previous version must stay whole), then a run that must converge
            run_series(sim, zygote, lake, state, env, rng, duration * 0.9, KILLS_PER_LAKE // 2, seen)
            converge(zygote, lake, state, env)
            run_series(sim, zygote, lake, state, env, rng, duration * 0.9, KILLS_PER_LAKE // 2, seen)
            converge(zygote, lake, state, env)
            assert not lake.corrupt()[1]
            assert lake.leftovers() == [], "the re-run cleans up what the killed runs left"
            tables = lake.tables()
            assert tables.keys() == baseline.keys()
            differing = [name for name in baseline if tables[name] != baseline[name]]
            assert not differing, f"tables differ from the uninterrupted run: {differing}"
            figures["local" if lake.s3 is None else "s3"] = dict(seen)
        check_token_store(sim, Path(env["JIRA_TOKEN_STORE"]))
        stats = sim.stats()
        assert stats["invalid_grant"] == 0 and stats["family_revocations"] == 0
        figures.update(tables=len(baseline), rows=sum(len(rows) for rows in baseline.values()),
                       token_refreshes=stats["token_refreshes"], invalid_grant=0)
    finally:
        zygote.close()
    assert figures["local"]["killed"] + figures["s3"]["killed"] == 2 * KILLS_PER_LAKE, figures
    for moment in ("during fetch", "during token refresh", "during Parquet write", "during S3 upload"):
        assert figures["local"].get(moment, 0) + figures["s3"].get(moment, 0) >= 1, (moment, figures)
    with capsys.disabled():
        print(f"\n[R3 crashes] {figures}")
