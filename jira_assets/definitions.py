"""The code location: raw Jira assets, downstream tables, checks, schedules and sensors, with resources."""
from __future__ import annotations

import dagster as dg

from jira_assets.defs import automation
from jira_assets.defs.checks import raw_checks
from jira_assets.defs.execution import step_executor
from jira_assets.defs.marts import issue_id_census, mart_assets
from jira_assets.defs.raw import raw_assets
from jira_assets.defs.resources import resources_from_env


def build(executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """Everything in the code location; `executor` replaces the multiprocess one (deploy/celery_location.py)."""
    return dg.Definitions(
        assets=[*automation.with_freshness([*raw_assets, issue_id_census]), *mart_assets],
        asset_checks=raw_checks,
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
        resources=resources_from_env(),
        executor=executor or step_executor(),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build()
