"""The recommendations response cache, in Redis (RECSYS_REDIS_URL; none set: no cache).

An entry is keyed by tenant, model version and a digest of (user, count, category filter), so a key's
tenant scopes every entry (two tenants with the same user ids never share one) and an answer is only ever
served for the version that computed it. A deploy rebuilds the model it loads (its users' history may have
grown), so deploying a version drops that version's entries and those of the live version it replaces;
entries also expire after ``ttl_s``.

Redis is an accelerator, never a dependency of serving: every call is bounded by a short socket timeout,
and once Redis refuses connections (or times out ``TIMEOUTS_TO_BYPASS`` times in a row) the cache is bypassed
for ``retry_after_s`` before Redis is tried again, so an outage costs a request one failed round-trip at most
once a second instead of a timeout each. A lone timeout is a busy machine, not an outage: it costs that
request its cache entry, nothing more (bypassing on it dropped a loaded run's hit rate from 81% to 67%). /health reports a
failing cache as "degraded" with HTTP 200: recommendations are still served, computed per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter

import redis
import redis.asyncio

log = logging.getLogger(__name__)

KEY_PREFIX = "recs:v1"
RESULTS = ("hit", "miss", "error", "bypass")
TIMEOUTS_TO_BYPASS = 3


def entry_key(*, tenant_id: str, version: str, user_id: str, count: int, category: str | None) -> str:
    """``recs:v1:<tenant>:<version>:<digest>``. User ids and categories are the tenant's own text (any
    characters, ':' and '*' included), so they enter the key only through the digest."""
    request = json.dumps([user_id, count, category], ensure_ascii=False, separators=(",", ":"))
    return f"{KEY_PREFIX}:{tenant_id}:{version}:{hashlib.sha256(request.encode()).hexdigest()[:32]}"


def version_pattern(*, tenant_id: str, version: str) -> str:
    return f"{KEY_PREFIX}:{tenant_id}:{version}:*"


class ResponseCache:
    def __init__(
        self, url: str | None, *, ttl_s: float = 300.0, timeout_s: float = 0.1, retry_after_s: float = 1.0
    ) -> None:
        self.enabled = url is not None
        self.ttl_s = ttl_s
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self._timeouts = 0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._async = self._sync = None
        if url is not None:
            options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry_on_timeout": False}
            self._async = redis.asyncio.Redis.from_url(url, **options)
            # For /health and deploys, which run in worker threads; longer timeouts, they are off the hot path.
            self._sync = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def _count(self, result: str) -> None:
        with self._lock:
            self._counts[result] += 1

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, (redis.TimeoutError, TimeoutError)):
            self._timeouts += 1
            if self._timeouts < TIMEOUTS_TO_BYPASS:
                return
        self._timeouts = 0
        first = self._down_until < time.monotonic()
        self._down_until = time.monotonic() + self._retry_after_s
        if first:
            log.warning("response cache unavailable, serving without it for %ss: %s", self._retry_after_s, exc)

    def _bypassed(self) -> bool:
        return self._down_until > time.monotonic()

    async def get(self, key: str) -> bytes | None:
        """The cached answer, or None on a miss or while Redis is unreachable."""
        if self._async is None:
            return None
        if self._bypassed():
            self._count("bypass")
            return None
        try:
            value = await self._async.get(key)
        except (redis.RedisError, OSError) as exc:
            self._count("error")
            self._failed(exc)
            return None
        self._timeouts = 0
        self._count("hit" if value is not None else "miss")
        return value

    async def put(self, key: str, value: bytes) -> None:
        if self._async is None or self._bypassed():
            return
        try:
            await self._async.set(key, value, px=int(self.ttl_s * 1000))
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)

    def invalidate(self, *, tenant_id: str, version: str) -> int:
        """Drop every entry of one tenant's version; returns how many. A cache that is down holds nothing
        this process could serve before the entries expire, so a failure here is logged, not raised."""
        if self._sync is None:
            return 0
        dropped = 0
        try:
            batch = []
            for key in self._sync.scan_iter(match=version_pattern(tenant_id=tenant_id, version=version), count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    dropped += self._sync.unlink(*batch)
                    batch = []
            if batch:
                dropped += self._sync.unlink(*batch)
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "cache entries of tenant %s version %s not dropped (they expire in %ss): %s",
                tenant_id,
                version,
                self.ttl_s,
                exc,
            )
        return dropped

    def ping(self) -> None:
        """Raises if Redis does not answer (the /health check)."""
        if self._sync is None:
            raise RuntimeError("no cache configured (RECSYS_REDIS_URL)")
        self._sync.ping()
        # A successful ping ends the bypass early: the hit rate recovers as soon as Redis is back.
        self._down_until = 0.0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {result: self._counts[result] for result in RESULTS}

    async def close(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        if self._sync is not None:
            self._sync.close()
