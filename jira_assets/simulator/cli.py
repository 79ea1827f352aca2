"""`jira-assets simulate` (also `python -m jira_assets.simulator`): serve a simulated Jira Cloud site.

Prints ONE JSON line with everything a client needs (see `Simulator.info`), then serves until SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, Optional, Sequence

from .config import ALL_FAULT_KINDS, SimulatorConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SimulatorConfig()
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0 = any free port)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="data seed (default %(default)s)")
    parser.add_argument("--issues", type=int, default=defaults.issues, help="generated issues (default %(default)s)")
    parser.add_argument("--projects", type=int, default=defaults.projects, help="projects (default %(default)s)")
    parser.add_argument("--users", type=int, default=defaults.users,
                        help="users, among them an inactive one and an app (default %(default)s)")
    parser.add_argument("--days", type=int, default=defaults.days, help="issues spread over this many past days")
    parser.add_argument("--custom-fields", type=int, default=0, help="extra generic custom fields")
    parser.add_argument("--start", default=None, help="clock start (ISO-8601 or epoch ms; default now)")
    parser.add_argument("--frozen-clock", action="store_true", help="the clock moves only when told (tests)")
    parser.add_argument("--time-zone", default=defaults.time_zone, help="the demo admin's time zone (JQL literals)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request (L)")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="random extra latency, uniform 0..jitter")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of API requests that fail (0..1)")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws (reproducible)")
    parser.add_argument("--fault-kinds", default=",".join(defaults.fault_kinds),
                        help=f"comma list from {','.join(ALL_FAULT_KINDS)}")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="requests per second per path+method (0 = off)")
    parser.add_argument("--quota-points", type=int, default=0,
                        help="points-based hourly quota of OAuth (3LO) traffic (0 = off; Atlassian's pool: 65000)")
    parser.add_argument("--max-in-flight", type=int, default=0, help="burst 429 above this many concurrent requests")
    parser.add_argument("--tls", action="store_true", help="serve https with a generated certificate (see ca_file)")
    parser.add_argument("--replay", default=None, metavar="DIR",
                        help="serve recorded payloads from DIR ('recorded' = the bundled recordings)")
    parser.add_argument("--render-cache-mb", type=int, default=defaults.render_cache_mb,
                        help="megabytes of encoded issues kept for re-reads (0 = off; default %(default)s)")
    parser.add_argument("--access-token-ttl", type=int, default=defaults.access_token_ttl,
                        help="seconds an OAuth access token lives (default %(default)s)")
    parser.add_argument("--refresh-leeway", type=int, default=defaults.refresh_leeway,
                        help="seconds a rotated refresh token stays valid (0 = strict)")


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    start: Any = args.start
    if start is not None and str(start).isdigit():
        start = int(start)
    return SimulatorConfig(
        seed=args.seed, issues=args.issues, projects=args.projects, users=args.users, days=args.days,
        custom_fields=args.custom_fields, start=start, frozen_clock=args.frozen_clock, time_zone=args.time_zone,
        port=args.port, tls=args.tls, latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms, fault_rate=args.fault_rate, fault_seed=args.fault_seed,
        fault_kinds=tuple(k for k in args.fault_kinds.split(",") if k), rate_limit_rps=args.rate_limit,
        max_in_flight=args.max_in_flight, replay_dir=args.replay, access_token_ttl=args.access_token_ttl,
        refresh_leeway=args.refresh_leeway, render_cache_mb=args.render_cache_mb,
        quota_points_per_hour=args.quota_points)


def serve(args: argparse.Namespace) -> int:
    from .simulator import Simulator

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Simulator(config_from_args(args)) as sim:
        sys.stdout.write(json.dumps(sim.info()) + "\n")
        sys.stdout.flush()
        stop.wait()
    return 0


def register(subparsers: Any) -> None:
    """Add the `simulate` subcommand to the `jira-assets` command line."""
    parser = subparsers.add_parser("simulate", help="serve a simulated Jira Cloud site (prints one JSON line)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=serve)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jira_assets.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return serve(parser.parse_args(argv))
