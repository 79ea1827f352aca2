"""The simulator's injectable clock: wall time from a chosen start, plus manual advances."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Optional, Union


def to_epoch_ms(value: Union[int, float, str, datetime]) -> int:
    """Epoch milliseconds from epoch ms, an aware datetime or an ISO-8601 string (naive = UTC)."""
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


class Clock:
    """`now_ms()` = start + elapsed wall time (unless frozen) + everything passed to `advance`.

    OAuth expiries, JQL relative dates, "updated" stamps of mutations and the trailing minute hidden by
    /worklog/updated all read this clock, so tests can force a one-hour expiry with `advance(3600)`.
    """

    def __init__(self, start: Optional[Union[int, float, str, datetime]] = None, frozen: bool = False):
        if start is None:
            start_ms = int(time.time() // 60 * 60 * 1000)  # now, rounded down to the minute
        else:
            start_ms = to_epoch_ms(start)
        self.start_ms = start_ms
        self.frozen = frozen
        self._wall_origin = time.monotonic()
        self._advanced_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        elapsed = 0 if self.frozen else int((time.monotonic() - self._wall_origin) * 1000)
        with self._lock:
            return self.start_ms + elapsed + self._advanced_ms

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=timezone.utc)

    def advance(self, seconds: float) -> int:
        """Move the clock forward; returns the new now in epoch ms."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._advanced_ms += int(seconds * 1000)
        return self.now_ms()
