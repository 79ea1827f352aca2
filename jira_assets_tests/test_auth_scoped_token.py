"""A scoped API token (JIRA_SCOPED_API_TOKEN=true) makes the product call Jira through the gateway: the run lands;
the same token without the flag, or a classic token with it, fails with Jira's refusal named."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow.dataset as ds
import pytest

TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()


def materialize(names):
    from jira_assets.definitions import defs

    d = defs()
    assets = [a for a in d.assets if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(assets, partition_key=TODAY, resources=d.resources,
                          selection=[dg.AssetKey(["jira", "raw", n]) for n in names],
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def failures(result) -> dict[str, str]:
    return {e.step_key.split("__")[-1]: e.event_specific_data.error.message for e in result.get_step_failure_events()}


@pytest.fixture
def token_env(simulator, jira_env, monkeypatch):
    info = simulator.info()
    for name in ("JIRA_CLIENT_ID", "JIRA_CLIENT_SECRET", "JIRA_REFRESH_TOKEN", "JIRA_TOKEN_STORE", "JIRA_CLOUD_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JIRA_AUTH_METHOD", "api_token")
    monkeypatch.setenv("JIRA_EMAIL", info["email"])
    return info, jira_env


def test_a_scoped_api_token_lands_every_project_through_the_gateway(simulator, token_env, monkeypatch):
    info, lake = token_env
    monkeypatch.setenv("JIRA_API_TOKEN", info["scoped_api_token"])
    monkeypatch.setenv("JIRA_SCOPED_API_TOKEN", "true")
    result = materialize(["projects"])
    assert failures(result) == {}
    stored = ds.dataset(str(lake / "jira" / "raw" / "projects" / f"date={TODAY}"), format="parquet").to_table()
    assert sorted(stored.column("key").to_pylist()) == sorted(info["projects"])
    assert simulator.stats()["requests_by_route"].get("GET /_edge/tenant_info", 0) >= 1  # cloud id, no login


@pytest.mark.parametrize("scoped_flag, token_name", [("false", "scoped_api_token"), ("true", "api_token")])
def test_a_token_sent_the_wrong_way_fails_clearly_and_writes_nothing(simulator, token_env, monkeypatch, scoped_flag,
                                                                    token_name):
    info, lake = token_env
    monkeypatch.setenv("JIRA_API_TOKEN", info[token_name])
    monkeypatch.setenv("JIRA_SCOPED_API_TOKEN", scoped_flag)
    message = failures(materialize(["projects"])).get("projects", "")
    assert "401" in message and "projects" in message and "JIRA_SCOPED_API_TOKEN=true" in message
    assert ("refuses classic tokens" in message) == (scoped_flag == "true")
    assert info[token_name] not in message
    assert [p for p in (lake / "jira").rglob("*") if p.is_file()] == []


def test_a_scoped_token_flag_that_is_not_a_boolean_is_refused_at_load(token_env, monkeypatch):
    from jira_assets.jira.errors import ConfigError

    monkeypatch.setenv("JIRA_SCOPED_API_TOKEN", "maybe")
    with pytest.raises(ConfigError, match=r"JIRA_SCOPED_API_TOKEN='maybe' is neither 1/true/yes nor 0/false/no"):
        from jira_assets.definitions import defs
        defs()
