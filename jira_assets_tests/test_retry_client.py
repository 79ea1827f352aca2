"""Retries over real HTTP against the simulator's scripted answers, on a fake clock (no real waiting)."""
from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest

from jira_assets.jira import (
    ApiToken,
    JiraClient,
    JiraRateLimited,
    JiraServerError,
    RetryPolicy,
    ThrottleGate,
)
from jira_assets.simulator import Simulator, SimulatorConfig

from .test_client_workers import budgeted_requests

API = "/rest/api/2"


class FakeTime:
    """Wall time that only moves when the client sleeps (the simulator's reset headers use wall time)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def basic_client(sim, fake: FakeTime | None = None, pick: str = "high", **policy) -> JiraClient:
    """A site-host client (API token) whose retry policy sleeps on ``fake``."""
    info = sim.info()
    choose = (lambda low, high: high) if pick == "high" else (lambda low, high: low)
    if fake:
        policy.update(sleep=fake.sleep, clock=fake.clock, random=choose)
    retry = RetryPolicy(**policy)
    return JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"]), allow_local=True,
                      retry=retry, throttle=ThrottleGate())


def test_c07_retry_after_is_a_floor_and_zero_still_retries(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, pick="low")  # jitter at its lowest: the floor must still hold
    client.myself()
    simulator.script(r"/field$", [(429, {"Retry-After": "0"}), (429, {"Retry-After": "5"}), (200, {})])
    fields = client.get_json(f"{API}/field")
    assert len(fields) == len(simulator.truth.records("issue_fields"))
    assert fake.sleeps == [pytest.approx(5.0)]  # no wait after "0", at least 5 s after "5"
    assert all(s >= 5.0 for s in fake.sleeps)
    stats = client.stats
    assert stats.retries == 2 and stats.responses_by_status[429] == 2
    assert stats.throttled_seconds >= 5.0


def test_c07_jitter_only_lengthens_a_retry_after_wait(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, pick="high")
    client.myself()
    simulator.script(r"/field$", [(429, {"Retry-After": "5"}), (200, {})])
    client.get_json(f"{API}/field")
    assert fake.sleeps == [pytest.approx(6.5)]


def test_a_429_without_retry_after_waits_for_x_ratelimit_reset(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, pick="low", base_delay=100.0)  # backoff would wait >= 70 s
    client.myself()
    reset_at = int(fake.now) + 3  # whole seconds, as Jira sends it
    reset = datetime.fromtimestamp(reset_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    gateway_429 = {"X-RateLimit-Reset": reset, "X-Failure-Category": "FAILURE CLIENT RATE LIMITED"}
    body = {"code": 429, "message": "Too Many Requests"}
    simulator.script(r"/field$", [(429, gateway_429, body), (200, {})])
    started = fake.now
    client.get_json(f"{API}/field")
    assert fake.sleeps == [pytest.approx(reset_at - started)]  # exactly until the reset, no backoff


def test_a_429_without_any_hint_backs_off_exponentially(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, pick="high")
    client.myself()
    simulator.script(r"/field$", [(429, {}), (429, {}), (200, {})])
    client.get_json(f"{API}/field")
    assert fake.sleeps == [pytest.approx(2.6), pytest.approx(5.2)]
    assert client.stats.throttled_seconds == pytest.approx(7.8)


def test_a_server_error_is_retried_with_backoff_and_then_raised_with_its_message(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, max_attempts=3)
    client.myself()
    simulator.script(r"/field$", [(500, {})] * 3)
    with pytest.raises(JiraServerError) as info:
        client.get_json(f"{API}/field")
    assert info.value.status == 500 and "Scripted 500" in str(info.value)
    assert len(fake.sleeps) == 2 and simulator.stats()["scripted"] == 3


def test_503_honours_retry_after(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, pick="low")
    client.myself()
    simulator.script(r"/field$", [(503, {"Retry-After": "3"}), (200, {})])
    client.get_json(f"{API}/field")
    assert fake.sleeps == [pytest.approx(3.0)]


def test_a_quota_wait_beyond_the_limit_fails_fast_and_says_so(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake, max_retry_after=600)
    client.myself()
    quota = {"Retry-After": "1847", "RateLimit-Reason": "jira-quota-global-based"}
    simulator.script(r"/field$", [(429, quota)])
    with pytest.raises(JiraRateLimited, match="1847|wait"):
        client.get_json(f"{API}/field")
    assert fake.sleeps == []


def test_connection_resets_and_truncated_bodies_are_retried(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake)
    client.myself()
    simulator.script(r"/field$", ["reset", "truncate", (200, {})])
    fields = client.get_json(f"{API}/field")
    assert len(fields) == len(simulator.truth.records("issue_fields"))
    assert client.stats.retries == 2 and len(fake.sleeps) == 2


def test_read_only_posts_are_retried_but_writes_are_not(simulator):
    fake = FakeTime()
    client = basic_client(simulator, fake)
    client.myself()
    simulator.script(r"/search/jql$", [(503, {"Retry-After": "1"}), (200, {})], method="POST")
    page = client.post_json(f"{API}/search/jql", {"jql": "created >= -3650d order by id", "maxResults": 5})
    assert len(page["issues"]) == 5

    simulator.script(r"/issue$", [(503, {"Retry-After": "1"}), (200, {})], method="POST")
    with pytest.raises(JiraServerError):
        client.post_json(f"{API}/issue", {"fields": {"summary": "not twice"}})
    assert simulator.stats()["scripted"] == 3  # the write was sent once


def test_a_429_makes_every_request_sharing_the_gate_wait(simulator):
    """Thread A gets a 429; thread B, which never got one, must wait out A's Retry-After too."""
    now = [time.time()]
    release = threading.Event()
    sleeps: list[tuple[str, float]] = []

    def blocking_sleep(seconds: float) -> None:
        sleeps.append((threading.current_thread().name, seconds))
        release.wait(10)

    info = simulator.info()
    retry = RetryPolicy(sleep=blocking_sleep, clock=lambda: now[0], random=lambda low, high: low)
    client = JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"]), allow_local=True,
                        retry=retry, throttle=ThrottleGate())
    client.myself()
    simulator.script(r"/field$", [(429, {"Retry-After": "5"}), (200, {})])
    a = threading.Thread(target=client.get_json, args=(f"{API}/field",), name="A")
    b = threading.Thread(target=client.get_json, args=(f"{API}/serverInfo",), name="B")
    a.start()
    _wait_for(lambda: len(sleeps) == 1)
    b.start()
    _wait_for(lambda: len(sleeps) == 2)
    now[0] += 5.0
    release.set()
    a.join(10), b.join(10)
    assert sorted(name for name, _ in sleeps) == ["A", "B"]
    assert all(seconds == pytest.approx(5.0) for _, seconds in sleeps)
    assert simulator.stats()["responses_by_status"].get("429") == 1  # only A was throttled by Jira


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_requests_in_flight_never_exceed_the_per_process_limit():
    with Simulator(SimulatorConfig(seed=7, issues=20, latency_ms=40)) as sim:
        info = sim.info()
        client = JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"]), allow_local=True,
                            max_in_flight=2)
        client.myself()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: client.get_json(f"{API}/serverInfo"), range(16)))
        assert sim.stats()["max_in_flight"] == 2


@pytest.mark.slow
def test_a_request_budget_caps_requests_in_flight_across_processes(tmp_path):
    with Simulator(SimulatorConfig(seed=7, issues=20, latency_ms=40)) as sim:
        info = sim.info()
        args = (info["site_url"], info["email"], info["api_token"], str(tmp_path / "budget"), 12)
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            done = pool.starmap(budgeted_requests, [args] * 3)
        assert done == [12, 12, 12]
        assert sim.stats()["max_in_flight"] <= 2  # 3 processes x 4 threads, 2 slots machine-wide
