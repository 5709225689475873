"""platform_health: one check per platform component, reached through its Airflow connection.

Each check returns a small summary (the task's XCom) or raises :class:`ComponentUnhealthy`, whose
message starts with the component and says what was expected and what was found, e.g.
``kafka: broker 127.0.0.1:19092 unreachable (ConnectionRefusedError: Connection refused)``.
Every check first opens a TCP connection to the component's address, so "the server is not there"
is told apart from "the server answers wrongly" within seconds instead of after a client's own
retry budget (kafka-python needs 30 s to give up bootstrapping).

Kafka consumer lag is measured by counting, never from watermarks (Tansu's ``end_offsets()``
under-reports): for each partition of the interactions topic, the messages at or after the
ingestion group's committed offset are read and counted. That count is exactly the lag, costs time
proportional to the lag only (not to the topic's history), and is capped so a runaway backlog
cannot make the check itself run away. "Not growing" compares it with the lag the previous
successful check measured, kept as that run's XCom (see plugins.ops.previous_result): Airflow's
metadata DB already stores it per run, the platform's own database stays read-only for the
pipeline, and the object store being down does not stop the Kafka check from judging Kafka.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

from include.config import BUCKETS, INGEST_GROUP, INTERACTIONS_TOPIC, TOPICS

TCP_TIMEOUT_S = 3.0
# Reading stops once no message arrived for this long: the end of the backlog, as far as reading can tell.
LAG_IDLE_MS = 2000
# Per partition. Beyond this the lag is reported as "at least" the cap (a lower bound still shows growth).
LAG_READ_CAP = 100_000


class ComponentUnhealthy(RuntimeError):
    def __init__(self, component: str, problem: str) -> None:
        super().__init__(f"{component}: {problem}")


def _describe(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _tcp_probe(component: str, what: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=TCP_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or "timed out"
        raise ComponentUnhealthy(
            component, f"{what} {host}:{port} unreachable ({type(exc).__name__}: {reason})"
        ) from exc


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def check_postgres() -> dict[str, Any]:
    """SELECT 1 on the platform's app database."""
    from plugins.hooks.app_db import AppDbHook

    db = AppDbHook()
    conn = db.get_connection(db.postgres_conn_id)
    host, port = conn.host, conn.port or 5432
    where = f"{host}:{port}/{conn.schema}"
    start = time.perf_counter()
    _tcp_probe("postgres", "server", host, port)
    try:
        row = db.get_first("SELECT 1")
    except Exception as exc:
        raise ComponentUnhealthy("postgres", f"SELECT 1 on {where} failed ({_describe(exc)})") from exc
    if row is None or row[0] != 1:
        raise ComponentUnhealthy("postgres", f"SELECT 1 on {where} returned {row!r}, expected (1,)")
    return {"component": "postgres", "address": where, "latency_ms": _elapsed_ms(start)}


def check_object_store() -> dict[str, Any]:
    """Every bucket of config.BUCKETS exists."""
    from plugins.hooks.minio import MinioHook

    minio = MinioHook()
    conn = minio.get_connection(minio.minio_conn_id)
    secure = bool(conn.extra_dejson.get("secure", False))
    host, port = conn.host, conn.port or (443 if secure else 80)
    start = time.perf_counter()
    _tcp_probe("object_store", "endpoint", host, port)
    try:
        missing = minio.missing_buckets(BUCKETS)
    except Exception as exc:
        raise ComponentUnhealthy("object_store", f"listing buckets on {host}:{port} failed ({_describe(exc)})") from exc
    if missing:
        raise ComponentUnhealthy(
            "object_store", f"missing buckets {', '.join(missing)} (expected all {len(BUCKETS)}: {', '.join(BUCKETS)})"
        )
    return {
        "component": "object_store",
        "address": f"{host}:{port}",
        "buckets": len(BUCKETS),
        "latency_ms": _elapsed_ms(start),
    }


def check_recsys_api() -> dict[str, Any]:
    """GET /health answers 200 "healthy"; a 503 names the platform's failing dependencies, a 200 "degraded"
    the ones it serves without (the response cache): both fail the check, naming them."""
    from urllib.parse import urlsplit

    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook()
    url = urlsplit(api.base_url)
    start = time.perf_counter()
    _tcp_probe("recsys_api", "server", url.hostname, url.port or (443 if url.scheme == "https" else 80))
    try:
        status, body = api.health()
    except ValueError as exc:
        raise ComponentUnhealthy(
            "recsys_api", f"GET {api.base_url}/health answered a non-JSON body ({_describe(exc)})"
        ) from exc
    except Exception as exc:
        raise ComponentUnhealthy("recsys_api", f"GET {api.base_url}/health failed ({_describe(exc)})") from exc
    if status != 200 or body.get("status") != "healthy":
        checks = body.get("checks") or {}
        failing = "; ".join(
            f"{name}: {(checks.get(name) or {}).get('error', '?')}"
            for name in [*(body.get("failing") or []), *(body.get("degraded") or [])]
        )
        raise ComponentUnhealthy(
            "recsys_api",
            f"GET {api.base_url}/health returned {status} {body.get('status')!r}"
            f"{f' (failing: {failing})' if failing else ''}, expected 200 'healthy'",
        )
    return {
        "component": "recsys_api",
        "address": api.base_url,
        "latency_ms": _elapsed_ms(start),
        "checks": body.get("checks"),
    }


