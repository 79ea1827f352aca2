"""Re-read issues come from the simulator's render cache: byte-identical to a fresh render, never stale after a
change, and within the configured byte budget."""
from __future__ import annotations

import datetime as dt

import requests

from jira_assets.simulator import Simulator, SimulatorConfig

START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)
JQL = "created >= 0 ORDER BY updated ASC, id ASC"


def search(sim: Simulator, **params) -> requests.Response:
    info = sim.info()
    return requests.get(info["site_url"] + "/rest/api/2/search/jql", auth=(info["email"], info["api_token"]),
                        params={"jql": JQL, "fields": "*all", "maxResults": 50, **params}, timeout=30)


def test_a_cached_page_is_byte_identical_to_a_page_rendered_without_a_cache():
    config = dict(seed=11, issues=60, start=START, frozen_clock=True)
    with Simulator(SimulatorConfig(**config)) as cached, Simulator(SimulatorConfig(**config, render_cache_mb=0)) as plain:
        first, again = search(cached).content, search(cached).content
        assert first == again == search(plain).content.replace(plain.info()["site_url"].encode(),
                                                               cached.info()["site_url"].encode())
        assert cached.site.renderer._rendered.size > 0 and plain.site.renderer._rendered.size == 0


def test_a_change_to_an_issue_shows_on_the_next_read_of_a_cached_page():
    with Simulator(SimulatorConfig(seed=11, issues=60, start=START, frozen_clock=True)) as sim:
        before = search(sim).json()["issues"]
        target = before[3]
        sim.mutate.update_issue(target["id"], at=START + dt.timedelta(minutes=1), summary="Changed after caching")
        after = {i["id"]: i for i in search(sim, maxResults=100).json()["issues"]}
        assert after[target["id"]]["fields"]["summary"] == "Changed after caching"
        assert target["fields"]["summary"] != "Changed after caching"


def test_views_are_cached_apart_and_the_byte_budget_holds():
    with Simulator(SimulatorConfig(seed=11, issues=150, start=START, frozen_clock=True, render_cache_mb=1)) as sim:
        all_fields = search(sim).json()["issues"][0]
        summary_only = search(sim, fields="summary").json()["issues"][0]
        assert set(summary_only["fields"]) == {"summary"} and len(all_fields["fields"]) > 30
        served = 0
        token = None
        while True:  # every issue once: 150 issues of ~15 kB each are more than the 1 MB budget
            page = search(sim, maxResults=100, **({"nextPageToken": token} if token else {})).json()
            served += len(page["issues"])
            token = page.get("nextPageToken")
            if page["isLast"]:
                break
        cache = sim.site.renderer._rendered
        assert served == 150 and 0 < len(cache._entries) < served
        assert 900_000 < cache.size <= 1_000_000
        assert cache.size == sum(size for _, size in cache._entries.values())
