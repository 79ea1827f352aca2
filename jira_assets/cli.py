"""`jira-assets`: simulate a Jira Cloud site, run the demo, log in to Jira, benchmark."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jira-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from jira_assets import demo
    from jira_assets.jira import login
    from jira_assets.simulator import cli as simulator_cli

    simulator_cli.register(commands)
    demo.register(commands)
    login.register(commands)
    try:
        from jira_assets import bench
    except ImportError:  # the benchmark is optional tooling
        bench = None
    if bench is not None:
        bench.register(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for the user; tracebacks only on request
        if getattr(args, "debug", False):
            raise
        print(f"jira-assets: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
