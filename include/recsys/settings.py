"""The reference platform's settings, read from the environment only (RECSYS_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class SettingsError(ValueError):
    """A RECSYS_* variable is missing or malformed."""


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} must be set (see include/recsys/settings.py)")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def parse_rate_limit(raw: str) -> tuple[int, float]:
    """ "60/10" -> (60 requests, 10.0 seconds)."""
    try:
        count, _, seconds = raw.partition("/")
        limit, window = int(count), float(seconds)
    except ValueError:
        raise SettingsError(f"RECSYS_RATE_LIMIT must look like '60/10' (requests/seconds), got {raw!r}") from None
    if limit < 1 or window <= 0:
        raise SettingsError(f"RECSYS_RATE_LIMIT needs requests >= 1 and seconds > 0, got {raw!r}")
    return limit, window


@dataclass(frozen=True)
class Settings:
    database_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_secure: bool
    kafka_bootstrap: str
    admin_token: str
    # RECSYS_RATE_LIMIT: one limit for every key of this process, over the plans (the bench's unthrottled
    # load generator, a test's tiny limit); None lets each key's plan decide.
    rate_limit: int | None
    rate_window_s: float | None
    max_body_bytes: int
    # The recommendations response cache (include/recsys/api/cache.py); None: no cache.
    redis_url: str | None = None
    cache_ttl_s: float = 300.0
    # RECSYS_METRICS_TOKEN: the bearer token a Prometheus scraper presents to GET /metrics (which names tenants
    # and their model versions); the admin token is accepted too. None: only the admin token may scrape.
    metrics_token: str | None = None

    def __repr__(self) -> str:
        # Keeps secrets out of logs and tracebacks that print the settings.
        return (
            f"Settings(s3_endpoint={self.s3_endpoint!r}, kafka_bootstrap={self.kafka_bootstrap!r}, "
            f"rate_limit={'plans' if self.rate_limit is None else f'{self.rate_limit}/{self.rate_window_s:g}s'}, "
            f"max_body_bytes={self.max_body_bytes})"
        )


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    raw_limit = env.get("RECSYS_RATE_LIMIT", "").strip()
    limit, window = parse_rate_limit(raw_limit) if raw_limit else (None, None)
    max_body = env.get("RECSYS_MAX_BODY_BYTES", "").strip() or str(64 * 1024)
    if not max_body.isdigit() or int(max_body) < 1024:
        raise SettingsError(f"RECSYS_MAX_BODY_BYTES must be an integer >= 1024, got {max_body!r}")
    cache_ttl = env.get("RECSYS_CACHE_TTL_S", "").strip() or "300"
    try:
        cache_ttl_s = float(cache_ttl)
    except ValueError:
        cache_ttl_s = 0.0
    if not cache_ttl_s > 0:
        raise SettingsError(f"RECSYS_CACHE_TTL_S must be a number of seconds > 0, got {cache_ttl!r}")
    return Settings(
        database_url=_required(env, "RECSYS_DATABASE_URL"),
        s3_endpoint=_required(env, "RECSYS_S3_ENDPOINT"),
        s3_access_key=_required(env, "RECSYS_S3_ACCESS_KEY"),
        s3_secret_key=_required(env, "RECSYS_S3_SECRET_KEY"),
        s3_secure=_bool(env, "RECSYS_S3_SECURE", False),
        kafka_bootstrap=_required(env, "RECSYS_KAFKA_BOOTSTRAP"),
        admin_token=_required(env, "RECSYS_ADMIN_TOKEN"),
        rate_limit=limit,
        rate_window_s=window,
        max_body_bytes=int(max_body),
        redis_url=env.get("RECSYS_REDIS_URL", "").strip() or None,
        cache_ttl_s=cache_ttl_s,
        metrics_token=env.get("RECSYS_METRICS_TOKEN", "").strip() or None,
    )


@lru_cache(maxsize=1)
def get() -> Settings:
    return load()
