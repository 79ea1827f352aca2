"""Rotating refresh tokens shared by many processes (C12): the grant survives strict rotation and forced
expiry."""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jira_assets.jira import FileTokenStore, JiraAuthError, JiraClient, OAuth3LO
from jira_assets.simulator import Simulator, SimulatorConfig

from .test_client_workers import hammer

PROCESSES = 16
SECONDS = 8.0
TTL = 2  # access tokens live 2 s: every process meets several expiries
MARGIN = 0.5  # refresh when 0.5-0.75 s are left (jittered per process)


def strict_simulator() -> Simulator:
    """Rotation without leeway: a rotated refresh token is dead at once and its reuse revokes the grant."""
    return Simulator(SimulatorConfig(seed=7, issues=10, access_token_ttl=TTL, refresh_leeway=0))


@contextlib.contextmanager
def children_skip_the_parents_main():
    """A spawned child first re-runs the parent's ``__main__`` (pytest's launcher here, which imports pytest:
    half of a child's start-up). The workers are importable on their own and need none of it."""
    main = sys.modules["__main__"]
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.update(saved)


def run_processes(info: dict, spec: dict) -> list[dict]:
    context = multiprocessing.get_context("spawn")  # what Dagster's multiprocess executor uses
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=hammer, args=(barrier, results, spec, info, SECONDS, 0.1, MARGIN))
                 for _ in range(PROCESSES)]
    with children_skip_the_parents_main():
        for process in processes:
            process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(30)
    return reports


def assert_grant_survived(sim: Simulator, reports: list[dict]) -> dict:
    errors = [r["error"] for r in reports if r["error"]]
    assert not errors, errors[0]
    stats = sim.stats()
    # Strict rotation: spending a refresh token twice would have shown up here and revoked the whole grant.
    assert stats["invalid_grant"] == 0
    assert stats["family_revocations"] == 0
    assert all(r["expiries"] >= 3 for r in reports), reports
    refreshes = sum(r["refreshes"] for r in reports)
    acquisitions = refreshes + sum(r["adoptions"] for r in reports)
    assert stats["token_refreshes"] == refreshes
    # Single flight: most expiries were met by adopting a token another process had just stored.
    assert refreshes * 4 <= acquisitions, (refreshes, acquisitions)
    return {"processes": len(reports), "requests": sum(r["requests"] for r in reports),
            "refreshes": refreshes, "adoptions": acquisitions - refreshes,
            "401s": sum(r["unauthorized"] for r in reports),
            "min_expiries_per_process": min(r["expiries"] for r in reports),
            "seconds": round(max(r["seconds"] for r in reports), 1)}


@pytest.mark.slow
def test_sixteen_processes_share_one_token_file_without_losing_the_grant(tmp_path, capsys):
    with strict_simulator() as sim:
        reports = run_processes(sim.info(), {"kind": "file", "path": str(tmp_path / "tokens.json")})
        figures = assert_grant_survived(sim, reports)
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    with capsys.disabled():
        print(f"\n[R1 file store] {figures}")


