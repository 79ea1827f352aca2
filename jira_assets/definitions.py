"""The code location: raw Jira assets, downstream tables, checks, schedules and sensors, with resources."""
from __future__ import annotations

import dagster as dg

from jira_assets.defs.raw import raw_assets
from jira_assets.defs.resources import resources_from_env


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[*raw_assets], resources=resources_from_env())
