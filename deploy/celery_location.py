"""The jira-assets code location with the Celery executor: each step of a run is a Celery task, picked up by
whichever worker machine is free (`dagster-celery worker start`, see deploy/README.md).

Load it instead of `jira_assets.definitions` (workspace: `python_file: deploy/celery_location.py`, or
`dagster api grpc -f deploy/celery_location.py`). The broker and the result backend come from the environment:

    DAGSTER_CELERY_BROKER_URL   e.g. redis://redis.internal:6379/0
    DAGSTER_CELERY_BACKEND_URL  e.g. redis://redis.internal:6379/1

Every machine (code server, run worker, Celery workers) must share the same Dagster instance (deploy/dagster.yaml,
Postgres): the run worker claims the "jira_api" pool slots there before it submits a step, so the pool bounds
Jira steps across all workers exactly as it does for the multiprocess executor.
"""
from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

import jira_assets.definitions as base  # the module, not its `defs`: one @definitions function per module scope

CELERY = celery_executor.configured(
    {
        "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
        "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    },
    name="celery",
)


@dg.definitions
def defs() -> dg.Definitions:
    return base.build(executor=CELERY)
