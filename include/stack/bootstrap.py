"""Idempotent bootstrap of a running stack: buckets, topics, the app schema, Airflow's metadata DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

from include import config
from include.stack import probes
from include.stack.process import log_tail
from include.stack.settings import StackSettings

AIRFLOW_MIGRATE_TIMEOUT_S = 900


class BootstrapError(RuntimeError):
    pass


def ensure_buckets(endpoint: str, *, access_key: str, secret_key: str) -> list[str]:
    client = probes.s3_client(endpoint, access_key=access_key, secret_key=secret_key)
    created = []
    for bucket in config.BUCKETS:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
            created.append(bucket)
    return created


def ensure_topics(bootstrap: str) -> list[str]:
    """Create missing topics; an existing topic with the wrong partition count is an error, not a fix."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-bootstrap")
    try:
        existing = set(admin.list_topics())
        missing = [t for t in config.TOPICS if t.name not in existing]
        if missing:
            admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in missing])
        described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(list(config.TOPIC_NAMES))}
    finally:
        admin.close()
    wrong = [f"{t.name} has {described.get(t.name)}" for t in config.TOPICS if described.get(t.name) != t.partitions]
    if wrong:
        expected = ", ".join(f"{t.name}={t.partitions}" for t in config.TOPICS)
        raise BootstrapError(f"topic partitions differ from include/config.py ({expected}): {'; '.join(wrong)}")
    return [t.name for t in missing]


def _airflow_db_revision(dsn: str) -> str | None:
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def migrate_airflow_db(settings: StackSettings, stack_env: dict[str, str], *, airflow_dsn: str) -> bool:
    """`airflow db migrate`, skipped when the DB is at the revision this Airflow version left it at.

    A stamp records (Airflow version, revision) after each successful migrate; comparing it with the
    DB's alembic revision costs one query instead of the ~20 s an `airflow` command takes to start.
    """
    stamp_path = os.path.join(stack_env["AIRFLOW_HOME"], ".db-migrated.json")
    installed = version("apache-airflow")
    current = _airflow_db_revision(airflow_dsn)
    try:
        with open(stamp_path) as fh:
            stamp = json.load(fh)
    except (FileNotFoundError, ValueError):
        stamp = {}
    if current is not None and stamp == {"airflow_version": installed, "revision": current}:
        return False
    os.makedirs(stack_env["AIRFLOW_HOME"], exist_ok=True)
    log = settings.log_file("airflow-db-migrate")
    with open(log, "ab") as out:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env={**os.environ, **stack_env},
            cwd=settings.repo,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=AIRFLOW_MIGRATE_TIMEOUT_S,
        )
    if result.returncode != 0:
        raise BootstrapError(
            f"`airflow db migrate` failed (exit {result.returncode}); log: {log}\n{log_tail(log, lines=20)}"
        )
    with open(stamp_path, "w") as fh:
        json.dump({"airflow_version": installed, "revision": _airflow_db_revision(airflow_dsn)}, fh)
    return True
