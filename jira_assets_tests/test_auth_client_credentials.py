"""Service-account client credentials: no refresh token, one cached access token per process."""
from __future__ import annotations

import pytest

from jira_assets.jira import ClientCredentials, JiraAuthError, JiraClient


def service_client(sim, secret: str | None = None, clock=None) -> JiraClient:
    info = sim.info()
    account = info["service_account"]
    kwargs = {"clock": clock} if clock else {}
    auth = ClientCredentials(account["client_id"], secret or account["client_secret"],
                             auth_base_url=info["auth_base_url"], **kwargs)
    return JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True)


def token_requests(sim) -> int:
    return sim.stats()["requests_by_route"].get("POST /oauth/token", 0)


def test_a_service_account_reads_through_the_gateway_with_one_cached_token(simulator):
    client = service_client(simulator)
    assert client.myself()["displayName"]
    for _ in range(5):
        client.get_json("/rest/api/2/serverInfo")
    assert client.cloud_id == simulator.info()["cloud_id"]
    assert token_requests(simulator) == 1 and client.stats.token_refreshes == 1


def test_the_token_is_renewed_a_minute_before_it_expires(simulator):
    now = [1_800_000_000.0]
    client = service_client(simulator, clock=lambda: now[0])
    client.myself()
    now[0] += 3600 - 61  # still more than a minute left
    client.get_json("/rest/api/2/serverInfo")
    assert token_requests(simulator) == 1
    now[0] += 2  # now less than a minute
    client.get_json("/rest/api/2/serverInfo")
    assert token_requests(simulator) == 2


def test_a_wrong_client_secret_says_which_settings_to_check(simulator):
    with pytest.raises(JiraAuthError, match="client id or secret was refused") as info:
        service_client(simulator, secret="wrong-secret-123").myself()
    assert "wrong-secret-123" not in str(info.value)
