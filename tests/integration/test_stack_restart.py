"""Lifecycle of an isolated stack (own local dir and ports, so nobody else's stack is disturbed).

Data must survive down/up, a component killed by hand must show up as down in status and come back
with up, and Kafka must round-trip a message through a consumer group with the Tansu timeouts.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time

import psycopg2
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from minio import Minio

from include import config
from include.stack import lifecycle, process
from include.stack.env import load_env
from include.stack.settings import HOST, StackSettings

INFRA = ("postgres", "seaweedfs", "kafka")
# Relative to the stack under test, so engineers' stacks side by side (each with its own offset) never
# start isolated stacks on the same ports.
BASE_OFFSET = int(os.environ.get("RECSYS_PORT_OFFSET", "0") or 0)
PORT_OFFSET = BASE_OFFSET + 400


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def isolated():
    local = tempfile.mkdtemp(prefix="recsys-stack-test-")
    os.chmod(local, 0o755)  # as root, postgres runs as nobody and must reach its data dir
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": local, "RECSYS_PORT_OFFSET": str(PORT_OFFSET)})
    try:
        lifecycle.up(settings, only=INFRA, airflow_db=False, log=_quiet)
        yield settings, load_env(settings.env_file)
    finally:
        lifecycle.down(settings, log=_quiet)
        shutil.rmtree(local, ignore_errors=True)


def _consumer(env: dict[str, str], group: str, **kwargs) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=env["RECSYS_KAFKA_BOOTSTRAP"],
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=config.CONSUMER_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=config.CONSUMER_HEARTBEAT_MS,
        consumer_timeout_ms=20_000,
        **kwargs,
    )


def _produce(env: dict[str, str], *, key: bytes, value: bytes):
    producer = KafkaProducer(bootstrap_servers=env["RECSYS_KAFKA_BOOTSTRAP"], acks="all")
    try:
        return producer.send(config.INTERACTIONS_TOPIC, key=key, value=value).get(timeout=10)
    finally:
        producer.close()


def _consume_and_commit(env: dict[str, str], group: str, value: bytes) -> tuple[TopicPartition, int]:
    consumer = _consumer(env, group)
    try:
        consumer.subscribe([config.INTERACTIONS_TOPIC])
        for message in consumer:
            if message.value == value:
                consumer.commit()
                return TopicPartition(message.topic, message.partition), message.offset + 1
    finally:
        consumer.close()
    raise AssertionError(f"message {value!r} was not consumed from {config.INTERACTIONS_TOPIC} within 20 s")


def _states(settings: StackSettings) -> dict[str, str]:
    return {s.name: s.state for s in lifecycle.status(settings) if s.name in INFRA}


def test_a_keyed_message_round_trips_through_a_consumer_group(isolated):
    _, env = isolated
    value = secrets.token_hex(8).encode()
    sent = _produce(env, key=b"user-42", value=value)
    started = time.monotonic()
    partition, next_offset = _consume_and_commit(env, f"roundtrip-{secrets.token_hex(3)}", value)
    assert (partition.partition, next_offset) == (sent.partition, sent.offset + 1)
    # With the Tansu timeouts a group join takes seconds, not the ~23 s of the defaults.
    assert time.monotonic() - started < 15


def test_a_row_an_object_and_a_committed_offset_survive_down_and_up(isolated):
    settings, env = isolated
    token = secrets.token_hex(8)
    conn = psycopg2.connect(env["RECSYS_DATABASE_URL"])
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS restart_probe (token text PRIMARY KEY)")
        cur.execute("INSERT INTO restart_probe VALUES (%s)", (token,))
    conn.close()
    s3 = Minio(
        env["RECSYS_S3_ENDPOINT"],
        access_key=env["RECSYS_S3_ACCESS_KEY"],
        secret_key=env["RECSYS_S3_SECRET_KEY"],
        secure=False,
    )
    s3.put_object(config.RAW_BUCKET, f"restart/{token}", io.BytesIO(token.encode()), len(token))
    group = f"restart-{token}"
    _produce(env, key=b"u", value=token.encode())
    partition, committed = _consume_and_commit(env, group, token.encode())

    assert set(lifecycle.down(settings, log=_quiet)) == set(INFRA)
    assert set(_states(settings).values()) == {"down"}
    lifecycle.up(settings, only=INFRA, airflow_db=False, log=_quiet)

    conn = psycopg2.connect(env["RECSYS_DATABASE_URL"])
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM restart_probe WHERE token = %s", (token,))
        assert cur.fetchone() == (1,)
    conn.close()
    response = s3.get_object(config.RAW_BUCKET, f"restart/{token}")
    try:
        assert response.read() == token.encode()
    finally:
        response.close()
        response.release_conn()
    consumer = _consumer(env, group)
    try:
        assert consumer.committed(partition) == committed
    finally:
        consumer.close()


def test_a_killed_component_is_named_by_status_and_restarted_by_up(isolated):
    settings, _ = isolated
    pid = process.running_pid(settings.pid_file("kafka"))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process.running_pid(settings.pid_file("kafka")) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _states(settings) == {"postgres": "running", "seaweedfs": "running", "kafka": "down"}
    report = lifecycle.up(settings, only=INFRA, airflow_db=False, log=_quiet)
    assert (report["postgres"], report["seaweedfs"], report["kafka"]) == ("running", "running", "started")
    assert set(_states(settings).values()) == {"running"}


def test_a_busy_port_is_reported_with_component_and_port(isolated):
    settings, _ = isolated
    lifecycle.down(settings, only=["kafka"], log=_quiet)
    port = settings.port("kafka")
    blocker = socket.socket()
    blocker.bind((HOST, port))
    blocker.listen()
    try:
        with pytest.raises(lifecycle.StackError, match=rf"kafka cannot start: port\(s\) {port}"):
            lifecycle.up(settings, only=["kafka"], log=_quiet)
    finally:
        blocker.close()
    lifecycle.up(settings, only=["kafka"], log=_quiet)
    assert _states(settings)["kafka"] == "running"


def test_database_url_provisions_an_existing_server_instead_of_starting_one(isolated):
    settings, _ = isolated
    with open(settings.secrets_file) as fh:
        superuser_password = json.load(fh)["pg_superuser_password"]
    url = f"postgres://postgres:{superuser_password}@{HOST}:{settings.port('postgres')}/postgres"
    other_dir = tempfile.mkdtemp(prefix="recsys-stack-ext-")
    external = StackSettings.from_env(
        {"RECSYS_LOCAL_DIR": other_dir, "RECSYS_PORT_OFFSET": str(BASE_OFFSET + 500), "DATABASE_URL": url}
    )
    try:
        assert lifecycle.up(external, only=["postgres"], log=_quiet) == {"postgres": "external"}
        env = load_env(external.env_file)
        conn = psycopg2.connect(env["RECSYS_DATABASE_URL"])
        with conn, conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_user, inet_server_port()")
            assert cur.fetchone() == ("app", "app", settings.port("postgres"))
        conn.close()
        assert next(s for s in lifecycle.status(external) if s.name == "postgres").state == "external"
        assert not os.path.exists(os.path.join(other_dir, "postgres")), "a server was started anyway"
        assert lifecycle.down(external, log=_quiet) == []
    finally:
        # The external stack re-keyed the shared role names; give the isolated stack its passwords back.
        lifecycle.up(settings, only=["postgres"], log=_quiet)
        shutil.rmtree(other_dir, ignore_errors=True)
