"""The points-based hourly quota of OAuth 2.0 (3LO) apps (FACTS.md §2.1).

Every 3LO request costs 1 point plus 1 per core object it returns (issues, projects, ...) or 2 per identity
object (users, groups, project roles, permissions); API-token traffic is not charged. Quotas reset at the top of
each UTC hour; once the hour's points are spent "all requests are denied until the next hourly reset. There is
no gradual throttling." Enforced-quota headers: `RateLimit-Policy` on every charged answer, `RateLimit` with the
remaining points once about 80 % is used, and on the denial a 429 with `Retry-After` (seconds to the reset),
`X-RateLimit-Reset` (`yyyy-MM-ddTHH:mmZ`) and `RateLimit-Reason: jira-quota-global-based`.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Optional

from .clock import Clock
from .faults import RATE_LIMIT_BODY, Planned
from .timeutil import MS_PER_HOUR

POLICY = "global-app-quota"
#: lists a response's objects sit under; a bare array counts its items, any other object counts as one
_LIST_KEYS = ("issues", "values", "records", "comments", "worklogs", "histories")
_IDENTITY_ROUTES = ("/user", "/group", "/role", "/permission", "/mypermissions")


def points(route_key: str, body: Any) -> int:
    """What one answer costs: 1 + objects (identity objects count 2)."""
    if isinstance(body, list):
        objects = len(body)
    elif isinstance(body, dict):
        listed = next((body[k] for k in _LIST_KEYS if isinstance(body.get(k), list)), None)
        objects = len(listed) if listed is not None else 1
    else:
        objects = 0
    weight = 2 if any(part in route_key for part in _IDENTITY_ROUTES) else 1
    return 1 + weight * objects


class PointsQuota:
    """One app's hourly points on the simulator's clock (so tests can move to the next hour)."""

    def __init__(self, points_per_hour: int, clock: Clock):
        self.limit = points_per_hour
        self.clock = clock
        self.hour = -1
        self.spent = 0
        self.denied = 0
        self._lock = threading.Lock()

    def _roll(self, now_ms: int) -> None:
        hour = now_ms // MS_PER_HOUR
        if hour != self.hour:
            self.hour, self.spent = hour, 0

    def denial(self) -> Optional[Planned]:
        """The 429 every request gets while the hour's points are spent, else None."""
        with self._lock:
            now = self.clock.now_ms()
            self._roll(now)
            if self.spent < self.limit:
                return None
            self.denied += 1
            reset_ms = (self.hour + 1) * MS_PER_HOUR
        reset = datetime.fromtimestamp(reset_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        seconds = max(1, -(-(reset_ms - now) // 1000))
        return Planned("status", 429, {"Retry-After": str(seconds), "X-RateLimit-Limit": str(self.limit),
                                       "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset,
                                       "RateLimit-Reason": "jira-quota-global-based",
                                       "RateLimit-Policy": f'"{POLICY}";q={self.limit};w=3600'}, RATE_LIMIT_BODY)

    def charge(self, route_key: str, body: Any) -> dict[str, str]:
        """Spend an answer's points; the quota headers to send with it."""
        cost = points(route_key, body)
        with self._lock:
            now = self.clock.now_ms()
            self._roll(now)
            self.spent += cost
            remaining = max(0, self.limit - self.spent)
            seconds = max(0, ((self.hour + 1) * MS_PER_HOUR - now) // 1000)
        headers = {"RateLimit-Policy": f'"{POLICY}";q={self.limit};w=3600'}
        if remaining <= self.limit * 0.2:
            headers["RateLimit"] = f'"{POLICY}";r={remaining};t={seconds}'
        return headers
