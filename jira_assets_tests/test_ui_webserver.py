"""The UI as a user's browser sees it: a headless dagster-webserver on the definitions, asked over GraphQL.

Canary secrets go into the environment; the resource page must show them only as environment variable names,
and no GraphQL answer may contain their values. The server is killed by process group when the module ends.
"""
from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

from jira_assets.catalog import OBJECTS

pytestmark = pytest.mark.slow  # a real server / a whole extraction, ~10-30 s
ROOT = Path(__file__).resolve().parents[1]
CANARIES = {name: f"canary-{name.lower()}-{uuid.uuid4().hex}"
            for name in ("JIRA_CLIENT_SECRET", "JIRA_REFRESH_TOKEN", "JIRA_API_TOKEN")}


def _script():
    spec = importlib.util.spec_from_file_location(
        "screenshot_asset_graph", ROOT / "scripts" / "screenshot_asset_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = _script()

ASSET_GRAPH = """{ assetNodes {
  assetKey { path } groupName kinds isPartitioned dependencyKeys { path }
  partitionDefinition { type description }
  automationCondition { label }
  internalFreshnessPolicy { __typename }
  assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
} }"""
RESOURCES = """query($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
  __typename ... on ResourceDetails { name configuredValues { key value type } }
  ... on PythonError { message } } }"""
AUTOMATION = """query($repo: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repo) { ... on Schedules { results { name cronSchedule
    scheduleState { status } } } }
  sensorsOrError(repositorySelector: $repo) {
    ... on Sensors { results { name sensorState { status } } } } }"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    env = {**script.PLACEHOLDER_ENV, **CANARIES, "JIRA_LAKE": str(tmp_path_factory.mktemp("lake"))}
    responses: list[str] = []
    with script.webserver(env) as base_url:
        location = script.graphql(base_url, script.LOCATIONS, raw=responses)["workspaceOrError"][
            "locationEntries"
        ][0]
        repo = {"repositoryLocationName": location["name"], "repositoryName": "__repository__"}
        nodes = script.graphql(base_url, ASSET_GRAPH, raw=responses)["assetNodes"]
        jira = script.graphql(
            base_url, RESOURCES, {"selector": {**repo, "resourceName": "jira"}}, raw=responses
        )
        automation = script.graphql(base_url, AUTOMATION, {"repo": repo}, raw=responses)
    yield {"nodes": {"/".join(n["assetKey"]["path"]): n for n in nodes},
           "jira": jira["topLevelResourceDetailsOrError"], "automation": automation, "responses": responses}


def test_every_raw_asset_is_in_the_graph_partitioned_in_its_group_with_its_kinds(ui):
    nodes = ui["nodes"]
    for name in [o.name for o in OBJECTS] + ["issue_id_census"]:
        node = nodes[f"jira/raw/{name}"]
        assert node["groupName"] == "jira_raw" and {"jira", "parquet"} <= set(node["kinds"]), name
        assert node["isPartitioned"] and node["partitionDefinition"]["type"] == "TIME_WINDOW", name
        assert node["internalFreshnessPolicy"] is not None, name


def test_the_marts_and_their_lineage_edges_are_drawn(ui):
    nodes = ui["nodes"]

    def deps(key: str) -> set[str]:
        return {"/".join(d["path"]) for d in nodes[key]["dependencyKeys"]}

    marts = {k for k, n in nodes.items() if n["groupName"] == "jira_marts"}
    assert marts == {
        f"jira/marts/{n}"
        for n in (
            "issues_current",
            "issue_field_history",
            "issue_status_transitions",
            "deleted_issues",
            "open_issues_daily",
            "worklogs_current",
        )
    }
    assert {"jira/raw/issues", "jira/marts/deleted_issues", "jira/raw/workflow_statuses", "jira/raw/users",
            "jira/raw/sprints"} <= deps("jira/marts/issues_current")
    assert deps("jira/marts/deleted_issues") == {
        "jira/raw/issues",
        "jira/raw/issue_id_census",
        "jira/raw/projects",
    }
    assert "jira/raw/worklog_deletions" in deps("jira/marts/worklogs_current")
    assert "jira/marts/issues_current" in deps("jira/marts/issue_status_transitions")
    assert deps("jira/marts/open_issues_daily") == {"jira/marts/issue_status_transitions"}
    assert "jira/raw/issues" in deps("jira/raw/issue_changelogs")  # the raw layer's own edges
    for key in marts:
        assert set(nodes[key]["kinds"]) == {"pyarrow", "parquet"}
        assert nodes[key]["automationCondition"] is not None
    assert nodes["jira/marts/open_issues_daily"]["isPartitioned"]
    assert not nodes["jira/marts/issues_current"]["isPartitioned"]


def test_checks_are_listed_with_their_blocking_flags(ui):
    checks = {
        c["name"]: c["blocking"] for c in ui["nodes"]["jira/raw/issues"]["assetChecksOrError"]["checks"]
    }
    assert checks == {"primary_key_unique": True, "primary_key_not_null": True, "schema_unchanged": False,
                      "count_matches_jira": False}
    singleton = {c["name"] for c in ui["nodes"]["jira/raw/server_info"]["assetChecksOrError"]["checks"]}
    assert singleton == {"single_row", "schema_unchanged"}


def test_schedules_and_the_sensor_are_listed_and_stopped(ui):
    schedules = {s["name"]: s["scheduleState"]["status"]
                 for s in ui["automation"]["schedulesOrError"]["results"]}
    assert schedules == {"jira_incremental_refresh": "STOPPED", "jira_snapshot_refresh": "STOPPED"}
    sensors = {s["name"]: s["sensorState"]["status"] for s in ui["automation"]["sensorsOrError"]["results"]}
    assert sensors["jira_issue_changes"] == "STOPPED"


def test_secrets_show_only_as_environment_variable_names(ui):
    assert ui["jira"]["__typename"] == "ResourceDetails"
    values = {v["key"]: (v["type"], v["value"]) for v in ui["jira"]["configuredValues"]}
    assert values["client_secret"] == ("ENV_VAR", "JIRA_CLIENT_SECRET")
    assert values["refresh_token"] == ("ENV_VAR", "JIRA_REFRESH_TOKEN")
    assert values["api_token"] == ("ENV_VAR", "JIRA_API_TOKEN")
    everything = "\n".join(ui["responses"])
    for name, canary in CANARIES.items():
        assert canary not in everything, name
