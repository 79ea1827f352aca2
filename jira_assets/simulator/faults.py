"""What can go wrong on the wire: rate limits, seeded random faults, scripted answers, lying pages.

All of it is decided before a handler runs (see server.py), and everything sent is counted in `Stats`.
"""
from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence, Union

from .config import SimulatorConfig
from .paging import Lie

RATE_LIMIT_BODY = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
GATEWAY_429_BODY = {"code": 429, "message": "Too Many Requests"}


@dataclass
class Planned:
    """A response decided before the handler runs. `kind` is a status code or a fault name."""

    kind: str  # "status" | "reset" | "truncate" | "slow"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    #: a scripted 2xx without a body means "answer normally, with these headers"
    passthrough: bool = False


def reset_time_header(seconds_from_now: float) -> str:
    """`X-RateLimit-Reset`: ISO-8601 UTC of the moment the window resets (wall time: clients sleep in it)."""
    moment = datetime.fromtimestamp(math.ceil(time.time() + seconds_from_now), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def too_many(retry_after: Optional[int], limit: int = 100, reason: str = "jira-burst-based") -> Planned:
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": reset_time_header(retry_after or 1), "RateLimit-Reason": reason}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Planned("status", 429, headers, RATE_LIMIT_BODY)


def gateway_too_many(reset_in: int = 2) -> Planned:
    """The gateway-level 429 seen in the field: no Retry-After at all, only a reset time."""
    return Planned("status", 429, {"X-RateLimit-Reset": reset_time_header(reset_in),
                                   "X-Failure-Category": "FAILURE CLIENT RATE LIMITED"}, GATEWAY_429_BODY)


def planned_fault(kind: str, rng: random.Random, retry_after: tuple[int, int] = (1, 3)) -> Planned:
    if kind == "500":
        return Planned("status", 500, {}, {"errorMessages": ["Internal server error"], "errors": {}})
    if kind == "503":
        return Planned("status", 503, {"Retry-After": str(rng.randint(*retry_after))},
                       {"errorMessages": ["Service Unavailable"], "errors": {}})
    if kind == "429":
        return too_many(rng.randint(*retry_after))
    if kind == "429_zero":
        return too_many(0)
    if kind == "429_no_retry_after":
        return gateway_too_many(max(1, retry_after[1]))
    if kind in ("reset", "truncate", "slow"):
        return Planned(kind)
    raise ValueError(kind)


ScriptEntry = Union[tuple, str, Planned]


@dataclass
class Script:
    pattern: re.Pattern[str]
    entries: list[Planned]
    method: Optional[str] = None


def to_planned(entry: ScriptEntry) -> Planned:
    """Script entries: `(status, headers)`, `(status, headers, body)`, or a fault name like "reset"."""
    if isinstance(entry, Planned):
        return entry
    if isinstance(entry, str):
        return planned_fault(entry, random.Random(0))
    status, headers = int(entry[0]), dict(entry[1] if len(entry) > 1 and entry[1] else {})
    body = entry[2] if len(entry) > 2 else None
    if body is None and status >= 300:
        body = RATE_LIMIT_BODY if status == 429 else {"errorMessages": [f"Scripted {status}"], "errors": {}}
    return Planned("status", status, {k: str(v) for k, v in headers.items()}, body,
                   passthrough=body is None and status < 300)


class TokenBucket:
    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> tuple[bool, float]:
        """(allowed, seconds until a token is available)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0.0
        return False, (1 - self.tokens) / self.rate


@dataclass
class Stats:
    requests_by_route: Counter = field(default_factory=Counter)
    responses_by_status: Counter = field(default_factory=Counter)
    throttled: int = 0
    faults_by_kind: Counter = field(default_factory=Counter)
    scripted: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    internal_errors: int = 0
    last_internal_error: Optional[str] = None
    bytes_sent: int = 0


class Disruptor:
    """Decides, per API request, whether to answer with something other than the real response."""

    def __init__(self, config: SimulatorConfig):
        self.config = config
        self.stats = Stats()
        self._lock = threading.Lock()
        self._fault_rng = random.Random(config.fault_seed)
        self._jitter_rng = random.Random(config.fault_seed + 1)
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._scripts: list[Script] = []
        self._lies: list[tuple[re.Pattern[str], Lie]] = []

    # test hooks ----------------------------------------------------------------------------------
    def script(self, path_regex: str, entries: Sequence[ScriptEntry], method: Optional[str] = None) -> None:
        with self._lock:
            self._scripts.append(Script(re.compile(path_regex), [to_planned(e) for e in entries], method))

    def lie(self, path_regex: str, lie: Lie) -> None:
        with self._lock:
            self._lies.append((re.compile(path_regex), lie))

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._lies.clear()

    def lie_for(self, path: str) -> Optional[Lie]:
        with self._lock:
            for pattern, lie in self._lies:
                if pattern.search(path):
                    return lie
        return None

    # per request -----------------------------------------------------------------------------------
    def enter(self) -> int:
        with self._lock:
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            return self.stats.in_flight

    def leave(self) -> None:
        with self._lock:
            self.stats.in_flight -= 1

    def latency(self) -> float:
        cfg = self.config
        if not cfg.latency_ms and not cfg.jitter_ms:
            return 0.0
        with self._lock:
            jitter = self._jitter_rng.random() * cfg.jitter_ms
        return (cfg.latency_ms + jitter) / 1000

    def plan(self, method: str, path: str, route_key: str, in_flight: int,
             api: bool = True) -> tuple[Optional[Planned], dict[str, str]]:
        """(a response to send instead of the real one, headers to add to whatever is sent).

        Scripts apply to any path (the token endpoint too); limits and random faults only to Jira API calls.
        """
        extra: dict[str, str] = {}
        with self._lock:
            for script in self._scripts:
                if script.entries and script.pattern.search(path) and (script.method in (None, method)):
                    planned = script.entries.pop(0)
                    self.stats.scripted += 1
                    if planned.passthrough:
                        return None, dict(planned.headers)
                    return planned, extra
            if not api:
                return None, extra
            cfg = self.config
            if cfg.max_in_flight and in_flight > cfg.max_in_flight:
                return too_many(1, limit=cfg.max_in_flight), extra
            if cfg.rate_limit_rps:
                bucket = self._buckets.setdefault((method, route_key), TokenBucket(cfg.rate_limit_rps))
                allowed, wait = bucket.take()
                extra = {"X-RateLimit-Limit": str(int(cfg.rate_limit_rps)),
                         "X-RateLimit-Remaining": str(int(bucket.tokens))}
                if not allowed:
                    return too_many(max(1, math.ceil(wait)), limit=int(cfg.rate_limit_rps)), {}
            if cfg.fault_rate and self._fault_rng.random() < cfg.fault_rate:
                kind = self._fault_rng.choice(list(cfg.fault_kinds))
                self.stats.faults_by_kind[kind] += 1
                return planned_fault(kind, self._fault_rng, tuple(cfg.fault_retry_after)), extra
        return None, extra

    def count(self, route_key: str, status: int, sent_bytes: int) -> None:
        with self._lock:
            self.stats.requests_by_route[route_key] += 1
            self.stats.responses_by_status[status] += 1
            if status == 429:
                self.stats.throttled += 1
            self.stats.bytes_sent += sent_bytes

    def internal_error(self, description: str) -> None:
        with self._lock:
            self.stats.internal_errors += 1
            self.stats.last_internal_error = description