@pytest.fixture
def quiet_moto():
    """moto's server logs every S3 request through werkzeug; sixteen processes polling a lease make that
    noisy."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    yield
    werkzeug.setLevel(level)


@pytest.mark.slow
def test_sixteen_processes_share_one_s3_token_object_without_losing_the_grant(
    s3_server, s3_bucket, quiet_moto, capsys
):
    spec = {"kind": "s3", "endpoint": s3_server, "bucket": s3_bucket, "key": "jira/tokens.json"}
    with strict_simulator() as sim:
        reports = run_processes(sim.info(), spec)
        figures = assert_grant_survived(sim, reports)
    with capsys.disabled():
        print(f"\n[R1 S3 store] {figures}")


def oauth(sim: Simulator, store, refresh_token: str | None = None) -> JiraClient:
    info = sim.info()
    auth = OAuth3LO(info["client_id"], info["client_secret"], store, auth_base_url=info["auth_base_url"],
                    initial_refresh_token=refresh_token or info["refresh_token"])
    return JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True)


def test_a_restarted_process_resumes_from_the_stored_refresh_token(tmp_path):
    store = FileTokenStore(tmp_path / "tokens.json")
    with Simulator(SimulatorConfig(seed=7, issues=10, refresh_leeway=0)) as sim:
        seed = sim.info()["refresh_token"]
        oauth(sim, store).myself()  # spends the seed: the store now holds its successor
        rotated = store.read().refresh_token
        assert rotated != seed

        sim.clock.advance(3601)  # the stored access token has expired by the time the process restarts
        restarted = oauth(sim, FileTokenStore(tmp_path / "tokens.json"), refresh_token=seed)
        assert restarted.myself()["accountId"]
        assert restarted.auth.refreshes == 1  # it refreshed with the stored token, not the stale seed
        assert sim.stats()["invalid_grant"] == 0 and sim.stats()["family_revocations"] == 0


def test_an_access_token_revoked_early_is_refreshed_once_and_the_request_retried(tmp_path):
    with Simulator(SimulatorConfig(seed=7, issues=10, refresh_leeway=0)) as sim:
        mine = oauth(sim, FileTokenStore(tmp_path / "tokens.json"))
        mine.myself()
        # Another process rotates the grant: with no leeway our access token dies at once (companion
        # revocation).
        info = sim.info()
        other = OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp_path / "tokens.json"),
                         auth_base_url=info["auth_base_url"])
        other.recover_from_unauthorized(mine.auth.authorization())
        fields = mine.get_json("/rest/api/2/field")
        assert fields and mine.stats.responses_by_status[401] == 1
        # It took the other's new token and spent nothing.
        assert mine.auth.refreshes == 1 and mine.auth.adoptions == 1
        assert sim.stats()["invalid_grant"] == 0


def test_revoked_consent_says_to_log_in_again(tmp_path):
    with Simulator(SimulatorConfig(seed=7, issues=10, refresh_leeway=0)) as sim:
        seed = sim.info()["refresh_token"]
        good = oauth(sim, FileTokenStore(tmp_path / "good.json"))
        good.myself()
        # A misconfigured second deployment reuses the spent seed: Atlassian treats it as theft and revokes
        # the grant.
        with pytest.raises(JiraAuthError):
            oauth(sim, FileTokenStore(tmp_path / "stale.json"), refresh_token=seed).myself()
        sim.clock.advance(3601)
        with pytest.raises(JiraAuthError) as info:
            good.get_json("/rest/api/2/field")
    message = str(info.value)
    assert "run `jira-assets auth login` again" in message
    assert "invalid_grant" in message and "revoked" in message


def test_threads_of_one_process_refresh_once_per_expiry(tmp_path):
    """Children pages are fetched from a thread pool: an expiry must cost one refresh, not one per thread."""
    with strict_simulator() as sim:
        client = oauth(sim, FileTokenStore(tmp_path / "tokens.json"))
        client.auth.refresh_margin_seconds = MARGIN
        deadline = time.time() + 3.5

        def fetch_until_deadline(_: int) -> int:
            done = 0
            while time.time() < deadline:
                client.get_json("/rest/api/2/serverInfo")
                done += 1
            return done

        with ThreadPoolExecutor(8) as pool:
            requests_made = sum(pool.map(fetch_until_deadline, range(8)))
        stats = sim.stats()
    assert requests_made > 50
    assert stats["invalid_grant"] == 0 and stats["family_revocations"] == 0
    assert 2 <= client.auth.refreshes <= 4  # 3.5 s of 1.5 s tokens, whatever the number of threads
    assert stats["token_refreshes"] == client.auth.refreshes


def test_a_refresh_that_could_not_be_saved_is_saved_next_time_not_spent_again(tmp_path, monkeypatch):
    store = FileTokenStore(tmp_path / "tokens.json")
    write = store.write
    failures = iter([OSError("No space left on device")])

    def write_failing_once(tokens):
        for error in failures:
            raise error
        write(tokens)

    monkeypatch.setattr(store, "write", write_failing_once)
    with Simulator(SimulatorConfig(seed=7, issues=10, refresh_leeway=0)) as sim:
        client = oauth(sim, store)
        with pytest.raises(JiraAuthError, match="could not be saved"):
            client.myself()
        assert client.myself()["accountId"]  # the kept token was written first, then used
        stats = sim.stats()
    assert stats["token_refreshes"] == 1 and stats["invalid_grant"] == 0
    assert store.read().refresh_token != sim.info()["refresh_token"]
