"""The points-based hourly quota of 3LO apps (FACTS.md §2.1), in the simulator and as the client meets it: answers
cost 1 + their objects (identity objects 2), API tokens are not charged, a spent quota denies everything until the
top of the UTC hour; the client waits out a near reset and fails fast, naming the reset, on a far one."""
from __future__ import annotations

import pytest
import requests

from jira_assets.jira import FileTokenStore, JiraClient, JiraRateLimited, OAuth3LO, RetryPolicy, ThrottleGate
from jira_assets.jira.paging import TokenPages
from jira_assets.simulator import Simulator, SimulatorConfig

from .test_retry_client import FakeTime

JQL = "created >= 0 ORDER BY updated ASC, id ASC"


def access_token(info: dict) -> str:
    body = {"grant_type": "refresh_token", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"]}
    return requests.post(info["auth_base_url"] + "/oauth/token", json=body, timeout=10).json()["access_token"]


def test_answers_are_charged_by_their_objects_and_a_spent_quota_denies_3lo_until_the_hour_turns():
    config = SimulatorConfig(seed=5, issues=40, quota_points_per_hour=50, start="2026-03-02T10:59:00Z",
                             frozen_clock=True)
    with Simulator(config) as sim:
        info = sim.info()
        gateway = f"{info['api_base_url']}/ex/jira/{info['cloud_id']}/rest/api/2"
        bearer = {"Authorization": "Bearer " + access_token(info)}

        def get(path, **params):
            return requests.get(gateway + path, headers=bearer, params=params, timeout=10)

        first = get("/search/jql", jql=JQL, fields="summary", maxResults=20)  # 1 + 20 issues
        assert first.status_code == 200 and len(first.json()["issues"]) == 20
        assert first.headers["RateLimit-Policy"] == '"global-app-quota";q=50;w=3600'
        assert "RateLimit" not in first.headers  # 29 of 50 left: above the 20 % mark
        second = get("/search/jql", jql=JQL, fields="summary", maxResults=20)
        assert second.headers["RateLimit"] == '"global-app-quota";r=8;t=60'
        users = get("/users/search", maxResults=5)  # identity objects cost 2 each: 1 + 2 x 5
        assert users.status_code == 200 and len(users.json()) == 5
        assert sim.stats()["quota_points_spent"] == 21 + 21 + 11

        denied = get("/myself")
        assert denied.status_code == 429
        assert denied.headers["Retry-After"] == "60"
        assert denied.headers["X-RateLimit-Reset"] == "2026-03-02T11:00Z"
        assert denied.headers["RateLimit-Reason"] == "jira-quota-global-based"
        assert get("/field").status_code == 429  # everything, not only the endpoint that spent it
        # API tokens are not on the points quota: classic on the site host, scoped through the gateway
        assert requests.get(info["site_url"] + "/rest/api/2/myself", auth=(info["email"], info["api_token"]),
                            timeout=10).status_code == 200
        assert requests.get(gateway + "/myself", auth=(info["email"], info["scoped_api_token"]),
                            timeout=10).status_code == 200

        sim.clock.advance(60)
        assert get("/myself").status_code == 200
        assert sim.stats()["quota_points_spent"] == 2 and sim.stats()["quota_denied"] == 2


class SimulatedTime(FakeTime):
    """The client's clock and sleep, moving the simulator's frozen clock with it: waits cost no real time."""

    def __init__(self, sim: Simulator):
        super().__init__()
        self.sim = sim

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.sim.clock.advance(seconds)


def test_the_client_waits_out_a_near_reset_and_fails_fast_naming_a_far_one(tmp_path):
    config = SimulatorConfig(seed=5, issues=150, quota_points_per_hour=100, start="2026-03-02T10:58:00Z",
                             frozen_clock=True, access_token_ttl=86_400)
    with Simulator(config) as sim:
        info = sim.info()
        moment = SimulatedTime(sim)
        retry = RetryPolicy(sleep=moment.sleep, clock=moment.clock, random=lambda low, high: high)
        auth = OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp_path / "tokens.json"),
                        auth_base_url=info["auth_base_url"], initial_refresh_token=info["refresh_token"])
        client = JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True,
                            retry=retry, throttle=ThrottleGate())
        pages = TokenPages(max_results=50)
        params = {"jql": JQL, "fields": "summary"}

        # 150 issues cost /myself (2) + 3 pages x 51: the third page finds the hour's 100 spent and waits ~2 min for 11:00
        ids = [issue["id"] for page in client.iter_pages("/rest/api/2/search/jql", pages, params) for issue in page]
        assert sorted(ids) == sorted(str(i["id"]) for i in sim.truth.issues())
        assert len(moment.sleeps) == 1 and 120 <= moment.sleeps[0] <= 120 * 1.3  # Retry-After is a floor; jitter on top
        assert sim.stats()["quota_denied"] == 1

        # now in the 11:00 hour with most of it to go: a spent quota is a clear failure, not an hour's silent wait
        with pytest.raises(JiraRateLimited) as failure:
            for _ in range(3):
                list(client.iter_pages("/rest/api/2/search/jql", pages, params))
        message = str(failure.value)
        assert "hourly points quota" in message and "2026-03-02T12:00Z" in message
        assert "jira-quota-global-based" in message
        assert sim.stats()["quota_denied"] == 2  # one denied request, no hammering
