"""When Jira throttles one process, every process backs off (Retry-After), not just the one that got the 429.

Two real processes talk to the simulator. Process A's request gets a scripted 429 with Retry-After; process B, which
starts a moment later and never sees a 429 itself, waits out the same Retry-After before its first request:
through a file board (the processes of one machine) and through an S3 object (every machine). Without a board, B
does not wait: the back-off is then per process only.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

RETRY_AFTER = 4
CLIENT = r"""
import json, os, sys, time
from jira_assets.jira import ApiToken, JiraClient
info = json.loads(os.environ["SIM_INFO"])
client = JiraClient(info["site_url"], ApiToken(info["email"], info["api_token"]), allow_local=True)
go = sys.argv[2] if len(sys.argv) > 2 else None
while go and not os.path.exists(go):  # started early, so its start-up time does not eat into the wait
    time.sleep(0.01)
start = time.time()
client.get_json(sys.argv[1])
stats = client.stats
print(json.dumps({"start": start, "end": time.time(), "throttled_seconds": stats.throttled_seconds,
                  "statuses": {str(k): v for k, v in stats.responses_by_status.items()}}))
"""


def start_client(sim, path: str, env: dict, go: str = "") -> subprocess.Popen:
    child_env = {**os.environ, **env, "SIM_INFO": json.dumps(sim.info())}
    for name in ("JIRA_THROTTLE_BOARD", "JIRA_REQUEST_BUDGET_DIR"):
        if name not in env:
            child_env.pop(name, None)
    return subprocess.Popen([sys.executable, "-c", CLIENT, path, *([go] if go else [])], env=child_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def throttle_one_then_start_another(env: dict, tmp_path) -> tuple[dict, dict, float]:
    """A gets a 429 (Retry-After 4 s); once it has, B sends its first request. Returns (A, B, instant of the 429)."""
    from jira_assets.simulator import Simulator, SimulatorConfig

    go = tmp_path / "go"
    with Simulator(SimulatorConfig(seed=5, issues=10)) as sim:
        sim.script(r"/rest/api/2/field$", [(429, {"Retry-After": str(RETRY_AFTER)})])
        b = start_client(sim, "/rest/api/2/serverInfo", env, go=str(go))
        a = start_client(sim, "/rest/api/2/field", env)
        deadline = time.monotonic() + 30
        while sim.stats()["throttled_429"] < 1:
            assert time.monotonic() < deadline and a.poll() is None, "process A never got its 429"
            time.sleep(0.02)
        throttled_at = time.time()
        time.sleep(0.3)  # A publishes the instant as soon as it reads the 429
        go.touch()
        first, second = result(a), result(b)
        assert sim.stats()["throttled_429"] == 1  # B never needed a 429 of its own
    return first, second, throttled_at


def assert_b_waited(a: dict, b: dict, throttled_at: float) -> None:
    assert a["statuses"].get("429") == 1
    assert "429" not in b["statuses"]
    assert b["throttled_seconds"] >= RETRY_AFTER - 1.5, b  # B went 0.3 s after the 429 and waited out the rest
    assert b["end"] >= throttled_at + RETRY_AFTER - 0.2, (b, throttled_at)


def test_processes_of_one_machine_back_off_together_through_the_request_budget_directory(tmp_path):
    a, b, throttled_at = throttle_one_then_start_another({"JIRA_REQUEST_BUDGET_DIR": str(tmp_path / "budget"),
                                                          "JIRA_REQUEST_BUDGET": "4"}, tmp_path)
    assert_b_waited(a, b, throttled_at)
    assert float((tmp_path / "budget" / "throttled-until").read_text()) >= throttled_at + RETRY_AFTER - 0.5


def test_processes_on_different_machines_back_off_together_through_an_s3_board(s3_server, s3_bucket, tmp_path):
    import boto3

    board = f"s3://{s3_bucket}/jira/throttled-until.json"
    a, b, throttled_at = throttle_one_then_start_another({"JIRA_THROTTLE_BOARD": board,
                                                          "AWS_ENDPOINT_URL_S3": s3_server}, tmp_path)
    assert_b_waited(a, b, throttled_at)
    stored = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").get_object(
        Bucket=s3_bucket, Key="jira/throttled-until.json")
    assert json.loads(stored["Body"].read())["not_before"] >= throttled_at + RETRY_AFTER - 0.5


def test_without_a_board_only_the_throttled_process_backs_off(tmp_path):
    a, b, throttled_at = throttle_one_then_start_another({}, tmp_path)
    assert a["statuses"].get("429") == 1
    assert b["throttled_seconds"] == 0
    assert b["end"] < throttled_at + RETRY_AFTER - 1


def test_a_board_keeps_the_later_instant_and_never_fails_a_request(tmp_path):
    from jira_assets.jira.retry import RetryPolicy, ThrottleGate
    from jira_assets.jira.throttle_board import FileThrottleBoard, SafeBoard

    board = FileThrottleBoard(tmp_path / "throttled-until")
    board.publish(100.0)
    board.publish(50.0)  # an earlier instant from a slower process does not shorten the wait
    assert board.read() == 100.0

    class Broken:
        def describe(self):
            return "broken"

        def read(self):
            raise OSError("unreachable")

        def publish(self, not_before):
            raise OSError("unreachable")

    now = [1000.0]
    policy = RetryPolicy(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    gate = ThrottleGate(board=SafeBoard(Broken()))
    gate.hold_until(1005.0)  # the board is down: this process still backs off on its own
    assert gate.wait(policy) == pytest.approx(5.0)
