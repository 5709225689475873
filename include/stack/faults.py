"""Fault injection into a running local stack: the real processes, really stopped, killed and blocked.

The journey's fault drills (plugins/journey/resilience.py) and the resilience tests break one platform
component at a time through this module and restore it afterwards. Only a stack this checkout started can
be broken: a component without a pid file here is refused with a clear error, so a drill pointed at a real
deployment fails instead of pretending.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from include.stack import credentials, lifecycle, process
from include.stack.postgres import autocommit_connection
from include.stack.settings import APP_DB, HOST, PG_SUPERUSER, PgServer, StackSettings


class FaultInjectionError(RuntimeError):
    """The stack cannot be broken (or restored) as asked."""


def _quiet(_: str) -> None:
    pass


class LocalStackFaults:
    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings.from_env()

    def _pid(self, component: str) -> int:
        pid = process.running_pid(self.settings.pid_file(component))
        if pid is None:
            raise FaultInjectionError(
                f"{component} is not a running process of the local stack at {self.settings.local_dir}: "
                "fault drills only run against a stack started by `make up`"
            )
        return pid

    def stop(self, component: str) -> None:
        self._pid(component)
        lifecycle.down(self.settings, only=[component], log=_quiet)

    def start(self, component: str) -> None:
        lifecycle.up(self.settings, only=[component], airflow_db=False, log=_quiet)

    def kill(self, component: str, *, timeout_s: float = 10.0) -> int:
        """SIGKILL, no chance to finish anything: what a crash or the OOM killer does. Returns the pid."""
        pid = self._pid(component)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while process.running_pid(self.settings.pid_file(component)) is not None:
            if time.monotonic() > deadline:
                raise FaultInjectionError(f"{component} (pid {pid}) still running {timeout_s:g}s after SIGKILL")
            time.sleep(0.05)
        return pid

    @contextmanager
    def stopped(self, component: str) -> Iterator[None]:
        self.stop(component)
        try:
            yield
        finally:
            self.start(component)

    def _superuser(self) -> PgServer:
        if self.settings.external_db is not None:
            return self.settings.external_db
        secrets = credentials.load_or_create(self.settings.secrets_file)
        return PgServer(HOST, self.settings.port("postgres"), PG_SUPERUSER, secrets.pg_superuser_password, "postgres")

    def _admin_sql(self, *statements: str) -> None:
        conn = autocommit_connection(self._superuser())
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    @contextmanager
    def app_database_down(self) -> Iterator[None]:
        """The platform's database refuses every connection and drops the open ones.

        The app database is blocked rather than the server stopped because Airflow's metadata database
        lives on the same local server, and the drill must break the platform, not the orchestrator.
        """
        self._admin_sql(
            f"ALTER DATABASE {APP_DB} ALLOW_CONNECTIONS false",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{APP_DB}' AND pid <> pg_backend_pid()",
        )
        try:
            yield
        finally:
            self._admin_sql(f"ALTER DATABASE {APP_DB} ALLOW_CONNECTIONS true")
