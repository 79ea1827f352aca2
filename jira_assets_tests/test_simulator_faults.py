"""Rate limits, seeded faults, scripted answers and lying pages (FACTS.md §2; cases C07, C13)."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig


def session(sim: Simulator) -> tuple[str, requests.Session]:
    info = sim.info()
    s = requests.Session()
    s.auth = (info["email"], info["api_token"])
    return info["site_url"], s


def test_c07_scripted_answers_come_in_order_then_the_real_response(simulator):
    base, s = session(simulator)
    simulator.script(r"/rest/api/2/field$", [(429, {"Retry-After": "0"}), (429, {"Retry-After": "5"})])
    first, second, third = (s.get(base + "/rest/api/2/field", timeout=10) for _ in range(3))
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "5")
    assert third.status_code == 200 and isinstance(third.json(), list)
    assert simulator.stats()["scripted"] == 2 and simulator.stats()["throttled_429"] == 2


def test_scripts_can_reset_or_truncate_and_only_match_their_path(simulator):
    base, s = session(simulator)
    simulator.script(r"/myself", ["reset", "truncate"])
    assert s.get(base + "/rest/api/2/serverInfo", timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        s.get(base + "/rest/api/2/myself", timeout=10)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        s.get(base + "/rest/api/2/myself", timeout=10)
    assert s.get(base + "/rest/api/2/myself", timeout=10).status_code == 200


def test_the_gateway_style_429_has_no_retry_after_only_a_reset_time(simulator):
    base, s = session(simulator)
    simulator.script(r"/field", ["429_no_retry_after", "503"])
    gateway = s.get(base + "/rest/api/2/field", timeout=10)
    assert gateway.status_code == 429 and "Retry-After" not in gateway.headers
    assert gateway.headers["X-Failure-Category"] == "FAILURE CLIENT RATE LIMITED"
    assert gateway.headers["X-RateLimit-Reset"].endswith("Z")
    unavailable = s.get(base + "/rest/api/2/field", timeout=10)
    assert unavailable.status_code == 503 and int(unavailable.headers["Retry-After"]) >= 1


def test_seeded_random_faults_are_reproducible_and_counted():
    def run() -> tuple[list[int], dict]:
        config = SimulatorConfig(seed=1, issues=5, fault_rate=0.5, fault_seed=42, fault_kinds=("500", "503", "429_zero"))
        with Simulator(config) as sim:
            base, s = session(sim)
            statuses = [s.get(base + "/rest/api/2/status", timeout=10).status_code for _ in range(30)]
            return statuses, sim.stats()

    statuses, stats = run()
    assert statuses == run()[0]
    assert {500, 503, 429, 200} == set(statuses)
    assert sum(stats["faults_by_kind"].values()) == sum(1 for s in statuses if s != 200)
    failure = [s for s in statuses if s == 500]
    assert len(failure) == stats["faults_by_kind"]["500"]


def test_the_token_bucket_throttles_per_path_with_jira_headers():
    with Simulator(SimulatorConfig(seed=1, issues=5, rate_limit_rps=5)) as sim:
        base, s = session(sim)
        answers = [s.get(base + "/rest/api/2/status", timeout=10) for _ in range(15)]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled and len(throttled) < 15
        headers = throttled[0].headers
        assert int(headers["Retry-After"]) >= 1 and headers["RateLimit-Reason"] == "jira-burst-based"
        assert headers["X-RateLimit-Limit"] == "5" and headers["X-RateLimit-Remaining"] == "0"
        assert "X-RateLimit-Reset" in headers
        assert s.get(base + "/rest/api/2/statuscategory", timeout=10).status_code == 200  # another path's bucket
        assert sim.stats()["throttled_429"] == len(throttled)
        assert sim.stats()["requests_by_route"]["GET /rest/api/2/status"] == 15


def test_too_many_requests_in_flight_get_a_burst_429_and_the_peak_is_recorded():
    with Simulator(SimulatorConfig(seed=1, issues=5, max_in_flight=2, latency_ms=300)) as sim:
        base, _ = session(sim)
        info = sim.info()
        statuses: list[int] = []

        def call() -> None:
            answer = requests.get(base + "/rest/api/2/status", auth=(info["email"], info["api_token"]), timeout=10)
            statuses.append(answer.status_code)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(429) >= 1 and statuses.count(200) >= 2
        assert sim.stats()["max_in_flight"] >= 3


def test_latency_is_added_to_every_request():
    with Simulator(SimulatorConfig(seed=1, issues=5, latency_ms=150)) as sim:
        base, s = session(sim)
        began = time.monotonic()
        s.get(base + "/rest/api/2/status", timeout=10)
        assert time.monotonic() - began >= 0.15


def test_c13_lying_page_beans_report_a_total_they_do_not_have(simulator):
    base, s = session(simulator)
    simulator.lie(r"/project/search", inflate_total=250)
    first = s.get(base + "/rest/api/2/project/search", params={"maxResults": 100}, timeout=10).json()
    assert first["total"] == 253 and len(first["values"]) == 3 and first["isLast"] is False
    beyond = s.get(base + "/rest/api/2/project/search", params={"startAt": 3}, timeout=10).json()
    assert beyond["values"] == [] and beyond["isLast"] is False


def test_c13_pages_can_repeat_records_of_the_previous_page(simulator):
    base, s = session(simulator)
    simulator.lie(r"/search/jql", repeat_previous=2)
    jql = {"jql": "created >= 0 ORDER BY id ASC", "maxResults": 10}
    first = s.get(base + "/rest/api/2/search/jql", params=jql, timeout=10).json()
    second = s.get(base + "/rest/api/2/search/jql", params={**jql, "nextPageToken": first["nextPageToken"]}, timeout=10).json()
    assert [i["id"] for i in second["issues"][:2]] == [i["id"] for i in first["issues"][-2:]]
    simulator.clear_disruptions()
    simulator.lie(r"/search/jql", repeat_token=True)
    third = s.get(base + "/rest/api/2/search/jql", params={**jql, "nextPageToken": first["nextPageToken"]}, timeout=10).json()
    assert third["nextPageToken"] == first["nextPageToken"]


def test_token_endpoint_is_not_hit_by_random_faults():
    with Simulator(SimulatorConfig(seed=1, issues=5, fault_rate=1.0, fault_kinds=("500",))) as sim:
        info = sim.info()
        token = requests.post(info["auth_base_url"] + "/oauth/token", json={
            "grant_type": "refresh_token", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"]}, timeout=10)
        assert token.status_code == 200
        answer = requests.get(info["site_url"] + "/rest/api/2/status", auth=(info["email"], info["api_token"]), timeout=10)
        assert answer.status_code == 500 and answer.json()["errorMessages"]


def test_counters_are_also_served_over_http_for_other_processes(simulator):
    base, s = session(simulator)
    s.get(base + "/rest/api/2/field", timeout=10)
    over_http = requests.get(base + "/_simulator/stats", timeout=10).json()
    assert over_http["requests_by_route"]["GET /rest/api/2/field"] == 1
    assert over_http["requests_total"] == simulator.stats()["requests_total"] - 1  # the stats call itself counts
