"""The retry policy on a fake clock: Retry-After is a floor, X-RateLimit-Reset is the fallback, then
backoff."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jira_assets.jira import RetryPolicy, ThrottleGate


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: FakeTime, pick: str = "high", **kwargs) -> RetryPolicy:
    """A policy whose jitter always lands on one end of its range."""
    choose = (lambda low, high: high) if pick == "high" else (lambda low, high: low)
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, random=choose, **kwargs)


@pytest.mark.parametrize("pick", ["low", "high"])
def test_retry_after_is_a_floor_and_jitter_only_adds(pick):
    fake = FakeTime()
    delay = policy(fake, pick).retry_delay(2, {"Retry-After": "5"})
    assert 5.0 <= delay <= 5.0 * 1.3
    assert delay == (5.0 if pick == "low" else 6.5)


def test_retry_after_zero_means_retry_now():
    fake = FakeTime()
    assert policy(fake).retry_delay(1, {"Retry-After": "0"}) == 0.0


def test_retry_after_as_http_date_counts_from_the_clock():
    fake = FakeTime(datetime(2026, 3, 26, 15, 59, 50, tzinfo=timezone.utc).timestamp())
    delay = policy(fake, "low").retry_delay(1, {"Retry-After": "Thu, 26 Mar 2026 16:00:00 GMT"})
    assert delay == pytest.approx(10.0)


def test_without_retry_after_x_ratelimit_reset_at_minute_precision_is_the_floor():
    fake = FakeTime(datetime(2026, 3, 26, 15, 59, 30, tzinfo=timezone.utc).timestamp())
    delay = policy(fake, "low").retry_delay(1, {"X-RateLimit-Reset": "2026-03-26T16:00Z"})
    assert delay == pytest.approx(30.0)


def test_a_reset_in_the_past_falls_back_to_exponential_backoff():
    fake = FakeTime(datetime(2026, 3, 26, 16, 5, tzinfo=timezone.utc).timestamp())
    delay = policy(fake, "low").retry_delay(1, {"X-RateLimit-Reset": "2026-03-26T16:00:00Z"})
    assert delay == pytest.approx(1.4)


def test_backoff_doubles_from_two_seconds_with_jitter_and_a_cap():
    fake = FakeTime()
    low, high = policy(fake, "low", max_delay=30), policy(fake, "high", max_delay=30)
    assert [low.backoff(a) for a in range(1, 7)] == pytest.approx([1.4, 2.8, 5.6, 11.2, 21.0, 21.0])
    assert [high.backoff(a) for a in range(1, 7)] == pytest.approx([2.6, 5.2, 10.4, 20.8, 39.0, 39.0])


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("GET", "/rest/api/2/field", True),
        ("POST", "/rest/api/2/search/jql", True),
        ("POST", "/rest/api/2/worklog/list", True),
        ("POST", "/rest/api/2/search/approximate-count", True),
        ("POST", "/rest/api/2/changelog/bulkfetch", True),
        ("POST", "/rest/api/2/issue", False),
        ("POST", "/rest/api/2/issue/10001/comment", False),
        ("PATCH", "/rest/api/2/issue/10001", False),
    ],
)
def test_only_idempotent_requests_and_read_only_posts_are_retried(method, path, expected):
    assert RetryPolicy().may_retry(method, path) is expected


def test_the_policy_is_immutable():
    with pytest.raises(Exception):
        RetryPolicy().max_attempts = 9  # type: ignore[misc]


def test_the_throttle_gate_holds_every_waiter_until_the_instant():
    fake = FakeTime()
    gate = ThrottleGate()
    gate.hold_until(fake.now + 5)
    waited = gate.wait(policy(fake))
    assert waited == pytest.approx(5.0)
    assert fake.sleeps == [pytest.approx(5.0)]
    assert gate.wait(policy(fake)) == 0.0  # once open it stays open


def test_the_throttle_gate_never_moves_backwards():
    fake = FakeTime()
    gate = ThrottleGate()
    gate.hold_until(fake.now + 10)
    gate.hold_until(fake.now + 2)  # a later, shorter 429 must not shorten an earlier wait
    assert gate.wait(policy(fake)) == pytest.approx(10.0)
