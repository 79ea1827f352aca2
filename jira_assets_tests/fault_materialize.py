"""Materialize raw assets in a fresh process and report the failures as one JSON line (no tests here).

    python -m jira_assets_tests.fault_materialize \
        '{"env": {...}, "runs": [{"names": [...], "partition": "...", "env": {...}}]}'

Used where the test process itself cannot host the run: a lake on a tiny or read-only tmpfs mounted inside a
user+mount namespace (`unshare -rm`), so the disk really fills up or really refuses writes.
"""
from __future__ import annotations

import json
import os
import sys


def main(spec: dict) -> dict:
    """`spec["verbose"]`: Python logging and Dagster's console at DEBUG, runs recorded in the persistent
    instance of DAGSTER_HOME (compute logs included), as a deployment would keep them."""
    os.environ.update(spec.get("env", {}))
    from pathlib import Path

    import dagster as dg

    from jira_assets_tests.fault_harness import corrupt_files, failures, materialize, visible_parquet_paths

    instance, run_config = None, None
    if spec.get("verbose"):
        import logging

        logging.basicConfig(level=logging.DEBUG)
        instance, run_config = dg.DagsterInstance.get(), {}
    results = []
    for run in spec["runs"]:
        os.environ.update(run.get("env", {}))
        result = materialize(run["names"], run["partition"], instance=instance, run_config=run_config)
        outcome = failures(result)
        lake = Path(os.environ["JIRA_LAKE"])  # what is at final paths now (the mounts die with this process)
        files = visible_parquet_paths(lake)
        results.append({"failures": outcome, "files": [str(f.relative_to(lake)) for f in files],
                        "corrupt": corrupt_files(files)})
    return {"runs": results}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
