"""How much CPU the simulator itself spends: `python -m jira_assets.simulator.measure --issues 100000`.

Starts the simulator in a child process (so its CPU time is measured alone), pages every issue through
`/search/jql` with `fields=*all` (100 per page, zero latency), and prints one JSON line: the child's CPU
seconds to start (generate) and to serve, the bytes served, and the client's CPU to `orjson.loads` the
pages for comparison.
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
        token, count, size, parse_cpu = None, 0, 0, 0.0
        served_from = time.monotonic()
        while True:
            params = {"jql": jql, "fields": "*all", "maxResults": 100}
            if token:
                params["nextPageToken"] = token
            content = session.get(info["site_url"] + "/rest/api/2/search/jql", params=params, timeout=120).content
            parse_from = time.process_time()
            page = orjson.loads(content)
            parse_cpu += time.process_time() - parse_from
            size += len(content)
            count += len(page["issues"])
            token = page.get("nextPageToken")
            if page["isLast"]:
                break
        serve_wall = time.monotonic() - served_from
        serve_cpu = process_cpu_seconds(child.pid) - startup_cpu
    finally:
        child.terminate()
        child.wait(timeout=30)
    return {"issues": count, "startup_cpu_s": round(startup_cpu, 2), "startup_wall_s": round(startup_wall, 2),
            "serve_cpu_s": round(serve_cpu, 2), "serve_wall_s": round(serve_wall, 2),
            "serve_cpu_ms_per_issue": round(serve_cpu * 1000 / max(count, 1), 3),
            "megabytes": round(size / 1e6, 1), "client_orjson_parse_cpu_s": round(parse_cpu, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(measure(args.issues, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
