"""Where a local stack lives and which ports it uses.

The state directory (RECSYS_LOCAL_DIR, default .local) names the stack. Everything else the environment
decides about it (RECSYS_PORT_OFFSET, DATABASE_URL, PG_BIN_DIR) is recorded in ``<state dir>/stack.json`` by
the first ``up`` and read back by every later command, so ``make status`` or ``make down`` run without those
variables reach the stack whose pid files they read. A variable that is set and disagrees with the record is
an error naming both values, never a probe of another stack's ports. (RECSYS_RATE_LIMIT is not recorded: it
is one API start's setting, e.g. the benchmark's, and must not outlive that start.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from include import config
from include.stack.credentials import write_private

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
    "redis": 16379,
    "prometheus": 19090,
    "api": 18000,
    "airflow": 18080,
    # Where the scheduler and the triggerer serve task logs to the api-server (Airflow's defaults are
    # 8793/8794, which two stacks would share).
    "airflow_worker_logs": 18793,
    "airflow_trigger_logs": 18794,
}

# One rate limit over every key's plan ("requests/seconds"), for an API start that must not throttle, e.g. the
# benchmark's load generator. Empty (the default): each key's rate-limit plan decides (include/sql/0005_*).
DEFAULT_RATE_LIMIT = ""

# Airflow's executor for `up --airflow`, by the name `make airflow EXECUTOR=...` takes. LocalExecutor is the
# default; CeleryExecutor adds CELERY_WORKERS worker components fed through Redis (include/stack/components.py).
EXECUTORS: dict[str, str] = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
DEFAULT_EXECUTOR = "local"


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise StackConfigError(f"EXECUTOR must be one of {', '.join(EXECUTORS)}, got {name!r}")
    return name


# Where a stack records the settings the environment chose for it (mode 600: an external server's password).
STATE_FILE = "stack.json"

# The database roles and databases the stack provisions, one role per database.
AIRFLOW_DB = "airflow"
APP_DB = "app"
HISTORY_DB = "validation_history"  # the pipeline's run history (include/sql/validation_history/)
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


def _server_identity(server: PgServer | None) -> str:
    """A server as an operator names it, without its password."""
    return (
        "its own PostgreSQL"
        if server is None
        else f"postgres://{server.user}@{server.host}:{server.port}/{server.dbname}"
    )


def read_record(local_dir: str) -> tuple[dict[str, Any], str | None]:
    """(what ``up`` recorded for the stack in ``local_dir``, the file it came from); ({}, None) for a stack
    never started. A stack started before the record existed still has its env file, naming its port offset."""
    path = os.path.join(local_dir, STATE_FILE)
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh), path
    env_file = os.path.join(local_dir, "env")
    if os.path.exists(env_file):
        from include.stack.env import load_env

        offset = load_env(env_file).get("RECSYS_PORT_OFFSET", "").strip()
        if offset:
            return {"port_offset": _port_offset(offset)}, env_file
    return {}, None


def _conflict(local_dir: str, where: str | None, name: str, *, given: str, recorded: str) -> StackConfigError:
    return StackConfigError(
        f"{name}={given} conflicts with the stack in {local_dir}, which was started with {name}={recorded}"
        f" (recorded in {where}): unset {name} to use that stack, or set RECSYS_LOCAL_DIR to another"
        " directory for another stack"
    )


def _redis_identity(url: str | None) -> str:
    """A Redis URL without its password, fit for an error message."""
    if not url:
        return "the stack's own redis-server"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


@dataclass(frozen=True)
class StackSettings:
    repo: str
    local_dir: str
    port_offset: int = 0
    external_db: PgServer | None = None
    pg_bin_dir: str | None = None
    rate_limit: str = DEFAULT_RATE_LIMIT
    # REDIS_URL: an existing Redis for the response cache instead of the stack's own redis-server.
    redis_url: str | None = None
    # Recorded by `up --airflow` (make airflow [EXECUTOR=celery]), so status, down and the env file that tests
    # read agree with the Airflow that runs; a plain `up` keeps what the last `up --airflow` chose.
    executor: str = DEFAULT_EXECUTOR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StackSettings:
        """The stack of RECSYS_LOCAL_DIR: its recorded settings where the environment is silent, the
        environment's on a stack's first start; StackConfigError where the two disagree."""
        env = os.environ if environ is None else environ
        repo = config.project_root()
        local_dir = os.path.abspath(env.get("RECSYS_LOCAL_DIR") or os.path.join(repo, ".local"))
        recorded, where = read_record(local_dir)

        raw_offset = env.get("RECSYS_PORT_OFFSET", "").strip()
        port_offset = _port_offset(raw_offset) if raw_offset else recorded.get("port_offset", 0)
        if raw_offset and "port_offset" in recorded and port_offset != recorded["port_offset"]:
            recorded_offset = str(recorded["port_offset"])
            raise _conflict(local_dir, where, "RECSYS_PORT_OFFSET", given=raw_offset, recorded=recorded_offset)

        database_url = env.get("DATABASE_URL", "").strip()
        external_db = parse_database_url(database_url) if database_url else None
        if "external_db" in recorded:
            stored = PgServer(**recorded["external_db"]) if recorded["external_db"] else None
            if database_url and _server_identity(external_db) != _server_identity(stored):
                given, before = _server_identity(external_db), _server_identity(stored)
                raise _conflict(local_dir, where, "DATABASE_URL", given=given, recorded=before)
            external_db = external_db or stored  # the environment's password wins: it may have been rotated

        pg_bin_dir = env.get("PG_BIN_DIR") or None
        if pg_bin_dir and recorded.get("pg_bin_dir", pg_bin_dir) != pg_bin_dir:
            before = recorded["pg_bin_dir"] or "(unset)"
            raise _conflict(local_dir, where, "PG_BIN_DIR", given=pg_bin_dir, recorded=before)
        redis_url = env.get("REDIS_URL", "").strip() or None
        if redis_url and "redis_url" in recorded and recorded["redis_url"] != redis_url:
            given, before = _redis_identity(redis_url), _redis_identity(recorded["redis_url"])
            raise _conflict(local_dir, where, "REDIS_URL", given=given, recorded=before)
        return cls(
            repo=repo,
            local_dir=local_dir,
            port_offset=port_offset,
            external_db=external_db,
            pg_bin_dir=pg_bin_dir or recorded.get("pg_bin_dir"),
            rate_limit=env.get("RECSYS_RATE_LIMIT", "").strip() or DEFAULT_RATE_LIMIT,
            redis_url=redis_url or recorded.get("redis_url"),
            executor=check_executor(recorded.get("executor", DEFAULT_EXECUTOR)),
        )

    def record(self) -> None:
        """Write what the environment chose for this stack into its state directory (``up`` does)."""
        db = self.external_db
        state = {
            "port_offset": self.port_offset,
            "external_db": None
            if db is None
            else {"host": db.host, "port": db.port, "user": db.user, "password": db.password, "dbname": db.dbname},
            "pg_bin_dir": self.pg_bin_dir,
            "redis_url": self.redis_url,
            "executor": self.executor,
        }
        write_private(self.path(STATE_FILE), json.dumps(state, indent=2, sort_keys=True) + "\n")

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
