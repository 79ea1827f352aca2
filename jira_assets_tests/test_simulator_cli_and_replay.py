"""Starting the simulator from the command line (one JSON line, TLS) and replaying recorded payloads."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests

from jira_assets.simulator import Simulator, SimulatorConfig


def start(*args: str) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise AssertionError(process.stderr.read())
    return process, json.loads(line)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=10)


def test_python_m_prints_one_json_line_serves_and_stops_on_sigterm():
    process, info = start("-m", "jira_assets.simulator", "--issues", "15", "--seed", "4", "--refresh-leeway", "0")
    try:
        assert info["site_url"].startswith("http://127.0.0.1:") and info["ca_file"] is None
        for key in ("base_url", "api_base_url", "auth_base_url", "cloud_id", "client_id", "client_secret",
                    "refresh_token", "email", "api_token", "non_admin"):
            assert info[key], key
        me = requests.get(info["site_url"] + "/rest/api/2/myself", auth=(info["email"], info["api_token"]), timeout=10)
        assert me.json()["emailAddress"] == info["email"]
        found = requests.get(info["site_url"] + "/rest/api/2/search/jql", params={"jql": "created >= 0", "maxResults": 100},
                             auth=(info["email"], info["api_token"]), timeout=10).json()
        assert len(found["issues"]) == 15
    finally:
        assert stop(process) == 0


@pytest.mark.parametrize("option, value, named", [
    ("--fault-rate", "2", "fault_rate must be between 0 and 1"), ("--rate-limit", "-1", "rate_limit_rps"),
    ("--latency-ms", "-100", "latency_ms"), ("--time-zone", "Mars/Base", "'Mars/Base' is not an IANA time zone"),
    ("--days", "0", "days must be >= 1"),
])
def test_simulator_options_that_cannot_work_are_refused_in_one_line(option, value, named):
    done = subprocess.run([sys.executable, "-m", "jira_assets.cli", "simulate", option, value], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_jira_assets_simulate_with_tls_is_trusted_through_the_ca_file():
    process, info = start("-m", "jira_assets.cli", "simulate", "--tls", "--issues", "3")
    try:
        assert info["site_url"].startswith("https://127.0.0.1:")
        answer = requests.get(info["site_url"] + "/rest/api/2/serverInfo", verify=info["ca_file"], timeout=10)
        assert answer.json()["baseUrl"] == info["site_url"]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(info["site_url"] + "/rest/api/2/serverInfo", timeout=10)
    finally:
        assert stop(process) == 0


def test_the_bundled_recordings_replay_as_their_endpoints_paginated_like_jira():
    with Simulator(SimulatorConfig(seed=1, issues=0, replay_dir="recorded")) as sim:
        info = sim.info()
        auth = (info["email"], info["api_token"])
        base = info["site_url"] + "/rest/api/2"
        labels = requests.get(base + "/label", params={"maxResults": 1}, auth=auth, timeout=10).json()
        assert labels["values"] == ["performance"] and labels["total"] == 2 and labels["isLast"] is False
        schemes = requests.get(base + "/issuetypescheme", auth=auth, timeout=10).json()["values"]
        assert [s["id"] for s in schemes] == [s["id"] for s in sim.truth.records("issue_type_schemes")]
        issues = requests.get(base + "/search/jql", params={"jql": "project = TESTKEY13", "fields": "*all"},
                              auth=auth, timeout=10).json()["issues"]
        assert [i["key"] for i in issues] == ["TESTKEY13-1"]
        assert issues[0]["fields"]["customfield_10019"] == "0|i0077b:"  # recorded fields beyond the catalog too
        assert sim.truth.issues()[0]["id"] == "10627"


def test_a_folder_of_payloads_named_like_the_examples_replaces_those_endpoints(tmp_path):
    categories = [{"id": "77", "name": "Recorded", "description": "from a file", "self": "https://x/rest/api/2/projectCategory/77"}]
    (tmp_path / "projectCategory.json").write_text(json.dumps(categories))
    with Simulator(SimulatorConfig(seed=1, issues=20, replay_dir=str(tmp_path))) as sim:
        info = sim.info()
        answer = requests.get(info["site_url"] + "/rest/api/2/projectCategory", auth=(info["email"], info["api_token"]),
                              timeout=10).json()
        assert answer == categories == sim.truth.records("project_categories")
        assert len(sim.truth.issues()) == 20  # generated volume stays
