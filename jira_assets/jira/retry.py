"""One immutable retry policy (in the spirit of urllib3's ``Retry``), the throttle gate and the counters.

Atlassian's advice (FACTS §2.3): honour ``Retry-After`` as a minimum (0 still means "retry"), else
``X-RateLimit-Reset``, else exponential backoff from 2 s with jitter ×0.7–1.3; bounded attempts; idempotent
requests only.
"""
from __future__ import annotations

import random as _random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping

# POSTs that only read: Jira uses POST for these because their inputs are too large for a query string.
READ_ONLY_POSTS = (
    r"/search/jql$",
    r"/search/approximate-count$",
    r"/worklog/list$",
    r"/changelog/bulkfetch$",
    r"/issue/bulkfetch$",
    r"/changelog/list$",
    r"/comment/list$",
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    """Everything about retrying in one immutable object; pass it around, never mutate it.

    ``sleep``, ``clock`` (epoch seconds) and ``random`` (``uniform(a, b)``) are injectable so tests run on a
    fake clock without real sleeps.
    """

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 30.0
    # A server-requested wait longer than this (an exhausted hourly quota) fails fast with JiraRateLimited
    # instead of silently parking a run for an hour.
    max_retry_after: float = 900.0
    jitter: tuple[float, float] = (0.7, 1.3)
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    read_only_posts: tuple[str, ...] = READ_ONLY_POSTS
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    random: Callable[[float, float], float] = field(default=_random.uniform, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        low, high = self.jitter
        if not 0 < low <= 1 <= high:
            raise ValueError(f"jitter must straddle 1, got {self.jitter}")

    def may_retry(self, method: str, path: str) -> bool:
        """Only idempotent requests are retried; the listed POSTs are reads and count as idempotent."""
        method = method.upper()
        if method in IDEMPOTENT_METHODS:
            return True
        return method == "POST" and any(re.search(pattern, path) for pattern in self.read_only_posts)

    def retries_status(self, status: int) -> bool:
        return status in self.retry_statuses

    def server_requested_wait(self, headers: Mapping[str, str] | None) -> float | None:
        """The wait the server asked for: ``Retry-After`` (seconds or HTTP date), else
        ``X-RateLimit-Reset``."""
        if not headers:
            return None
        retry_after = headers.get("Retry-After")
        if retry_after is not None:
            seconds = _parse_retry_after(retry_after, self.clock())
            if seconds is not None:
                return seconds
        reset = headers.get("X-RateLimit-Reset")
        if reset:
            reset_at = _parse_iso_instant(reset)
            if reset_at is not None and reset_at > self.clock():
                return reset_at - self.clock()
        return None

    def backoff(self, attempt: int) -> float:
        """Exponential backoff after ``attempt`` failed attempts: 2, 4, 8 ... capped, times jitter."""
        base = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return base * self.random(*self.jitter)

    def retry_delay(self, attempt: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds to wait before the next attempt. A server-requested wait is a floor: jitter only adds
        to it."""
        requested = self.server_requested_wait(headers)
        if requested is not None:
            return requested * self.random(1.0, self.jitter[1])
        return self.backoff(attempt)


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _parse_iso_instant(value: str) -> float | None:
    """``yyyy-MM-ddTHH:mmZ`` (Jira's minute precision) or any ISO-8601 instant -> epoch seconds."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class ThrottleGate:
    """A shared "not before" instant. After a 429 every request that shares the gate waits, not only the one
    that got it: Jira's limits are per tenant, so hammering on from other threads only prolongs the
    throttling."""

    def __init__(self, board=None) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        # Optional ThrottleBoard (throttle_board.py): carries the instant to other processes and machines.
        self._board = board

    def hold_until(self, instant: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, instant)
        if self._board is not None:
            self._board.publish(instant)

    def wait(self, policy: RetryPolicy) -> float:
        """Sleep (with the policy's sleep/clock) until the gate opens; returns the seconds waited."""
        waited = 0.0
        while True:
            shared = self._board.read() if self._board is not None else 0.0
            with self._lock:
                remaining = max(self._not_before, shared) - policy.clock()
            if remaining <= 0:
                return waited
            policy.sleep(remaining)
            waited += remaining


_gates: dict[str, ThrottleGate] = {}
_gates_lock = threading.Lock()


def process_throttle_gate(key: str) -> ThrottleGate:
    """The gate every client of this process shares for one Jira site (``key`` is its API root). With a
    throttle board (``JIRA_THROTTLE_BOARD``, or a request-budget directory) other processes share it too."""
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            from .throttle_board import SafeBoard, throttle_board_from_env

            board = throttle_board_from_env()
            gate = _gates[key] = ThrottleGate(board=SafeBoard(board) if board is not None else None)
        return gate


@dataclass(frozen=True)
class RetryStats:
    """A snapshot of what a client did: for materialization metadata."""

    requests: int = 0
    retries: int = 0
    throttled_seconds: float = 0.0
    responses_by_status: Mapping[int, int] = field(default_factory=dict)
    token_refreshes: int = 0


ClientStats = RetryStats  # the name ARCHITECTURE.md uses


class StatsCounter:
    """Thread-safe accumulator behind ``JiraClient.stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self._throttled = 0.0
        self._by_status: dict[int, int] = {}

    def response(self, status: int) -> None:
        with self._lock:
            self._requests += 1
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def no_response(self) -> None:
        with self._lock:
            self._requests += 1

    def retry(self) -> None:
        with self._lock:
            self._retries += 1

    def throttled(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._throttled += seconds

    def snapshot(self, token_refreshes: int = 0) -> RetryStats:
        with self._lock:
            return RetryStats(
                requests=self._requests,
                retries=self._retries,
                throttled_seconds=round(self._throttled, 3),
                responses_by_status=dict(self._by_status),
                token_refreshes=token_refreshes,
            )
