"""The catalog is the product's table of contents: these tests pin what it promises."""
from __future__ import annotations

import dagster as dg
import pytest

from jira_assets.catalog import OBJECTS, Mode
from jira_assets.defs.raw import raw_assets

APPFLOW_OBJECTS = {
    "Audit Record", "Groups", "Issue", "Issue Events", "Issue Fields", "Issue Field Configurations",
    "Issue Link Type", "Issue Notification Schemes", "Issue Priority", "Issue Resolution", "Issue Security Scheme",
    "Issue Type", "Issue Type Scheme", "Issue Type Screen Scheme", "Jira Settings", "Jira Settings Advanced",
    "Jira Settings Global", "Label", "Myself", "Permission", "Project", "Project Category", "Project Type",
    "Server Info", "User", "Workflow", "Workflow Scheme", "Workflow Scheme Project Association",
    "Workflow Status", "Workflow Status Category",
}
BEYOND_APPFLOW = {"issue_comments", "issue_changelogs", "issue_worklogs", "worklog_deletions", "boards", "sprints",
                  "project_versions", "project_components"}


def test_the_catalog_covers_all_30_appflow_objects_and_the_complete_children():
    assert {o.title for o in OBJECTS if o.appflow} == APPFLOW_OBJECTS
    assert BEYOND_APPFLOW <= {o.name for o in OBJECTS if not o.appflow}
    assert len({o.name for o in OBJECTS}) == len(OBJECTS)


def test_no_object_uses_an_endpoint_atlassian_removed():
    removed = {"/rest/api/2/search", "/rest/api/2/workflow", "/rest/api/2/workflow/search", "/rest/api/2/project",
               "/rest/api/2/priority", "/rest/api/2/resolution", "/rest/api/2/users"}
    assert not {o.path for o in OBJECTS} & removed


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o.name)
def test_every_primary_key_is_a_declared_column(obj):
    names = {c.name for c in obj.columns}
    if obj.name == "issues":
        from jira_assets.issue_schema import STANDARD_COLUMNS

        names = {c.name for c in STANDARD_COLUMNS}
    assert set(obj.primary_key) <= names


def test_incremental_objects_are_exactly_the_time_windowed_ones():
    assert {o.name for o in OBJECTS if o.mode is Mode.INCREMENTAL} == {
        "audit_records", "issues", "issue_comments", "issue_changelogs", "issue_worklogs", "worklog_deletions"}


def test_asset_graph_has_the_real_dependency_edges():
    placeholders = {"jira": dg.ResourceDefinition.none_resource(),
                    "parquet_io_manager": dg.mem_io_manager}
    graph = dg.Definitions(assets=raw_assets, resources=placeholders).resolve_asset_graph()

    def parents(name):
        return {k.path[-1] for k in graph.get(dg.AssetKey(["jira", "raw", name])).parent_keys}

    assert parents("issues") == {"issue_fields"}
    assert parents("issue_comments") == parents("issue_changelogs") == {"issues"}
    assert parents("workflow_scheme_project_associations") == {"projects"}
    assert parents("sprints") == {"boards"}
    assert parents("project_versions") == parents("project_components") == {"projects"}


def test_every_raw_asset_carries_group_kinds_pool_owner_and_column_schema():
    for asset in raw_assets:
        spec = next(iter(asset.specs))
        assert spec.key.path[:2] == ["jira", "raw"]
        assert spec.group_name == "jira_raw"
        assert spec.kinds == {"jira", "parquet", "s3"}
        assert spec.owners == ["team:data-eng"]
        assert asset.node_def.pool == "jira_api"
        assert isinstance(spec.metadata["dagster/column_schema"], dg.TableSchema)
        assert spec.metadata["jira/endpoint"].startswith("/rest/")


def test_loading_the_code_location_prints_no_warning_yet_other_beta_warnings_still_show():
    """Every process that loads the code (daemon, code server, each run and step) imports the definitions: the
    deliberate beta `backfill_policy` must not print a warning per asset there, and the filter must stay narrow."""
    import subprocess
    import sys

    script = ("import warnings, dagster as dg\n"
              "from jira_assets.definitions import defs\n"
              "defs()\n"
              "warnings.warn('another beta parameter', dg.BetaWarning)\n")
    done = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "backfill_policy" not in done.stderr
    assert done.stderr.count("BetaWarning") == 1 and "another beta parameter" in done.stderr


def test_a_rename_that_makes_two_custom_fields_share_a_name_never_hands_one_fields_column_to_the_other():
    from jira_assets.issue_schema import custom_field_columns

    def columns(fields):
        return {c.name: c.path[1] for c, _ in custom_field_columns(fields)}

    text = {"type": "string"}
    before = [{"id": "customfield_10038", "name": "Release notes", "custom": True, "schema": text},
              {"id": "customfield_10039", "name": "Customer name", "custom": True, "schema": text}]
    assert columns(before) == {"release_notes": "customfield_10038", "customer_name": "customfield_10039"}
    after = [dict(before[0], name="Customer name"), before[1]]
    # `customer_name` held 10039's values; it must never start holding 10038's
    assert columns(after) == {"customer_name_10038": "customfield_10038", "customer_name_10039": "customfield_10039"}
