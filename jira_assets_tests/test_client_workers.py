"""Code that runs inside spawned processes for the multi-process tests (no tests here).

Kept free of pytest fixtures and the simulator so that sixteen spawned interpreters start quickly: a spawned
child imports the module of its target function, nothing else of the test suite.
"""
from __future__ import annotations

import time
import traceback
from typing import Any


def make_store(spec: dict[str, str]):
    from jira_assets.jira import FileTokenStore, S3TokenStore

    if spec["kind"] == "file":
        return FileTokenStore(spec["path"])
    import boto3

    s3 = boto3.client("s3", endpoint_url=spec["endpoint"], region_name="us-east-1")
    return S3TokenStore(spec["bucket"], spec["key"], s3, poll_seconds=0.02)


def make_client(info: dict[str, Any], store, margin: float):
    from jira_assets.jira import JiraClient, OAuth3LO

    auth = OAuth3LO(info["client_id"], info["client_secret"], store, auth_base_url=info["auth_base_url"],
                    initial_refresh_token=info["refresh_token"], refresh_margin_seconds=margin)
    return JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], cloud_id=info["cloud_id"],
                      allow_local=True)


def hammer(barrier, results, spec: dict[str, str], info: dict[str, Any], seconds: float, pause: float,
           margin: float, min_expiries: int = 3, max_seconds: float = 60.0) -> None:
    """Make requests for at least ``seconds`` and until this process met ``min_expiries`` expired access
    tokens (a loaded machine is slow), then report what the auth had to do."""
    report: dict[str, Any] = {"requests": 0, "error": None}
    try:
        client = make_client(info, make_store(spec), margin)
        auth = client.auth
        barrier.wait(180)
        started = time.time()

        def expiries() -> int:  # every token after the first one replaced an expired one
            return auth.refreshes + auth.adoptions - 1

        def keep_going() -> bool:
            elapsed = time.time() - started
            return elapsed < seconds or (expiries() < min_expiries and elapsed < max_seconds)

        while keep_going():
            client.get_json("/rest/api/2/serverInfo")
            report["requests"] += 1
            time.sleep(pause)
        report.update(refreshes=auth.refreshes, adoptions=auth.adoptions, expiries=expiries(),
                      unauthorized=client.stats.responses_by_status.get(401, 0),
                      seconds=time.time() - started)
    except Exception:  # reported to the parent, which fails the test with it
        report["error"] = traceback.format_exc()
    results.put(report)


def budgeted_requests(site_url: str, email: str, api_token: str, budget_dir: str, count: int) -> int:
    """``count`` requests from 4 threads, within a machine-wide budget of 2 requests in flight."""
    from concurrent.futures import ThreadPoolExecutor

    from jira_assets.jira import ApiToken, JiraClient, RequestBudget

    client = JiraClient(site_url, ApiToken(email, api_token), allow_local=True, max_in_flight=4,
                        budget=RequestBudget(budget_dir, slots=2))
    with ThreadPoolExecutor(4) as pool:
        return len(list(pool.map(lambda _: client.get_json("/rest/api/2/serverInfo"), range(count))))
