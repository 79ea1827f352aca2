"""R5 — secrets on the wire: credentials go only to the configured https hosts (a local simulator on loopback
is the one explicit exception), and never follow a redirect, a paging link or a plain-http URL anywhere
else.

"Another host" is a recording HTTP server on another loopback port (another origin), or on this machine's
non-loopback address for the plain-http cases; the tests assert it never saw a credential (in fact, no
request).
"""
from __future__ import annotations

import datetime as dt
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Optional

import pytest

from jira_assets.jira import ConfigError, validate_site_url
from jira_assets.simulator import Simulator, SimulatorConfig

from .fault_harness import (
    assert_one_clear_line,
    environment,
    failures,
    fast_client_retries,
    jira_env,
    materialize,
)
from .test_secrets_canaries import Recorder

TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()
YESTERDAY = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def site():
    with Simulator(SimulatorConfig(seed=4, issues=20, days=3)) as sim:
        yield sim


@pytest.fixture
def env(site, tmp_path, monkeypatch):
    fast_client_retries(monkeypatch)
    site.clear_disruptions()
    yield jira_env(site.info(), tmp_path / "lake", tmp_path, JIRA_REFRESH_TOKEN=site.grant())
    site.clear_disruptions()


def recording_server(host: str = "127.0.0.1"):
    Recorder.seen = []
    server = ThreadingHTTPServer((host, 0), Recorder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, Recorder.seen


@pytest.fixture
def other_host():
    server, seen = recording_server()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def credentials_seen(seen: list, *secrets: str) -> list:
    return [r for r in seen if "Authorization" in r["headers"] or any(s and s in r["body"] for s in secrets)]


API_TOKEN = {"JIRA_AUTH_METHOD": "api_token"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("auth", ["oauth", "api_token"])
def test_a_redirect_to_another_host_is_not_followed_with_credentials(status, auth, site, env, other_host):
    target, seen = other_host
    info = site.info()
    extra = {"JIRA_AUTH_METHOD": "api_token", "JIRA_EMAIL": info["email"],
             "JIRA_API_TOKEN": info["api_token"]} if auth == "api_token" else {}
    redirect = (status, {"Location": f"{target}/rest/api/2/project/search"})
    site.script(r"/rest/api/2/project/search$", [redirect] * 20)
    with environment({**env, **extra}):
        failed = failures(materialize(["projects", "issue_types"], TODAY))
    assert set(failed) == {"projects"}
    assert_one_clear_line(failed["projects"], "projects", "redirected to another host", target.split("//")[1])
    assert credentials_seen(seen, info["api_token"]) == [] and seen == []


def test_a_redirect_within_the_same_site_is_followed(site, env):
    site.script(r"/rest/api/2/project/search$", [(302, {"Location": "/rest/api/2/project/search?startAt=0"})])
    with environment(env):
        assert failures(materialize(["projects"], TODAY)) == {}


@pytest.mark.parametrize("status", [302, 307, 308])
def test_the_token_endpoint_redirecting_elsewhere_gets_neither_secret_nor_refresh_token(status, site, env,
                                                                                       other_host):
    target, seen = other_host
    site.script(r"^/oauth/token$", [(status, {"Location": f"{target}/oauth/token"})] * 20)
    with environment(env):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "projects", "redirected to",
                          "not following it with the client secret")
    assert credentials_seen(seen, env["JIRA_CLIENT_SECRET"], env["JIRA_REFRESH_TOKEN"]) == [] and seen == []


def test_a_paging_link_to_another_host_gets_no_credentials(site, env, other_host):
    """/worklog/updated pages by absolute `nextPage` URLs: one pointing elsewhere is refused, not fetched."""
    target, seen = other_host
    page = {"values": [], "since": 0, "until": 0, "lastPage": False,
            "self": f"{site.info()['site_url']}/rest/api/2/worklog/updated?since=0",
            "nextPage": f"{target}/rest/api/2/worklog/updated?since=1"}
    site.script(r"/rest/api/2/worklog/updated$", [(200, {}, page)] * 20)
    with environment(env):
        failed = failures(materialize(["issue_worklogs"], YESTERDAY))
    assert_one_clear_line(failed["issue_worklogs"], "issue_worklogs", "refusing to send credentials",
                          target.split("//")[1])
    assert seen == []


# ---- https only: plain http is refused for every URL that credentials travel to, except loopback ----------


def test_the_site_url_must_be_https_and_only_loopback_is_excepted():
    assert validate_site_url("https://acme.atlassian.net/", allow_local=False) == "https://acme.atlassian.net"
    for url in ("http://acme.atlassian.net", "http://127.0.0.1:8080", "https://127.0.0.1:8443"):
        with pytest.raises(ConfigError):
            validate_site_url(url, allow_local=False)  # loopback only when a simulator is explicitly allowed
    assert validate_site_url("http://127.0.0.1:8080", allow_local=True) == "http://127.0.0.1:8080"
    assert validate_site_url("http://localhost:8080", allow_local=True) == "http://localhost:8080"
    for url in ("http://acme.atlassian.net", "http://jira.acme.com", "http://10.0.0.8:8080"):
        with pytest.raises(ConfigError) as error:
            validate_site_url(url, allow_local=True)  # allowing the simulator allows loopback, nothing else
        assert_one_clear_line(str(error.value), url)


def _own_non_loopback_address() -> Optional[str]:
    candidates = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            candidates.add(probe.getsockname()[0])
        except OSError:
            pass
    try:
        candidates.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return next((a for a in sorted(candidates) if not a.startswith("127.") and a != "0.0.0.0"), None)


@pytest.mark.parametrize("variable", ["JIRA_SITE_URL", "JIRA_API_BASE_URL", "JIRA_AUTH_BASE_URL"])
def test_plain_http_to_a_host_that_is_not_loopback_is_refused_before_any_secret_is_sent(variable, env):
    address = _own_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to stand for a remote host")
    server, seen = recording_server("0.0.0.0")
    try:
        url = f"http://{address}:{server.server_address[1]}"
        with environment({**env, variable: url, "JIRA_CLOUD_ID": env["JIRA_CLOUD_ID"]}):
            failed = failures(materialize(["projects"], TODAY))
    finally:
        server.shutdown()
        server.server_close()
    assert_one_clear_line(failed["projects"], "projects", url, "https")
    assert seen == [], "nothing, and so no secret, went to the plain-http host"
