from __future__ import annotations

import pytest

from include.recsys.api.ratelimit import RateLimiter
from include.recsys.settings import SettingsError, parse_rate_limit

PLAN_3_PER_10 = {"limit": 3, "window_s": 10}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_limit_per_sliding_window_then_reports_the_wait():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    admitted = []
    for _ in range(3):
        admitted.append(limiter.acquire("k", **PLAN_3_PER_10))
        clock.now += 1
    assert admitted == [0.0, 0.0, 0.0]
    clock.now += 4  # t=7: the first request (t=0) leaves the window at t=10
    assert limiter.acquire("k", **PLAN_3_PER_10) == pytest.approx(3.0)
    clock.now += 3
    assert limiter.acquire("k", **PLAN_3_PER_10) == 0.0  # exactly one slot opened
    assert limiter.acquire("k", **PLAN_3_PER_10) == pytest.approx(1.0)


def test_keys_are_limited_independently():
    limiter = RateLimiter(clock=Clock())
    assert limiter.acquire("a", limit=1, window_s=10) == 0.0
    assert limiter.acquire("b", limit=1, window_s=10) == 0.0
    assert limiter.acquire("a", limit=1, window_s=10) > 0


def test_refused_requests_do_not_consume_slots():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limiter.acquire("k", limit=2, window_s=10), limiter.acquire("k", limit=2, window_s=10)
    for _ in range(50):
        assert limiter.acquire("k", limit=2, window_s=10) > 0
    clock.now += 10
    assert limiter.acquire("k", limit=2, window_s=10) == 0.0


def test_a_plan_change_applies_at_the_next_request():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for _ in range(5):
        assert limiter.acquire("k", limit=100, window_s=10) == 0.0
    # Lowered to 2: the key has made 5 in the window already, so it waits for the 2nd newest to age out.
    assert limiter.acquire("k", limit=2, window_s=10) == pytest.approx(10.0)
    clock.now += 10
    assert limiter.acquire("k", limit=2, window_s=10) == 0.0
    # Raised again: admitted at once.
    assert limiter.acquire("k", limit=100, window_s=10) == 0.0


def test_a_plan_must_admit_something():
    with pytest.raises(ValueError, match="limit >= 1"):
        RateLimiter().acquire("k", limit=0, window_s=10)


def test_retry_after_rounds_up_to_whole_seconds():
    assert RateLimiter.retry_after_header(0.2) == "1"
    assert RateLimiter.retry_after_header(5.01) == "6"


def test_rate_limit_setting_parsing():
    assert parse_rate_limit("60/10") == (60, 10.0)
    for bad in ("60", "a/b", "0/10", "5/0"):
        with pytest.raises(SettingsError, match="RECSYS_RATE_LIMIT"):
            parse_rate_limit(bad)
