"""A pre-loaded process that forks runs to be killed (the crash suite's helper; no tests here).

Importing Dagster and the code location takes seconds; twenty runs killed at random moments would spend most
of their time importing. This process imports everything once, then for each `run <json>` line on stdin forks
a child that materializes the given (assets, partition) steps through Dagster, exactly as a run worker would,
and answers `pid <pid>` at once; after the next line (`wait`) it reaps the child and answers `exit <code>`.
The test kills the child with SIGKILL by its pid before sending `wait`: a child that finished first stays a
zombie until then, so its pid cannot have been reused by another process.

The child marks two moments in files of `state_dir`, so the test can tell what it interrupted: `refreshing`
exists while an OAuth refresh is under way (the token request and the durable write of the rotated pair),
`writing` while a Parquet partition is being written (streamed into a staging folder or an open S3 multipart
upload). The marks only observe; behaviour is unchanged.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path


def _marking(state_dir: Path) -> None:
    """Wrap the token request and the partition write with marker files (observation only)."""
    from jira_assets.jira import auth
    from jira_assets.parquet import store

    def around(owner, name: str, mark: Path) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            mark.touch()
            try:
                return original(*args, **kwargs)
            finally:
                mark.unlink(missing_ok=True)

        setattr(owner, name, wrapper)

    around(auth.OAuth3LO, "_refresh_holding_lock", state_dir / "refreshing")  # request + durable store write
    around(store.ParquetStore, "write", state_dir / "writing")


def child(spec: dict) -> int:
    os.environ.update(spec["env"])
    state_dir = Path(spec["state_dir"])
    _marking(state_dir)
    from jira_assets_tests.fault_harness import failures, materialize

    started = time.monotonic()
    problems = {}
    for step in spec["steps"]:
        problems.update({f"{step['partition']} {k}": v
                         for k, v in failures(materialize(step["names"], step["partition"])).items()})
    (state_dir / "result.json").write_text(json.dumps({"failures": problems,
                                                       "seconds": time.monotonic() - started}))
    return 0 if not problems else 1


def main() -> None:
    # everything a run needs, imported once before any fork (no thread is started by these imports)
    import dagster  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import jira_assets.definitions  # noqa: F401
    import jira_assets_tests.fault_harness  # noqa: F401

    print("ready", flush=True)
    while line := sys.stdin.readline():
        command, _, payload = line.strip().partition(" ")
        if command == "quit":
            return
        if command != "run":
            print(f"error unknown command {command!r}", flush=True)
            continue
        spec = json.loads(payload)
        pid = os.fork()
        if pid == 0:  # the run
            code = 1
            try:
                log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(log, 1), os.dup2(log, 2)
                code = child(spec)
            except BaseException:  # noqa: BLE001 - reported in the log, the exit code says it failed
                traceback.print_exc()
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os._exit(code)
        print(f"pid {pid}", flush=True)
        if sys.stdin.readline().strip() != "wait":  # reaped only when asked: until then the pid stays ours
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {code}", flush=True)


if __name__ == "__main__":
    main()
