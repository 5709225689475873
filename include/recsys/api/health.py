"""Dependency health: database, object store and Kafka, each bounded in time and briefly cached.

Checks run on a small thread pool with a deadline, so a hung dependency makes /health answer
"degraded" within the deadline instead of hanging. A check still in flight is awaited again rather
than started twice, and results are cached for CACHE_S so a load test of /health does not hammer
the dependencies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from kafka import KafkaConsumer

from include import config
from include.recsys.api.cache import ResponseCache
from include.recsys.db import Database
from include.recsys.settings import Settings
from include.recsys.storage import client as s3_client

DEADLINE_S = 2.0
CACHE_S = 1.5
# Dependencies whose failure degrades the platform without stopping it: /health stays 200 for them.
NON_CRITICAL = frozenset({"cache"})


def _kafka_check(settings: Settings) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=int(DEADLINE_S * 1000) + 500,
        bootstrap_timeout_ms=int(DEADLINE_S * 1000),
        reconnect_backoff_max_ms=500,
        connections_max_idle_ms=int(DEADLINE_S * 1000) + 5000,
    )
    try:
        topics = consumer.topics()
        if config.INTERACTIONS_TOPIC not in topics:
            raise RuntimeError(f"topic {config.INTERACTIONS_TOPIC} missing from broker metadata")
    finally:
        consumer.close()


class HealthChecker:
    def __init__(self, settings: Settings, db: Database, *, cache: ResponseCache | None = None) -> None:
        s3 = s3_client(settings, timeout_s=DEADLINE_S)

        def storage_check() -> None:
            if not s3.bucket_exists(config.MODELS_BUCKET):
                raise RuntimeError(f"bucket {config.MODELS_BUCKET} does not exist")

        self._checks: dict[str, Callable[[], None]] = {
            "database": db.ping,
            "storage": storage_check,
            "kafka": lambda: _kafka_check(settings),
        }
        if cache is not None and cache.enabled:
            self._checks["cache"] = cache.ping
        self._pool = ThreadPoolExecutor(max_workers=len(self._checks), thread_name_prefix="health")
        self._in_flight: dict[str, Future] = {}
        self._cached: tuple[float, dict[str, dict]] | None = None
        self._lock = threading.Lock()

    def _timed(self, check: Callable[[], None]) -> dict:
        started = time.perf_counter()
        check()
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    def run(self) -> dict[str, dict]:
        """{name: {"ok": bool, "latency_ms"| "error": ...}} for every dependency."""
        with self._lock:
            if self._cached is not None and self._cached[0] > time.monotonic():
                return self._cached[1]
            for name, check in self._checks.items():
                future = self._in_flight.get(name)
                if future is None or future.done():
                    self._in_flight[name] = self._pool.submit(self._timed, check)
            futures = dict(self._in_flight)
        wait(futures.values(), timeout=DEADLINE_S)
        results = {}
        for name, future in futures.items():
            if not future.done():
                results[name] = {"ok": False, "error": f"no answer within {DEADLINE_S:g}s"}
            elif future.exception() is not None:
                exc = future.exception()
                results[name] = {"ok": False, "error": (str(exc).splitlines() or [type(exc).__name__])[0][:300]}
            else:
                results[name] = future.result()
        with self._lock:
            self._cached = (time.monotonic() + CACHE_S, results)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
