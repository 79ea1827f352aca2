"""Run-time configuration of the simulator: scale, seed, latency, faults, OAuth lifetimes."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional, Sequence, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Fault kinds the injector knows (see faults.py for what each one sends).
ALL_FAULT_KINDS = (
    "500",
    "503",
    "429",
    "429_zero",
    "429_no_retry_after",
    "reset",
    "truncate",
    "slow",
)


@dataclass
class SimulatorConfig:
    """Everything that shapes one simulated Jira Cloud site. Same seed + same clock start = same site."""

    seed: int = 7
    projects: int = 3
    issues: int = 200
    users: int = 137
    #: issues are spread over the `days` days before the clock's start
    days: int = 30
    #: extra generic custom fields on top of the standard set (wide-schema benchmarks)
    custom_fields: int = 0
    #: boards per project (the first one is scrum, the others kanban)
    boards_per_project: int = 2
    #: clock start: epoch milliseconds, an aware datetime or an ISO string; None = now rounded to the minute
    start: Optional[Union[int, float, str, datetime]] = None
    #: freeze the clock (it then only moves through clock.advance); default follows wall time
    frozen_clock: bool = False
    #: the demo admin user's time zone (JQL literals are read in the calling user's zone)
    time_zone: str = "America/Los_Angeles"
    #: the non-admin user's time zone
    non_admin_time_zone: str = "Europe/Berlin"
    server_time_zone: str = "UTC"

    # network behaviour
    port: int = 0
    host: str = "127.0.0.1"
    tls: bool = False
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    fault_seed: int = 0
    fault_kinds: Sequence[str] = field(default_factory=lambda: ("500", "503", "429", "429_zero", "429_no_retry_after"))
    #: seconds a "slow" fault waits before answering
    slow_seconds: float = 2.0
    #: Retry-After seconds (inclusive range) of injected 429/503 faults; the gateway-style 429 without
    #: Retry-After resets at the range's upper end. Short ranges keep fault suites fast.
    fault_retry_after: tuple[int, int] = (1, 3)
    #: token bucket per path+method, requests per second (0 = off)
    rate_limit_rps: float = 0.0
    #: a request that arrives while this many are in flight gets a burst 429 (0 = off)
    max_in_flight: int = 0
    #: points-based hourly quota of 3LO traffic (0 = off; Atlassian's default global pool is 65 000), see quota.py
    quota_points_per_hour: int = 0

    # OAuth
    access_token_ttl: int = 3600
    refresh_leeway: int = 600
    refresh_inactivity_days: int = 90
    refresh_absolute_days: int = 365
    #: tests: letters/digits put into every refresh and access token issued, so one search finds a leaked token
    token_marker: str = ""

    #: megabytes of encoded issues kept for re-reads (0 = render every request; see issues.RenderedIssues)
    render_cache_mb: int = 2048

    #: folder of recorded payloads served instead of generated data ("recorded" = the packaged set)
    replay_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if self.token_marker and not self.token_marker.isalnum():
            raise ValueError("token_marker must be letters and digits (it goes into JWT-shaped tokens)")
        low, high = self.fault_retry_after
        if not 0 <= low <= high:
            raise ValueError(f"fault_retry_after must be (low, high), 0 <= low <= high: {self.fault_retry_after}")
        unknown = set(self.fault_kinds) - set(ALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_FAULT_KINDS}")
        if self.projects < 1:
            raise ValueError("projects must be >= 1")
        if self.users < 10:
            raise ValueError("users must be >= 10 (the demo admin, non-admin, inactive, app and service users are fixed)")
        if self.quota_points_per_hour < 0:
            raise ValueError("quota_points_per_hour must be >= 0")
        if self.render_cache_mb < 0:
            raise ValueError("render_cache_mb must be >= 0")
        if self.issues < 0:
            raise ValueError("issues must be >= 0")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(f"fault_rate must be between 0 and 1: {self.fault_rate}")
        for name in ("latency_ms", "jitter_ms", "rate_limit_rps", "max_in_flight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0: {getattr(self, name)}")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        for name in ("time_zone", "non_admin_time_zone", "server_time_zone"):
            try:
                ZoneInfo(getattr(self, name))
            except (ValueError, ZoneInfoNotFoundError):
                raise ValueError(f"{name} {getattr(self, name)!r} is not an IANA time zone such as "
                                 "America/Los_Angeles") from None