def check_kafka(*, previous: dict[str, Any] | None, lag_tolerance: int) -> dict[str, Any]:
    """Broker reachable, every config topic present with its partitions, ingestion lag not growing.

    ``previous`` is the summary of the last successful check; the lag may exceed its lag by at most
    ``lag_tolerance`` messages (traffic in flight between produce and the worker's next commit).
    """
    from plugins.hooks.kafka import KafkaHook

    hook = KafkaHook()
    servers = hook.get_conn()["bootstrap_servers"]
    start = time.perf_counter()
    problems = []
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            _tcp_probe("kafka", "broker", host, int(port))
            break
        except ComponentUnhealthy as exc:
            problems.append(str(exc).removeprefix("kafka: broker "))
    else:
        raise ComponentUnhealthy("kafka", f"broker {'; '.join(problems)}")

    admin = hook.admin()
    try:
        described = {t["name"]: t for t in admin.describe_topics([t.name for t in TOPICS])}
        _check_topics(described)
        partitions = sorted(p["partition_index"] for p in described[INTERACTIONS_TOPIC]["partitions"])
        committed = _committed_offsets(admin, partitions)
    finally:
        admin.close()
    lag = measure_lag(hook, committed)
    summary = {
        "component": "kafka",
        "brokers": servers,
        "topics": len(TOPICS),
        "group": INGEST_GROUP,
        "committed": {str(p): offset for p, offset in committed.items()},
        "lag": lag,
        "latency_ms": _elapsed_ms(start),
    }
    if previous and previous.get("lag"):
        before = previous["lag"]
        if lag["total"] > before["total"] + lag_tolerance:
            raise ComponentUnhealthy(
                "kafka",
                f"consumer group {INGEST_GROUP} lag on {INTERACTIONS_TOPIC} grew from {before['total']} messages"
                f" (measured {before['measured_at']}) to {_lag_text(lag)}, more than the tolerated"
                f" {lag_tolerance}; committed offsets {summary['committed']}: is the ingestion worker consuming?",
            )
    return summary


def _check_topics(described: dict[str, dict[str, Any]]) -> None:
    missing = [t.name for t in TOPICS if described.get(t.name, {}).get("error_code", 3) != 0]
    if missing:
        raise ComponentUnhealthy(
            "kafka", f"missing topics {', '.join(missing)} (expected all {len(TOPICS)} topics of include/config.py)"
        )
    wrong = [
        f"{t.name} has {len(described[t.name]['partitions'])}, expected {t.partitions}"
        for t in TOPICS
        if len(described[t.name]["partitions"]) != t.partitions
    ]
    if wrong:
        raise ComponentUnhealthy("kafka", f"wrong partition counts: {'; '.join(wrong)}")


def _committed_offsets(admin: Any, partitions: list[int]) -> dict[int, int | None]:
    """The ingestion group's committed offset per partition (None: the group never committed there)."""
    from kafka import TopicPartition

    wanted = [TopicPartition(INTERACTIONS_TOPIC, p) for p in partitions]
    offsets = admin.list_group_offsets({INGEST_GROUP: wanted}).get(INGEST_GROUP, {})
    result: dict[int, int | None] = {}
    for tp in wanted:
        meta = offsets.get(tp)
        result[tp.partition] = meta.offset if meta is not None and meta.offset >= 0 else None
    return result


def measure_lag(hook: Any, committed: dict[int, int | None]) -> dict[str, Any]:
    """Count the messages at or after each committed offset by reading them (from the start where none)."""
    from kafka import TopicPartition

    consumer = hook.consumer(group_id=None, consumer_timeout_ms=LAG_IDLE_MS)
    counts = {partition: 0 for partition in committed}
    capped = set()
    try:
        tps = [TopicPartition(INTERACTIONS_TOPIC, p) for p in committed]
        consumer.assign(tps)
        for tp in tps:
            if committed[tp.partition] is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed[tp.partition])
        for record in consumer:
            counts[record.partition] += 1
            if counts[record.partition] >= LAG_READ_CAP and record.partition not in capped:
                capped.add(record.partition)
                consumer.pause(TopicPartition(INTERACTIONS_TOPIC, record.partition))
                if len(capped) == len(tps):
                    break
    finally:
        consumer.close()
    return {
        "total": sum(counts.values()),
        "per_partition": {str(p): n for p, n in sorted(counts.items())},
        "capped_partitions": sorted(capped),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _lag_text(lag: dict[str, Any]) -> str:
    at_least = "at least " if lag["capped_partitions"] else ""
    return f"{at_least}{lag['total']} messages (per partition {lag['per_partition']})"
