"""How the steps of a run start: forked from one process that has already imported the code location.

Dagster's multiprocess executor starts each step as a fresh interpreter by default ("spawn"), and every step then
spends about 2 CPU seconds importing Dagster, pyarrow and this package before it sends its first request: a run of
the ~30 snapshot assets paid a minute of CPU for imports alone. With "forkserver" a run imports them once, in the
fork server, and each step is a fork of it.
"""
from __future__ import annotations

import multiprocessing

import dagster as dg

# What a step imports beyond the code location (measured with PYTHONPROFILEIMPORTTIME on spawned steps): without
# the storage and child-process modules every forked step still spends seconds importing them. A name a later
# Dagster release drops costs nothing: the fork server skips preload modules it cannot import.
PRELOAD = [
    "dagster._core.executor.multiprocess", "jira_assets.definitions",
    "dagster._core.executor.child_process_executor", "dagster._core.storage.base_storage",
    "dagster._core.storage.event_log.sqlite", "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite", "dagster._core.storage.root", "dagster._core.storage.migration.utils",
    "dagster._core.storage.local_compute_log_manager", "dagster._core.instance.factory",
    "dagster._core.secrets.env_file", "upath", "upath.implementations.local",
    "watchdog.observers.polling", "multiprocessing.resource_tracker", "multiprocessing.queues",
]


def step_executor(preload: tuple[str, ...] = ()) -> dg.ExecutorDefinition:
    """Dagster's default executor, with the same run config (`multiprocess`, the default, with `max_concurrent`,
    `start_method`...; or `in_process`), whose multiprocess steps are forked from a preloaded server unless the
    run's config names a start method. Where the platform has no fork server (Windows), Dagster's own. `preload`
    adds modules (the benchmark's job module)."""
    default = dg.multi_or_in_process_executor
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return default
    start = {"forkserver": {"preload_modules": [*PRELOAD, *preload]}}

    def config(run: dict) -> dict:
        if "multiprocess" not in run:
            return run
        chosen = {key: value for key, value in run["multiprocess"].items() if value is not None}
        return {"multiprocess": {"start_method": start, **chosen}}

    return default.configured(config, name="multi_or_in_process_forkserver",
                              config_schema=default.config_schema.as_field())
