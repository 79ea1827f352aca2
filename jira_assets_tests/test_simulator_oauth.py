"""The simulator's auth server and gateway behave like Atlassian's (FACTS.md §1, §5, §6), over real HTTP."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig


@pytest.fixture
def strict():
    """Leeway 0: a rotated refresh token is dead at once."""
    with Simulator(SimulatorConfig(seed=3, issues=10, refresh_leeway=0, frozen_clock=True)) as sim:
        yield sim


def refresh(info: dict, token: str, **overrides) -> requests.Response:
    body = {"grant_type": "refresh_token", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "refresh_token": token, **overrides}
    return requests.post(info["auth_base_url"] + "/oauth/token", json=body, timeout=10)


def gateway_get(info: dict, access_token: str, path: str, **params) -> requests.Response:
    return requests.get(f"{info['api_base_url']}/ex/jira/{info['cloud_id']}{path}", params=params,
                        headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


def authorize(info: dict, **overrides) -> requests.Response:
    params = {"audience": "api.atlassian.com", "client_id": info["client_id"],
              "scope": "read:jira-work read:jira-user offline_access", "redirect_uri": "http://127.0.0.1:9999/cb",
              "state": "s-123", "response_type": "code", "prompt": "consent", **overrides}
    return requests.get(info["auth_base_url"] + "/authorize", params=params, allow_redirects=False, timeout=10)


def test_authorize_redirects_back_with_a_code_and_the_state_and_the_code_buys_a_token_pair(simulator):
    info = simulator.info()
    answer = authorize(info)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.hostname, location.port, location.path) == ("127.0.0.1", 9999, "/cb")
    query = parse_qs(location.query)
    assert query["state"] == ["s-123"]
    token = requests.post(info["auth_base_url"] + "/oauth/token", json={
        "grant_type": "authorization_code", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "code": query["code"][0], "redirect_uri": "http://127.0.0.1:9999/cb"}, timeout=10)
    assert token.status_code == 200
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"read:jira-work", "read:jira-user", "offline_access"}
    assert body["refresh_token"]
    # a code is single use
    again = requests.post(info["auth_base_url"] + "/oauth/token", json={
        "grant_type": "authorization_code", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "code": query["code"][0], "redirect_uri": "http://127.0.0.1:9999/cb"}, timeout=10)
    assert again.status_code == 403 and again.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(simulator):
    info = simulator.info()
    code = parse_qs(urlsplit(authorize(info, scope="read:jira-work").headers["Location"]).query)["code"][0]
    body = requests.post(info["auth_base_url"] + "/oauth/token", data={
        "grant_type": "authorization_code", "client_id": info["client_id"], "client_secret": info["client_secret"],
        "code": code, "redirect_uri": "http://127.0.0.1:9999/cb"}, timeout=10).json()  # form-encoded, like oauthlib
    assert "access_token" in body and "refresh_token" not in body


def test_authorize_refuses_unknown_clients_and_foreign_redirects_and_reports_other_errors_on_the_redirect(simulator):
    info = simulator.info()
    assert authorize(info, client_id="nope").status_code == 400
    assert authorize(info, redirect_uri="https://evil.example.com/cb").status_code == 400
    bad_type = authorize(info, response_type="token")
    assert bad_type.status_code == 302
    assert parse_qs(urlsplit(bad_type.headers["Location"]).query)["error"] == ["unsupported_response_type"]


def test_refresh_rotates_and_the_old_token_works_only_inside_the_leeway_then_reuse_revokes_the_family(simulator):
    info = simulator.info()
    first = refresh(info, info["refresh_token"]).json()
    assert first["refresh_token"] != info["refresh_token"]
    # inside the 10-minute leeway the old token may be reused (e.g. a crashed writer retrying)
    simulator.clock.advance(300)
    assert refresh(info, info["refresh_token"]).status_code == 200
    second = refresh(info, first["refresh_token"]).json()
    assert gateway_get(info, second["access_token"], "/rest/api/2/myself").status_code == 200
    simulator.clock.advance(301)  # now 601 s after the first rotation
    reuse = refresh(info, info["refresh_token"])
    assert reuse.status_code == 403
    assert reuse.json() == {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
    # the whole family is gone: the newest refresh token and its access token too
    assert refresh(info, second["refresh_token"]).status_code == 403
    dead = gateway_get(info, second["access_token"], "/rest/api/2/myself")
    assert dead.status_code == 401 and dead.json() == {"code": 401, "message": "Unauthorized"}
    stats = simulator.stats()
    assert stats["family_revocations"] == 1 and stats["invalid_grant"] == 2


def test_strict_leeway_zero_kills_the_old_pair_at_once(strict):
    info = strict.info()
    first = refresh(info, info["refresh_token"]).json()
    second = refresh(info, first["refresh_token"]).json()
    # the companion access token of a rotated refresh token is revoked immediately
    assert gateway_get(info, first["access_token"], "/rest/api/2/myself").status_code == 401
    assert gateway_get(info, second["access_token"], "/rest/api/2/myself").status_code == 200
    assert refresh(info, first["refresh_token"]).status_code == 403  # reuse -> family revoked
    assert gateway_get(info, second["access_token"], "/rest/api/2/myself").status_code == 401
    assert strict.stats()["family_revocations"] == 1


def test_access_tokens_expire_after_an_hour_and_one_refresh_fixes_it(simulator):
    info = simulator.info()
    pair = refresh(info, info["refresh_token"]).json()
    simulator.clock.advance(3599)
    assert gateway_get(info, pair["access_token"], "/rest/api/2/myself").status_code == 200
    simulator.clock.advance(2)
    assert gateway_get(info, pair["access_token"], "/rest/api/2/myself").json() == {"code": 401, "message": "Unauthorized"}
    fresh = refresh(info, pair["refresh_token"]).json()
    assert gateway_get(info, fresh["access_token"], "/rest/api/2/myself").status_code == 200


def test_refresh_tokens_die_after_90_idle_days_and_365_days_after_consent(simulator):
    info = simulator.info()
    simulator.clock.advance(91 * 86400)
    assert refresh(info, info["refresh_token"]).status_code == 403
    token = simulator.grant()
    for _ in range(5):  # kept active every 80 days, still dead after a year
        simulator.clock.advance(80 * 86400)
        answer = refresh(info, token)
        if answer.status_code != 200:
            break
        token = answer.json()["refresh_token"]
    assert answer.status_code == 403 and answer.json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_is_access_denied_not_invalid_grant(simulator):
    info = simulator.info()
    answer = refresh(info, info["refresh_token"], client_secret="wrong")
    assert answer.status_code == 401 and answer.json()["error"] == "access_denied"
    assert refresh(info, info["refresh_token"]).status_code == 200  # the token was not spent


def test_service_accounts_use_client_credentials_and_get_no_refresh_token(simulator):
    info = simulator.info()
    account = info["service_account"]
    body = requests.post(info["auth_base_url"] + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": account["client_id"],
        "client_secret": account["client_secret"]}, timeout=10).json()
    assert "refresh_token" not in body
    me = gateway_get(info, body["access_token"], "/rest/api/2/myself").json()
    assert me["accountType"] == "app"
    refused = requests.post(info["auth_base_url"] + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": info["client_id"], "client_secret": info["client_secret"]},
        timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized_client"


def test_accessible_resources_lists_the_cloud_id_with_the_granted_scopes(simulator):
    info = simulator.info()
    token = refresh(info, simulator.grant(["read:jira-work"]))
    resources = requests.get(info["api_base_url"] + "/oauth/token/accessible-resources",
                             headers={"Authorization": "Bearer " + token.json()["access_token"]}, timeout=10).json()
    assert resources[0]["id"] == info["cloud_id"] and resources[0]["url"] == info["site_url"]
    assert resources[0]["scopes"] == ["read:jira-work"]


def test_a_missing_scope_is_a_gateway_401_that_refreshing_cannot_fix(simulator):
    info = simulator.info()
    token = refresh(info, simulator.grant(["read:jira-work"])).json()["access_token"]
    assert gateway_get(info, token, "/rest/api/2/field").status_code == 200
    for path in ("/rest/api/2/myself", "/rest/api/2/workflowscheme", "/rest/agile/1.0/board"):
        answer = gateway_get(info, token, path)
        assert answer.status_code == 401, path
        assert answer.json() == {"code": 401, "message": "Unauthorized; scope does not match"}


def test_bearer_tokens_do_not_work_on_the_site_host_and_the_gateway_wants_a_bearer(simulator):
    info = simulator.info()
    token = refresh(info, info["refresh_token"]).json()["access_token"]
    site = requests.get(info["site_url"] + "/rest/api/2/myself", headers={"Authorization": "Bearer " + token}, timeout=10)
    assert site.status_code == 401 and "errorMessages" in site.json()
    basic = requests.get(f"{info['api_base_url']}/ex/jira/{info['cloud_id']}/rest/api/2/myself",
                         auth=(info["email"], info["api_token"]), timeout=10)
    assert basic.status_code == 401 and basic.json()["code"] == 401


def test_gateway_self_links_point_at_the_site_host(simulator):
    info = simulator.info()
    token = refresh(info, info["refresh_token"]).json()["access_token"]
    me = gateway_get(info, token, "/rest/api/2/myself").json()
    assert me["self"].startswith(info["site_url"] + "/rest/api/2/user?accountId=")
    assert "/ex/jira/" not in me["self"]


def test_a_scoped_api_token_works_only_through_the_gateway_and_a_classic_one_only_on_the_site(simulator):
    """FACTS §1.6: scoped tokens are Basic through api.atlassian.com; sent to the site host they get 401."""
    info = simulator.info()
    gateway = f"{info['api_base_url']}/ex/jira/{info['cloud_id']}/rest/api/2/myself"
    site = info["site_url"] + "/rest/api/2/myself"
    scoped, classic = (info["email"], info["scoped_api_token"]), (info["email"], info["api_token"])
    assert info["scoped_api_token"] != info["api_token"]

    through_gateway = requests.get(gateway, auth=scoped, timeout=10)
    assert through_gateway.status_code == 200 and through_gateway.json()["accountId"] == info["account_id"]
    assert through_gateway.json()["self"].startswith(info["site_url"] + "/rest/api/2/user")

    on_site = requests.get(site, auth=scoped, timeout=10)
    assert on_site.status_code == 401 and "errorMessages" in on_site.json()
    classic_on_gateway = requests.get(gateway, auth=classic, timeout=10)
    assert classic_on_gateway.status_code == 401 and classic_on_gateway.json() == {"code": 401, "message": "Unauthorized"}
    assert requests.get(site, auth=classic, timeout=10).status_code == 200
    wrong = requests.get(gateway, auth=(info["email"], info["scoped_api_token"] + "x"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["code"] == 401
