"""Errors name their cause (endpoint, status, Jira's own message); nothing turns into an empty result."""
from __future__ import annotations

import pickle

import pytest

from jira_assets.jira import (
    ApiToken,
    ConfigError,
    FileTokenStore,
    JiraAuthError,
    JiraBadRequest,
    JiraClient,
    JiraError,
    JiraGone,
    JiraNotFound,
    JiraPermissionError,
    JiraProtocolError,
    JiraScopeError,
    OAuth3LO,
    PageBean,
    RetryPolicy,
    TokenPages,
    pick_cloud_id,
)

API = "/rest/api/2"


def oauth_client(sim, tmp_path, refresh_token=None, site_url=None, **kwargs) -> JiraClient:
    info = sim.info()
    auth = OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp_path / "tokens.json"),
                    auth_base_url=info["auth_base_url"],
                    initial_refresh_token=refresh_token or info["refresh_token"])
    return JiraClient(site_url or info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True,
                      **kwargs)


@pytest.fixture
def client(simulator, tmp_path):
    return oauth_client(simulator, tmp_path)


def test_c11_a_400_from_search_raises_with_jiras_message_instead_of_yielding_nothing(client):
    pages = client.iter_pages(f"{API}/search/jql", TokenPages("issues", 50, method="POST"),
                              body={"jql": "project = ABC"})
    with pytest.raises(JiraBadRequest) as info:
        next(pages)
    error = info.value
    assert error.status == 400 and error.endpoint == "POST /rest/api/2/search/jql"
    assert "The value 'ABC' does not exist for the field 'project'." in error.messages
    assert "'ABC' does not exist" in str(error) and "400" in str(error)


def test_field_errors_of_a_400_are_part_of_the_message(simulator, client):
    body = {"errorMessages": [], "errors": {"summary": "You must specify a summary."}}
    simulator.script(r"/field$", [(400, {}, body)])
    with pytest.raises(JiraBadRequest, match="summary: You must specify a summary."):
        client.get_json(f"{API}/field")


def test_an_admin_only_endpoint_names_the_missing_jira_permission(simulator, tmp_path):
    member = oauth_client(simulator, tmp_path, refresh_token=simulator.info()["non_admin"]["refresh_token"])
    with pytest.raises(JiraPermissionError) as info:
        list(member.iter_pages(f"{API}/auditing/record", PageBean()))
    assert info.value.status == 403
    assert "Administer Jira" in str(info.value) and "Administrator privileges are required" in str(info.value)


def test_a_missing_issue_is_not_found_with_jiras_words(client):
    with pytest.raises(JiraNotFound, match="Issue does not exist"):
        client.get_json(f"{API}/issue/NOPE-1")


def test_c04_the_removed_search_endpoint_is_gone(client):
    with pytest.raises(JiraGone, match="/rest/api/3/search/jql"):
        client.get_json(f"{API}/search", {"jql": "order by id"})


def test_a_scope_mismatch_names_the_scope_and_does_not_burn_a_refresh(simulator, tmp_path):
    narrow = oauth_client(simulator, tmp_path, refresh_token=simulator.grant(scopes=["read:jira-user"]))
    narrow.myself()
    refreshes = simulator.stats()["token_refreshes"]
    with pytest.raises(JiraScopeError) as info:
        narrow.get_json(f"{API}/field", scopes=["read:jira-work"])
    assert "read:jira-work" in str(info.value) and "auth login" in str(info.value)
    assert simulator.stats()["token_refreshes"] == refreshes  # a new token would not have helped


def test_bad_basic_credentials_fail_at_myself_instead_of_reading_as_anonymous(simulator):
    info = simulator.info()
    client = JiraClient(info["site_url"], ApiToken(info["email"], "not-the-token"), allow_local=True)
    with pytest.raises(JiraAuthError, match="credentials refused"):
        # Jira would answer this endpoint with an empty page for an anonymous caller.
        list(client.iter_pages(f"{API}/project/search", PageBean()))


