"""Per-API-key rate limiting: at most ``limit`` requests in any sliding window of ``window_s`` seconds.

The limit and window come with every call: they are the key's plan (include/sql/0005_rate_plans.sql), which
the admin API may change while the process runs, so a plan change applies at the key's next request.
A sliding log (one timestamp per admitted request, at most ``limit`` kept per key) is exact, unlike a
fixed window that admits up to twice the limit across a boundary, and it gives an exact Retry-After.
In-process state is enough because the reference platform serves from a single process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, *, limit: int, window_s: float) -> float:
        """0.0 if the request is admitted, else the seconds until it would be."""
        if limit < 1 or window_s <= 0:
            raise ValueError(f"rate limit needs limit >= 1 and window_s > 0, got {limit}/{window_s}")
        now = self._clock()
        with self._lock:
            log = self._logs.get(key)
            if log is None or log.maxlen != limit:
                # A new plan keeps the newest timestamps: lowering a limit takes effect at once.
                log = self._logs[key] = deque(log or (), maxlen=limit)
            if len(log) == limit:
                oldest = log[0]
                if now - oldest < window_s:
                    return oldest + window_s - now
            # Full deque: appending drops the oldest, which just fell out of the window.
            log.append(now)
            return 0.0

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        # Retry-After is whole seconds; rounding down would invite a retry that is refused again.
        return str(max(1, math.ceil(wait_s)))
