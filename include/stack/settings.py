"""Where a local stack lives and which ports it uses, read from the environment once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from include import config

HOST = "127.0.0.1"

# Defaults before RECSYS_PORT_OFFSET. Every port SeaweedFS opens is pinned, so two stacks with
# different offsets never meet on a port a server picked for itself.
BASE_PORTS: dict[str, int] = {
    "postgres": 15432,
    "s3": 19000,
    "s3_grpc": 19001,
    "weed_master": 19333,
    "weed_master_grpc": 19334,
    "weed_volume": 19080,
    "weed_volume_grpc": 19081,
    "weed_filer": 19888,
    "weed_filer_grpc": 19889,
    "weed_admin": 19646,
    # weed mini's built-in worker dials admin.port + 10000 whatever -admin.port.grpc says (measured
    # on seaweedfs 4.48), so the admin gRPC port has to sit exactly there.
    "weed_admin_grpc": 29646,
    "kafka": 19092,
    "api": 18000,
    "airflow": 18080,
    # Where the scheduler and the triggerer serve task logs to the api-server (Airflow's defaults are
    # 8793/8794, which two stacks would share).
    "airflow_worker_logs": 18793,
    "airflow_trigger_logs": 18794,
}

# The API's per-key rate limit ("requests/seconds"). RECSYS_RATE_LIMIT overrides it for a stack that
# must not throttle, e.g. the benchmark's load generator; the journey's 429 probe needs the default.
DEFAULT_RATE_LIMIT = "60/10"

# The database roles and databases the stack provisions, one role per database.
AIRFLOW_DB = "airflow"
APP_DB = "app"
PG_SUPERUSER = "postgres"


class StackConfigError(ValueError):
    """An environment variable that configures the stack is malformed."""


@dataclass(frozen=True)
class PgServer:
    """A Postgres server reached as a superuser-capable role (from DATABASE_URL or our own)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    def __repr__(self) -> str:
        return f"PgServer(host={self.host!r}, port={self.port}, user={self.user!r}, dbname={self.dbname!r})"


def parse_database_url(url: str) -> PgServer:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise StackConfigError(
            f"DATABASE_URL must be a postgres:// or postgresql:// URL, got scheme {parts.scheme or 'none'!r}"
        )
    if not parts.hostname or not parts.username:
        raise StackConfigError("DATABASE_URL must name a host and a user, e.g. postgres://admin:pw@db:5432/postgres")
    try:
        port = parts.port or 5432
    except ValueError:
        raise StackConfigError("DATABASE_URL has a port that is not a number") from None
    return PgServer(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
    )


def _port_offset(raw: str) -> int:
    try:
        offset = int(raw)
    except ValueError:
        raise StackConfigError(f"RECSYS_PORT_OFFSET must be an integer, got {raw!r}") from None
    top = max(BASE_PORTS.values()) + offset
    if offset < 0 or top > 65535:
        raise StackConfigError(f"RECSYS_PORT_OFFSET must keep every port in 1..65535, got {offset} (highest {top})")
    return offset


@dataclass(frozen=True)
class StackSettings:
    repo: str
    local_dir: str
    port_offset: int = 0
    external_db: PgServer | None = None
    pg_bin_dir: str | None = None
    rate_limit: str = DEFAULT_RATE_LIMIT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackSettings:
        env = os.environ if environ is None else environ
        repo = config.project_root()
        database_url = env.get("DATABASE_URL", "").strip()
        return cls(
            repo=repo,
            local_dir=os.path.abspath(env.get("RECSYS_LOCAL_DIR") or os.path.join(repo, ".local")),
            port_offset=_port_offset(env.get("RECSYS_PORT_OFFSET", "").strip() or "0"),
            external_db=parse_database_url(database_url) if database_url else None,
            pg_bin_dir=env.get("PG_BIN_DIR") or None,
            rate_limit=env.get("RECSYS_RATE_LIMIT", "").strip() or DEFAULT_RATE_LIMIT,
        )

    def port(self, name: str) -> int:
        return BASE_PORTS[name] + self.port_offset

    def path(self, *parts: str) -> str:
        return os.path.join(self.local_dir, *parts)

    @property
    def env_file(self) -> str:
        return self.path("env")

    @property
    def secrets_file(self) -> str:
        return self.path("secrets.json")

    def log_file(self, component: str) -> str:
        return self.path("logs", f"{component}.log")

    def pid_file(self, component: str) -> str:
        return self.path("run", f"{component}.pid")

    def pg_endpoint(self) -> tuple[str, int]:
        if self.external_db is not None:
            return self.external_db.host, self.external_db.port
        return HOST, self.port("postgres")