def test_html_where_json_was_expected_is_a_protocol_error_with_a_snippet(simulator, client):
    client.myself()
    page = b"<html><body>Down for maintenance</body></html>"
    simulator.script(r"/field$", [(200, {"Content-Type": "text/html"}, page)])
    with pytest.raises(JiraProtocolError) as info:
        client.get_json(f"{API}/field")
    assert "HTML" in str(info.value) and "Down for maintenance" in str(info.value)
    assert info.value.status == 200 and info.value.endpoint == "GET /rest/api/2/field"


def test_a_truncated_json_body_is_retried_then_reported(simulator, tmp_path):
    client = oauth_client(simulator, tmp_path, retry=RetryPolicy(max_attempts=2, sleep=lambda s: None))
    client.myself()
    simulator.script(r"/field$", [(200, {}, b'{"values": [1, 2')] * 2)
    with pytest.raises(JiraProtocolError, match="malformed JSON"):
        client.get_json(f"{API}/field")
    assert simulator.stats()["scripted"] == 2


def test_a_redirect_to_another_host_is_not_followed_with_credentials(simulator, client):
    client.myself()
    simulator.script(r"/field$", [(302, {"Location": "http://collector.invalid/steal"}, b"")])
    with pytest.raises(JiraProtocolError, match="another host"):
        client.get_json(f"{API}/field")


def test_a_redirect_within_the_site_is_followed(simulator, client):
    client.myself()
    target = f"{simulator.info()['gateway_url']}/rest/api/2/serverInfo"
    simulator.script(r"/field$", [(302, {"Location": target}, b"")])
    assert client.get_json(f"{API}/field")["baseUrl"] == simulator.info()["site_url"]


@pytest.mark.parametrize("url", ["http://acme.atlassian.net", "https://acme.atlassian.net.evil.com",
                                 "https://evil.com", "http://127.0.0.1:8080", "acme"])
def test_a_site_url_that_is_not_jira_cloud_is_refused_by_name(url):
    with pytest.raises(ConfigError) as info:
        JiraClient(url, ApiToken("a@example.com", "token"))
    assert repr(url) in str(info.value)


def test_a_jira_cloud_site_url_is_normalised():
    assert JiraClient("https://Acme.atlassian.net/", ApiToken("a@example.com", "t")).site_url == \
        "https://acme.atlassian.net"


def test_a_local_simulator_url_needs_the_explicit_flag():
    assert JiraClient("http://127.0.0.1:8080", ApiToken("a@x.org", "t"), allow_local=True).site_url == \
        "http://127.0.0.1:8080"


def test_the_cloud_id_is_discovered_from_the_site_url(simulator, client):
    assert client.cloud_id == simulator.info()["cloud_id"]


def test_a_scoped_api_token_finds_the_cloud_id_from_the_site(simulator):
    info = simulator.info()
    client = JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"], scoped=True),
                        api_base_url=info["api_base_url"], allow_local=True)
    assert client.api_root == f"{info['api_base_url']}/ex/jira/{info['cloud_id']}"


def test_a_site_the_grant_does_not_cover_is_a_clear_error(simulator, tmp_path):
    other_site = simulator.info()["site_url"].replace("127.0.0.1", "localhost")
    client = oauth_client(simulator, tmp_path, site_url=other_site)
    with pytest.raises(ConfigError, match="does not cover") as info:
        client.myself()
    assert simulator.info()["site_url"] in str(info.value)  # says which sites it does cover


def test_an_ambiguous_site_needs_an_explicit_cloud_id():
    site = "https://acme.atlassian.net"
    resources = [{"id": "a", "url": site}, {"id": "b", "url": "https://ACME.atlassian.net/"}]
    with pytest.raises(ConfigError, match="several cloud ids"):
        pick_cloud_id(resources, site)
    once_per_product = [{"id": "a", "url": site, "scopes": ["read:jira-work"]},
                        {"id": "a", "url": site, "scopes": ["read:confluence-content.all"]}]
    assert pick_cloud_id(once_per_product, site) == "a"


def test_errors_survive_pickling_for_the_multiprocess_executor(client):
    with pytest.raises(JiraNotFound) as info:
        client.get_json(f"{API}/issue/NOPE-1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is JiraNotFound and str(copy) == str(info.value) and copy.status == 404
    assert isinstance(copy, JiraError)
