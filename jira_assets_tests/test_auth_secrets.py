"""Secrets never reach logs (even at DEBUG, urllib3 and requests-oauthlib included), reprs or exception
text."""
from __future__ import annotations

import logging

import pytest

from jira_assets.jira import ApiToken, FileTokenStore, JiraClient, JiraError, OAuth3LO
from jira_assets.simulator import Simulator, SimulatorConfig

API = "/rest/api/2"


def test_no_secret_appears_in_debug_logs_reprs_or_errors(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests_oauthlib", "oauthlib", "jira_assets"):
        caplog.set_level(logging.DEBUG, logger=name)
    texts: list[str] = []
    secrets: set[str] = set()
    store = FileTokenStore(tmp_path / "tokens.json")

    with Simulator(SimulatorConfig(seed=7, issues=10, refresh_leeway=0)) as sim:
        info = sim.info()
        seed = info["refresh_token"]
        secrets |= {info["client_secret"], seed, info["api_token"]}

        def remember_stored_tokens() -> None:
            tokens = store.read()
            secrets.update({tokens.access_token, tokens.refresh_token})

        def expect_error(call) -> None:
            with pytest.raises(JiraError) as caught:
                call()
            texts.extend([str(caught.value), repr(caught.value), *caught.value.messages])

        auth = OAuth3LO(info["client_id"], info["client_secret"], store, auth_base_url=info["auth_base_url"],
                        initial_refresh_token=seed)
        client = JiraClient(info["site_url"], auth, api_base_url=info["api_base_url"], allow_local=True)
        client.get_json(f"{API}/field")
        remember_stored_tokens()
        sim.clock.advance(3601)  # the gateway now answers 401: refresh and retry
        client.get_json(f"{API}/field")
        remember_stored_tokens()
        texts.extend([repr(client), repr(auth), repr(store.read()), str(store.read()), repr(client.stats)])

        expect_error(lambda: client.post_json(f"{API}/search/jql", {"jql": "project = ABC"}))
        wrong = ApiToken(info["email"], info["api_token"] + "x")
        basic = JiraClient(info["site_url"], wrong, allow_local=True)
        secrets.add(info["api_token"] + "x")
        expect_error(basic.myself)
        texts.append(repr(basic.auth))
        # A second deployment reusing the spent seed gets invalid_grant; the grant is revoked for everyone.
        stale = OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp_path / "stale.json"),
                         auth_base_url=info["auth_base_url"], initial_refresh_token=seed)
        expect_error(lambda: JiraClient(info["site_url"], stale, api_base_url=info["api_base_url"],
                                        allow_local=True).myself())
        sim.clock.advance(3601)
        expect_error(lambda: client.get_json(f"{API}/field"))

    # Their DEBUG output was captured (and it does carry token bodies before redaction).
    assert any(r.name.startswith("requests_oauthlib") for r in caplog.records)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    captured = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(texts)
    assert len(secrets) >= 6
    leaked = [s[:6] + "…" for s in secrets if s and s in captured]
    assert not leaked, f"secrets leaked: {leaked}"
