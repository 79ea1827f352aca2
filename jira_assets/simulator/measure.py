"""How much CPU the simulator itself spends: `python -m jira_assets.simulator.measure --issues 100000`.

Starts the simulator in a child process (so its CPU time is measured alone), pages every issue through
`/search/jql` with `fields=*all` (100 per page, zero latency) twice, and prints one JSON line: the child's CPU
seconds to start (generate), to serve the first pass (every issue rendered) and the second (issues come
from the render cache), the bytes served, and the client's CPU to `orjson.loads` the pages for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import orjson
import requests


def process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(issues: int, seed: int = 7, jql: str = "created >= 0 ORDER BY updated ASC, id ASC") -> dict:
    began = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "jira_assets.simulator", "--issues", str(issues), "--seed", str(seed)],
                             stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())
        startup_wall = time.monotonic() - began
        startup_cpu = process_cpu_seconds(child.pid)
        session = requests.Session()
        session.auth = (info["email"], info["api_token"])
        passes = []
        for _ in range(2):
            cpu_before = process_cpu_seconds(child.pid)
            served_from = time.monotonic()
            count, size, parse_cpu = _read_all(session, info["site_url"], jql)
            passes.append({"serve_cpu_s": round(process_cpu_seconds(child.pid) - cpu_before, 2),
                           "serve_wall_s": round(time.monotonic() - served_from, 2),
                           "client_orjson_parse_cpu_s": round(parse_cpu, 2)})
    finally:
        child.terminate()
        child.wait(timeout=30)
    for one in passes:
        one["serve_cpu_ms_per_issue"] = round(one["serve_cpu_s"] * 1000 / max(count, 1), 3)
        one["serve_cpu_vs_parse"] = round(one["serve_cpu_s"] / max(one["client_orjson_parse_cpu_s"], 1e-9), 2)
    return {"issues": count, "megabytes": round(size / 1e6, 1), "startup_cpu_s": round(startup_cpu, 2),
            "startup_wall_s": round(startup_wall, 2), "first_pass": passes[0], "second_pass": passes[1]}


def _read_all(session: requests.Session, site_url: str, jql: str) -> tuple[int, int, float]:
    """Page through every matching issue; (issues, bytes, client CPU seconds spent in orjson.loads)."""
    token, count, size, parse_cpu = None, 0, 0, 0.0
    while True:
        params = {"jql": jql, "fields": "*all", "maxResults": 100}
        if token:
            params["nextPageToken"] = token
        content = session.get(site_url + "/rest/api/2/search/jql", params=params, timeout=120).content
        parse_from = time.process_time()
        page = orjson.loads(content)
        parse_cpu += time.process_time() - parse_from
        size += len(content)
        count += len(page["issues"])
        token = page.get("nextPageToken")
        if page["isLast"]:
            return count, size, parse_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.issues, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
