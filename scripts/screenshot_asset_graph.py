#!/usr/bin/env python
"""Regenerate docs/asset-graph.png: the asset graph as Dagster's UI draws it, captured in headless Chromium.

    python scripts/screenshot_asset_graph.py [--out docs/asset-graph.png] [--group jira_marts]

It starts `dagster-webserver` on 127.0.0.1 with the project's definitions and placeholder settings (no Jira
site, no AWS account, no secret), waits until the code location has loaded, points Debian's `chromium` at the
asset graph and writes the PNG. The server is stopped by killing its process group. `webserver()` is reused by
the UI test (jira_assets_tests/test_ui_webserver.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "asset-graph.png"
# Placeholders: the definitions load without contacting Jira; secrets are only ever named, never read.
PLACEHOLDER_ENV = {
    "JIRA_SITE_URL": "https://example.atlassian.net",
    "JIRA_CLIENT_ID": "placeholder-client-id",
    "JIRA_CLIENT_SECRET": "placeholder-client-secret",
    "JIRA_REFRESH_TOKEN": "placeholder-refresh-token",
    "JIRA_API_TOKEN": "placeholder-api-token",
    "JIRA_EMAIL": "someone@example.com",
}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1600,1000", "--virtual-time-budget=15000",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(base_url: str, query: str, variables: Optional[dict] = None, raw: Optional[list] = None) -> dict:
    """POST a GraphQL query; the raw response text is appended to `raw` when given."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read().decode()
    if raw is not None:
        raw.append(text)
    payload = json.loads(text)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError " \
            "{ __typename ... on PythonError { message } } } } } }"


@contextlib.contextmanager
def webserver(env: Optional[dict] = None, timeout: float = 180.0) -> Iterator[str]:
    """A headless dagster-webserver on the definitions, yielding its base URL once the location has loaded."""
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="dagster-home-"))
    # no "join the community" dialog over the graph, no telemetry
    (home / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n")
    log = open(home / "webserver.log", "wb")
    binary = Path(sys.executable).with_name("dagster-webserver")
    command = [str(binary) if binary.exists() else "dagster-webserver", "-m", "jira_assets.definitions",
               "-h", "127.0.0.1", "-p", str(port)]
    child_env = {**os.environ, **(env or PLACEHOLDER_ENV), "DAGSTER_HOME": str(home),
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # its own process group, killed as one below
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_loaded(base_url, process, home / "webserver.log", timeout)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(
                process.pid, signal.SIGKILL
            )  # SIGTERM is ignored when started from a non-interactive shell
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_loaded(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"dagster-webserver exited ({process.returncode}):\n{log_path.read_text()[-3000:]}"
            )
        try:
            entries = graphql(base_url, LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, RuntimeError, KeyError, TypeError):
            time.sleep(0.5)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries
                      if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            if errors:
                raise RuntimeError(f"the code location failed to load: {errors[0]['message']}")
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"dagster-webserver did not load within {timeout:.0f}s:\n{log_path.read_text()[-3000:]}"
    )


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("Chromium not found: install it with `apt-get update && apt-get install -y chromium`")


def screenshot(url: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True) as profile:
        command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url]
        subprocess.run(command, check=True, timeout=240, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"Chromium wrote no screenshot to {out}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument(
        "--group",
        default="jira_marts",
        help="asset group whose lineage to capture, with its upstream tables (default jira_marts)",
    )
    args = parser.parse_args(argv)
    with webserver() as base_url:
        location = graphql(base_url, LOCATIONS)["workspaceOrError"]["locationEntries"][0]["name"]
        # The global lineage page collapses groups into two boxes; a group's page draws every asset of the
        # group as a card (kinds, checks, automation) with links to the raw tables it reads.
        screenshot(f"{base_url}/locations/{location}/asset-groups/{args.group}", args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
