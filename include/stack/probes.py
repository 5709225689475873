"""Readiness probes that exercise each server for real; each raises with the reason on failure."""

from __future__ import annotations

import base64
import io
import json
import secrets
import urllib.error
import urllib.request
from datetime import datetime

TANSU_BUCKET = "tansu"  # Tansu's storage; internal, not one of config.BUCKETS
PROBE_TIMEOUT_S = 5


def probe_postgres(dsn: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=PROBE_TIMEOUT_S)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), 1 + 1")
            dbname, two = cur.fetchone()
            if two != 2:
                raise RuntimeError(f"postgres answered SELECT 1 + 1 with {two!r} on {dbname}")
    finally:
        conn.close()


def probe_redis(url: str) -> None:
    """SET and GET a probe key (it expires by itself)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
    try:
        token = secrets.token_hex(8)
        client.set("stack:probe", token, ex=60)
        if client.get("stack:probe") != token.encode():
            raise RuntimeError("redis answered GET with something else than what was SET")
    finally:
        client.close()


def s3_client(endpoint: str, *, access_key: str, secret_key: str):
    from minio import Minio
    from urllib3 import PoolManager, Retry, Timeout

    # Fail fast: the default client retries for a long time against a port that is not up yet.
    http = PoolManager(timeout=Timeout(connect=2, read=PROBE_TIMEOUT_S), retries=Retry(total=0))
    return Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=False, http_client=http)


def probe_s3(endpoint: str, *, access_key: str, secret_key: str) -> None:
    """PUT and GET a probe object in the internal bucket (created if missing)."""
    client = s3_client(endpoint, access_key=access_key, secret_key=secret_key)
    if not client.bucket_exists(TANSU_BUCKET):
        client.make_bucket(TANSU_BUCKET)
    payload = secrets.token_bytes(16)
    key = "stack-probe/readiness"
    client.put_object(TANSU_BUCKET, key, io.BytesIO(payload), len(payload))
    response = client.get_object(TANSU_BUCKET, key)
    try:
        echoed = response.read()
    finally:
        response.close()
        response.release_conn()
    if echoed != payload:
        raise RuntimeError(f"S3 probe object read back {len(echoed)} bytes that differ from the {len(payload)} written")


def probe_kafka(bootstrap: str) -> None:
    """Produce one message to a throwaway topic and read it back by offset, then drop the topic.

    A throwaway topic keeps probe messages out of the platform's 12 topics and out of their counts.
    """
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic = f"__stack_probe_{secrets.token_hex(4)}"
    timeout_ms = PROBE_TIMEOUT_S * 1000
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-probe", request_timeout_ms=timeout_ms)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        try:
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms)
            try:
                payload = secrets.token_bytes(8)
                sent = producer.send(topic, value=payload).get(timeout=PROBE_TIMEOUT_S)
            finally:
                producer.close(timeout=PROBE_TIMEOUT_S)
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=timeout_ms
            )
            try:
                partition = TopicPartition(topic, sent.partition)
                consumer.assign([partition])
                consumer.seek(partition, sent.offset)
                echoed = next(iter(consumer), None)
            finally:
                consumer.close()
        finally:
            admin.delete_topics([topic])
    finally:
        admin.close()
    if echoed is None or echoed.value != payload:
        raise RuntimeError(f"Kafka probe message at {topic}[{sent.partition}]@{sent.offset} was not read back")


def probe_http(url: str, *, auth: tuple[str, str] | None = None) -> None:
    """``auth``: a basic-auth login, for a server whose every page needs one (the stack's Prometheus)."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            status, body = response.status, b""
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    if status != 200:
        # The body of a failing health endpoint usually names the dependency that is down.
        raise RuntimeError(f"GET {url} returned {status}, expected 200: {body[:300].decode(errors='replace')}")


def probe_airflow(base_url: str, *, job: str | None = None, since: float | None = None) -> None:
    """Airflow's api-server answers its health endpoint; with ``job`` (scheduler, dag_processor, triggerer),
    that job has heartbeated at or after ``since`` (epoch seconds), so a previous process's heartbeat,
    still fresh for ~30 s after it stopped, does not pass for the new one."""
    url = f"{base_url}/api/v2/monitor/health"
    with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
        health = json.load(response)
    if job is None:
        if health["metadatabase"]["status"] != "healthy":
            raise RuntimeError(f"GET {url}: metadatabase is {health['metadatabase']['status']}")
        return
    state = health[job]
    beat = state.get(f"latest_{job}_heartbeat")
    if state["status"] != "healthy" or beat is None:
        raise RuntimeError(f"GET {url}: {job} is {state['status']} (latest heartbeat {beat})")
    if since is not None and datetime.fromisoformat(beat).timestamp() < since:
        raise RuntimeError(f"GET {url}: the latest {job} heartbeat ({beat}) is older than this process")


def probe_celery_worker(broker_url: str, *, node: str) -> None:
    """The Celery worker ``node`` (e.g. worker1@host) answers a ping through the broker: it consumes tasks."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(destination=[node], timeout=PROBE_TIMEOUT_S)
    finally:
        app.close()
    if not any(node in reply for reply in replies):
        raise RuntimeError(f"Celery worker {node} did not answer a ping within {PROBE_TIMEOUT_S:g} s")
