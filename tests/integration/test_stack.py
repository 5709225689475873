"""The running default stack (make up): each server answers for real, with the stack's credentials."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import threading
from urllib.parse import quote

import psycopg2
import pytest
from kafka import KafkaAdminClient
from minio import Minio
from minio.error import S3Error

from include import config
from include.recsys.migrate import MigrationError, default_sql_dir, discover, migrate


def _query(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_both_databases_answer_with_their_own_role(stack_env):
    airflow_dsn = stack_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "", 1)
    assert _query(stack_env["RECSYS_DATABASE_URL"], "SELECT current_database(), current_user") == [("app", "app")]
    assert _query(airflow_dsn, "SELECT current_database(), current_user") == [("airflow", "airflow")]
    # Bootstrap migrated both schemas.
    assert _query(stack_env["RECSYS_DATABASE_URL"], "SELECT count(*) FROM schema_migrations")[0][0] >= 1
    assert _query(airflow_dsn, "SELECT count(*) FROM alembic_version") == [(1,)]


def _minio(env: dict[str, str], *, secret: str | None = None) -> Minio:
    return Minio(
        env["RECSYS_S3_ENDPOINT"],
        access_key=env["RECSYS_S3_ACCESS_KEY"],
        secret_key=secret or env["RECSYS_S3_SECRET_KEY"],
        secure=False,
    )


def test_object_round_trip_keeps_bytes_and_sha256_metadata(stack_env):
    client = _minio(stack_env)
    assert set(config.BUCKETS) <= {b.name for b in client.list_buckets()}
    payload = secrets.token_bytes(256 * 1024)
    digest = hashlib.sha256(payload).hexdigest()
    key = f"_stack-tests/{secrets.token_hex(6)}.bin"
    client.put_object(config.RAW_BUCKET, key, io.BytesIO(payload), len(payload), metadata={"sha256": digest})
    try:
        stat = client.stat_object(config.RAW_BUCKET, key)
        assert stat.size == len(payload)
        assert stat.metadata["x-amz-meta-sha256"] == digest
        response = client.get_object(config.RAW_BUCKET, key)
        try:
            assert hashlib.sha256(response.read()).hexdigest() == digest
        finally:
            response.close()
            response.release_conn()
    finally:
        client.remove_object(config.RAW_BUCKET, key)


def test_a_wrong_secret_is_rejected(stack_env):
    with pytest.raises(S3Error) as err:
        _minio(stack_env, secret="not-the-secret").list_buckets()
    assert err.value.code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")


def test_all_twelve_topics_exist_with_their_partitions(stack_env):
    admin = KafkaAdminClient(bootstrap_servers=stack_env["RECSYS_KAFKA_BOOTSTRAP"], client_id="stack-test")
    try:
        described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(list(config.TOPIC_NAMES))}
        listed = set(admin.list_topics())
    finally:
        admin.close()
    assert set(config.TOPIC_NAMES) <= listed
    assert described == {t.name: t.partitions for t in config.TOPICS}


def test_the_airflow_connections_point_at_the_stack(stack_env):
    pg = json.loads(stack_env["AIRFLOW_CONN_POSTGRES_APP"])
    dsn = f"postgresql://{pg['login']}:{quote(pg['password'], safe='')}@{pg['host']}:{pg['port']}/{pg['schema']}"
    assert _query(dsn, "SELECT 1") == [(1,)]
    s3 = json.loads(stack_env["AIRFLOW_CONN_MINIO_DEFAULT"])
    client = Minio(f"{s3['host']}:{s3['port']}", access_key=s3["login"], secret_key=s3["password"], secure=False)
    assert client.bucket_exists(config.REPORTS_BUCKET)


@pytest.fixture
def scratch_schema(stack_env, tmp_path):
    """A throwaway schema in the app DB, and a DSN whose search_path puts migrations there."""
    schema = f"migrate_test_{secrets.token_hex(4)}"
    base = stack_env["RECSYS_DATABASE_URL"]
    _query(base, f"CREATE SCHEMA {schema}; SELECT 1")
    try:
        yield f"{base}?options=-csearch_path%3D{schema}", schema
    finally:
        _query(base, f"DROP SCHEMA {schema} CASCADE; SELECT 1")


def test_migrate_is_idempotent_and_refuses_edited_history(scratch_schema, tmp_path):
    dsn, schema = scratch_schema
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "0001_create.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (sql_dir / "0002_seed.sql").write_text("INSERT INTO things VALUES (1), (2);")
    assert migrate(dsn, sql_dir=str(sql_dir)) == ["0001_create.sql", "0002_seed.sql"]
    assert migrate(dsn, sql_dir=str(sql_dir)) == []
    assert _query(dsn, "SELECT count(*) FROM things") == [(2,)]
    recorded = _query(dsn, "SELECT version, name, length(checksum) FROM schema_migrations ORDER BY version")
    assert recorded == [(1, "0001_create.sql", 64), (2, "0002_seed.sql", 64)]

    # A failing migration leaves nothing behind: neither its DDL nor a record.
    (sql_dir / "0003_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_column FROM things;")
    with pytest.raises(MigrationError, match="0003_broken.sql failed"):
        migrate(dsn, sql_dir=str(sql_dir))
    assert _query(dsn, "SELECT to_regclass(%s)", (f"{schema}.half",)) == [(None,)]
    (sql_dir / "0003_broken.sql").unlink()

    (sql_dir / "0001_create.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationError, match="0001_create.sql .* was changed"):
        migrate(dsn, sql_dir=str(sql_dir))


def test_interactions_keyed_by_tenant_and_event_keep_the_rows_that_were_there(scratch_schema, tmp_path):
    """0003 re-keys interactions by (tenant_id, event_id) on a schema that already holds rows: they all stay,
    and afterwards a second tenant can hold the same event ids."""
    dsn, _ = scratch_schema
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()

    def apply_up_to(version: int) -> list[str]:
        for m in discover(default_sql_dir()):
            if m.version <= version:
                (sql_dir / m.name).write_text(m.sql)
        return migrate(dsn, sql_dir=str(sql_dir))

    assert "0003_interactions_tenant_event_key.sql" not in apply_up_to(2)
    row = "INSERT INTO interactions VALUES (%s, %s, 'u1', 'i1', 'view', now(), 'run-1', 0, %s)"
    _query(
        dsn,
        "INSERT INTO tenants (id, slug, name, email) VALUES ('ta', 'a', 'A', 'a@x'), ('tb', 'b', 'B', 'b@x')"
        " RETURNING id",
    )
    for n in (1, 2, 3):
        _query(dsn, row + " RETURNING event_id", (str(n), "ta", n))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        _query(dsn, row + " RETURNING event_id", ("1", "tb", 9))  # the old key: event ids were global

    assert "0003_interactions_tenant_event_key.sql" in apply_up_to(3)
    for n in (1, 2, 3):
        _query(dsn, row + " RETURNING event_id", (str(n), "tb", n))
    counts = _query(dsn, "SELECT tenant_id, count(*) FROM interactions GROUP BY tenant_id ORDER BY tenant_id")
    assert counts == [("ta", 3), ("tb", 3)]
    key = _query(
        dsn,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'interactions'::regclass AND contype = 'p'",
    )
    assert key == [("PRIMARY KEY (tenant_id, event_id)",)]


def test_concurrent_runners_apply_each_migration_once(scratch_schema, tmp_path):
    dsn, _ = scratch_schema
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    # Slow enough that both runners are inside migrate() at the same time.
    (sql_dir / "0001_slow.sql").write_text("SELECT pg_sleep(0.5); CREATE TABLE once (id int);")
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(dsn, sql_dir=str(sql_dir)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [[], ["0001_slow.sql"]]
    shutil.rmtree(sql_dir)
