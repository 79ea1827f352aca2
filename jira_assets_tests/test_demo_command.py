"""README command 1, as a user runs it: `jira-assets demo` lands every asset and says so."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jira_assets.catalog import OBJECTS


@pytest.mark.slow
def test_the_demo_lands_every_raw_asset_and_writes_a_matching_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIRA_", "DAGSTER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "jira_assets.cli", "demo", "--lake", str(tmp_path / "lake"),
         "--home", str(tmp_path / "home"), "--issues", "60", "--days", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "lake" / "_summary.json").read_text())
    landed = {row["asset"]: row for row in summary["assets"]}
    for obj in OBJECTS:
        assert f"jira/raw/{obj.name}" in landed, obj.name
    assert landed["jira/raw/issues"]["rows"] == 60
    assert landed["jira/marts/issues_current"]["rows"] == 60
    for row in summary["assets"]:  # the printed table shows the same figures
        assert row["asset"] in done.stdout
    assert "dagster dev" in done.stdout
