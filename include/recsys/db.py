"""A small Postgres connection pool that survives database restarts.

Connections are pinged on checkout and dropped when broken, so after an outage the next caller gets
a fresh connection instead of an error; while the database is down, callers get DatabaseUnavailable
(the API maps it to 503 database_unavailable, the worker backs off and retries).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions
import psycopg2.extras

CONNECT_TIMEOUT_S = 2
# Long enough for a 5,000-row upsert, short enough that a wedged server cannot hang a request.
STATEMENT_TIMEOUT_MS = 30_000


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or dropped the connection."""


_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class Database:
    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        self._idle: list[psycopg2.extensions.connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def _connect(self) -> psycopg2.extensions.connection:
        try:
            return psycopg2.connect(
                self._url,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                application_name="recsys",
            )
        except _CONNECTION_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {_first_line(exc)}") from None

    def _checkout(self) -> psycopg2.extensions.connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                conn.rollback()
                return conn
            except _CONNECTION_ERRORS:
                conn.close()

    def _release(self, conn: psycopg2.extensions.connection, *, broken: bool) -> None:
        if broken or conn.closed:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    @contextmanager
    def transaction(self) -> Iterator[psycopg2.extras.RealDictCursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error."""
        if not self._slots.acquire(timeout=CONNECT_TIMEOUT_S * 2):
            raise DatabaseUnavailable("all database connections are busy")
        try:
            conn = self._checkout()
            broken = False
            try:
                with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                    yield cur
                conn.commit()
            except _CONNECTION_ERRORS as exc:
                broken = True
                raise DatabaseUnavailable(f"database connection lost: {_first_line(exc)}") from None
            except BaseException:
                if not conn.closed:
                    conn.rollback()
                raise
            finally:
                self._release(conn, broken=broken)
        finally:
            self._slots.release()

    def ping(self) -> None:
        with self.transaction() as cur:
            cur.execute("SELECT 1")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _first_line(exc: BaseException) -> str:
    # psycopg2 messages can span lines with hints; one line keeps logs greppable.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
