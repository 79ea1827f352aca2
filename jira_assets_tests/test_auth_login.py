"""`jira-assets auth login|status` end to end against the simulator (a thread plays the browser)."""
from __future__ import annotations

import os
import stat
import threading
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests

from jira_assets.jira import FileTokenStore, login


class Browser:
    """Stands in for the user's browser: opens the consent URL; the simulator consents and redirects to the
    callback. ``tamper`` rewrites the URL first (a forged state, for instance)."""

    def __init__(self, tamper=None) -> None:
        self.opened: list[str] = []
        self.tamper = tamper
        self.threads: list[threading.Thread] = []

    def open(self, url: str, *args, **kwargs) -> bool:
        self.opened.append(url)
        target = self.tamper(url) if self.tamper else url
        thread = threading.Thread(target=lambda: requests.get(target, timeout=10), daemon=True)
        thread.start()
        self.threads.append(thread)
        return True


@pytest.fixture
def login_args(simulator, tmp_path, monkeypatch):
    info = simulator.info()
    monkeypatch.setenv("JIRA_CLIENT_SECRET", info["client_secret"])
    for name in ("JIRA_SITE_URL", "JIRA_CLIENT_ID", "JIRA_TOKEN_STORE", "JIRA_AUTH_BASE_URL",
                 "JIRA_API_BASE_URL", "JIRA_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return ["--site-url", info["site_url"], "--client-id", info["client_id"],
            "--token-store", str(tmp_path / "tokens.json"), "--auth-base-url", info["auth_base_url"],
            "--api-base-url", info["api_base_url"], "--allow-local"]


def test_login_stores_a_grant_after_consent(simulator, login_args, tmp_path, monkeypatch, capsys):
    browser = Browser()
    monkeypatch.setattr(login.webbrowser, "open", browser.open)
    assert login.main(["auth", "login", *login_args, "--timeout", "20"]) == 0
    output = capsys.readouterr().out

    (url,) = browser.opened
    query = parse_qs(urlparse(url).query)
    assert urlparse(url).path == "/authorize"
    assert query["audience"] == ["api.atlassian.com"] and query["prompt"] == ["consent"]
    assert query["response_type"] == ["code"] and len(query["state"][0]) >= 32
    assert set(login.RECOMMENDED_SCOPES) <= set(query["scope"][0].split())
    assert urlparse(query["redirect_uri"][0]).hostname == "localhost"
    assert url in output  # printed for users without a browser

    tokens = FileTokenStore(tmp_path / "tokens.json").read()
    assert tokens.refresh_token and tokens.access_token and "offline_access" in tokens.scope
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    assert simulator.info()["cloud_id"] in output
    assert tokens.refresh_token not in output and tokens.access_token not in output
    assert simulator.info()["client_secret"] not in output


def test_a_callback_with_a_forged_state_stores_nothing(login_args, tmp_path, monkeypatch, capsys):
    def forge_state(url: str) -> str:
        parts = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["state"] = "forged-by-someone-else"
        return parts._replace(query=urlencode(query)).geturl()

    monkeypatch.setattr(login.webbrowser, "open", Browser(forge_state).open)
    assert login.main(["auth", "login", *login_args, "--timeout", "20"]) == 1
    assert "state does not match" in capsys.readouterr().err
    assert not (tmp_path / "tokens.json").exists()


def test_status_describes_the_grant_without_revealing_it(
    simulator, login_args, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(login.webbrowser, "open", Browser().open)
    assert login.main(["auth", "login", *login_args, "--timeout", "20"]) == 0
    capsys.readouterr()
    tokens = FileTokenStore(tmp_path / "tokens.json").read()

    assert login.main(["auth", "status", *login_args]) == 0
    output = capsys.readouterr().out
    assert simulator.info()["site_url"] in output and simulator.info()["cloud_id"] in output
    assert "read:jira-work" in output and "access token:" in output and "refresh token:" in output
    assert "re-consent needed by" in output
    assert tokens.refresh_token not in output and tokens.access_token not in output


def test_status_without_a_grant_says_to_log_in(login_args, capsys):
    assert login.main(["auth", "status", *login_args]) == 1
    assert "jira-assets auth login" in capsys.readouterr().out


def test_the_jira_assets_command_offers_auth(login_args, capsys):
    from jira_assets import cli

    assert cli.main(["auth", "status", *login_args]) == 1
    assert "jira-assets auth login" in capsys.readouterr().out


def test_status_with_an_empty_store_and_jira_refresh_token_stores_the_seed_and_checks_the_site(
        simulator, login_args, tmp_path, monkeypatch, capsys):
    seed = simulator.info()["refresh_token"]
    monkeypatch.setenv("JIRA_REFRESH_TOKEN", seed)
    assert login.main(["auth", "status", *login_args]) == 0
    output = capsys.readouterr().out
    assert simulator.info()["cloud_id"] in output and "refresh token:" in output
    stored = FileTokenStore(tmp_path / "tokens.json").read()
    assert stored is not None and stored.refresh_token != seed  # used once, so rotated, and the store owns it
    assert seed not in output and stored.refresh_token not in output and stored.access_token not in output


def test_status_with_a_seed_but_no_client_secret_says_the_first_run_stores_it(login_args, tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setenv("JIRA_REFRESH_TOKEN", "a-seed-token")
    monkeypatch.delenv("JIRA_CLIENT_SECRET")
    assert login.main(["auth", "status", *login_args]) == 0
    output = capsys.readouterr().out
    assert "JIRA_REFRESH_TOKEN is set" in output and "a-seed-token" not in output
    assert not (tmp_path / "tokens.json").exists()
