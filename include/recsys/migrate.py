"""A small versioned migration runner for the app schema.

Applies include/sql/NNNN_name.sql in version order, each file in its own transaction, and records it
in ``schema_migrations`` with a SHA-256 of its text. An applied file whose text changed (or that
disappeared) stops the run: the database no longer matches the code and a human must decide. A
Postgres advisory lock serialises concurrent runners (several stack starters, API replicas).

    python -m include.recsys.migrate [--sql-dir DIR] [--dsn-env NAME]     # DSN from $NAME, default RECSYS_DATABASE_URL

The pipeline's history database (include/sql/validation_history/) is migrated by the same runner.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass

from include import config

# Arbitrary but fixed: every runner on the same database must contend for the same key.
ADVISORY_LOCK_KEY = 7_316_202_411
FILE_PATTERN = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str


def default_sql_dir() -> str:
    return os.path.join(config.project_root(), "include", "sql")


def discover(sql_dir: str) -> list[Migration]:
    migrations: dict[int, Migration] = {}
    for name in sorted(os.listdir(sql_dir)):
        if not name.endswith(".sql"):
            continue
        match = FILE_PATTERN.match(name)
        if not match:
            raise MigrationError(f"migration file names must look like 0001_name.sql, found {name!r} in {sql_dir}")
        with open(os.path.join(sql_dir, name), "rb") as fh:
            raw = fh.read()
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"two migrations share version {version:04d}: {migrations[version].name}, {name}")
        migrations[version] = Migration(version, name, raw.decode(), hashlib.sha256(raw).hexdigest())
    return [migrations[v] for v in sorted(migrations)]


def _check_applied(applied: dict[int, tuple[str, str]], files: list[Migration], sql_dir: str) -> None:
    by_version = {m.version: m for m in files}
    for version, (name, checksum) in sorted(applied.items()):
        found = by_version.get(version)
        if found is None:
            raise MigrationError(f"applied migration {name} is missing from {sql_dir}")
        if found.name != name or found.checksum != checksum:
            raise MigrationError(
                f"applied migration {name} (sha256 {checksum[:12]}) was changed: {sql_dir} now has "
                f"{found.name} (sha256 {found.checksum[:12]}); add a new migration instead of editing an applied one"
            )


def migrate(dsn: str, *, sql_dir: str | None = None) -> list[str]:
    """Apply pending migrations; returns the file names applied by this call (empty when current)."""
    import psycopg2

    sql_dir = sql_dir or default_sql_dir()
    files = discover(sql_dir)
    conn = psycopg2.connect(dsn, connect_timeout=10)
    applied_now: list[str] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(),"
                " checksum text NOT NULL)"
            )
            conn.commit()
            cur.execute("SELECT version, name, checksum FROM schema_migrations")
            applied = {version: (name, checksum) for version, name, checksum in cur.fetchall()}
            conn.commit()
            _check_applied(applied, files, sql_dir)
            for migration in files:
                if migration.version in applied:
                    continue
                try:
                    cur.execute(migration.sql)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                    conn.commit()
                except psycopg2.Error as exc:
                    conn.rollback()
                    raise MigrationError(
                        f"migration {migration.name} failed and was rolled back: {exc}".strip()
                    ) from exc
                applied_now.append(migration.name)
            cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            conn.commit()
    finally:
        # Closing the session also releases the advisory lock if we failed while holding it.
        conn.close()
    return applied_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.recsys.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--sql-dir", default=None, help="directory of NNNN_name.sql files (default include/sql)")
    parser.add_argument("--dsn-env", default="RECSYS_DATABASE_URL", help="env var holding the database's URL")
    args = parser.parse_args(argv)
    dsn = os.environ.get(args.dsn_env, "").strip()
    if not dsn:
        print(f"{args.dsn_env} must be set to the database's postgresql:// URL", file=sys.stderr)
        return 2
    try:
        applied = migrate(dsn, sql_dir=args.sql_dir)
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print("\n".join(f"applied {name}" for name in applied) or "schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
