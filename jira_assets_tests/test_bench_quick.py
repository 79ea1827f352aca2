"""`jira-assets bench --quick`: the benchmark's CI smoke run. No thresholds and no timing asserts: it only proves
the benchmark still drives the real path (simulator process, Dagster runs, floor, client-only baseline) end to end
and writes results a later run can be compared with."""
from __future__ import annotations

import json

import pytest

from jira_assets.cli import main

pytestmark = pytest.mark.slow


def test_quick_bench_runs_every_part_and_writes_comparable_json(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["bench", "--quick", "--out", str(results), "--work", str(tmp_path / "work")]) == 0

    files = list(results.glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert data["command"] and data["machine"]["cpus"]
    cases = {case["case"]: case for case in data["cases"]}
    assert set(cases) == {"quick", "quick-snapshots"}

    issues = cases["quick"]["metrics"]
    assert issues["failures"] == 0
    assert issues["issues"] > 0 and issues["rows"]["issue_comments"] > 0 and issues["rows"]["issue_changelogs"] > 0
    assert issues["requests"] > 0 and issues["search_requests"] > 0
    assert issues["cpu_seconds"] > 0 and issues["peak_rss_mb"] > 0
    assert issues["floor_cpu_per_1000_issues"] > 0 and issues["ratio_to_floor"] > 0
    for child in issues["children"].values():
        assert child["requests"] >= 0 and child["minimum_requests"] >= 0

    snapshots = cases["quick-snapshots"]["metrics"]
    assert snapshots["failures"] == 0 and snapshots["rows"]["projects"] > 0
    assert snapshots["client_only_wall_seconds"] > 0 and snapshots["dagster_to_client_ratio"] > 0

    table = capsys.readouterr().out
    assert "issues/s" in table and "ratio to the floor" in table and "quick-snapshots" in table

    # a second run can be shown next to this one
    again = tmp_path / "again"
    assert main(["bench", "--quick", "--case", "quick-snapshots", "--out", str(again), "--compare", str(files[0]),
                 "--work", str(tmp_path / "work2")]) == 0
    assert "quick-snapshots (was)" in capsys.readouterr().out
