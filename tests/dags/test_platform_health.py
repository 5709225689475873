"""platform_health end to end with dag.test on a real stack: healthy passes; a stalled ingestion worker
fails ``kafka`` naming the consumer group; a stopped broker fails ``kafka`` naming the broker.

The stack must be an isolated one (RECSYS_LOCAL_DIR / RECSYS_PORT_OFFSET): this test stops and restarts
its Kafka broker and ingestion worker through the stack's Python API.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from tests.dags.dag_runs import alert, run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("stack_env")

# Fixed, distinct logical dates (after the DAG's start_date, or no task runs): each run's "previous" Kafka
# measurement is the latest earlier one.
T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 0, 15, tzinfo=UTC)
T2 = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)
T3 = datetime(2026, 11, 2, 0, 45, tzinfo=UTC)


@pytest.fixture(scope="module")
def baseline():
    return run_dag("platform_health", logical_date=T0)


def test_healthy_platform_passes(baseline):
    from include.config import BUCKETS, INGEST_GROUP, TOPICS

    assert baseline.state == "success", task_states(baseline)
    assert task_states(baseline) == dict.fromkeys(("postgres", "object_store", "kafka", "recsys_api"), "success")
    kafka = xcom(baseline, "kafka")
    assert kafka["topics"] == len(TOPICS) and kafka["group"] == INGEST_GROUP
    assert set(kafka["lag"]["per_partition"]) == {"0", "1", "2"}
    assert xcom(baseline, "object_store")["buckets"] == len(BUCKETS)
    assert xcom(baseline, "recsys_api")["checks"]["kafka"]["ok"] is True


def test_stalled_ingestion_fails_kafka_naming_the_consumer_group(baseline):
    from include.config import INTERACTIONS_TOPIC
    from include.stack import lifecycle
    from plugins.hooks.kafka import KafkaHook

    before = xcom(baseline, "kafka")["lag"]["total"]
    lifecycle.down(only=["recsys-ingest"])
    try:
        # Poison on purpose: once the worker is back it dead-letters them, and nothing lands anywhere.
        sent = KafkaHook().produce(INTERACTIONS_TOPIC, [(f"lag-probe-{i}".encode(), b"not json") for i in range(3)])
        assert sent.acked == 3
        dag_run = run_dag("platform_health", logical_date=T1, run_conf={"lag_tolerance": 0})
    finally:
        lifecycle.up(only=["recsys-ingest"])

    assert dag_run.state == "failed"
    assert task_states(dag_run) == {
        "postgres": "success",
        "object_store": "success",
        "kafka": "failed",
        "recsys_api": "success",
    }
    error = alert(dag_run, "kafka")["error"]
    assert error.startswith(f"kafka: consumer group recsys-ingest lag on user_interactions grew from {before} messages")
    assert f"to {before + 3} messages" in error
    assert "more than the tolerated 0" in error


def test_stopped_broker_fails_kafka_naming_the_broker(baseline):
    from include.stack import lifecycle

    bootstrap = os.environ["RECSYS_KAFKA_BOOTSTRAP"]
    worker_pid = _pid(lifecycle, "recsys-ingest")
    lifecycle.down(only=["kafka"])
    try:
        _wait_until_api_sees_kafka_down()
        dag_run = run_dag("platform_health", logical_date=T2)
    finally:
        lifecycle.up(only=["kafka"])

    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states["kafka"] == "failed" and states["postgres"] == states["object_store"] == "success"
    kafka_alert = alert(dag_run, "kafka")
    assert kafka_alert["error"].startswith(f"kafka: broker {bootstrap} unreachable (ConnectionRefusedError")
    assert kafka_alert["stage"] == "kafka" and kafka_alert["try_number"] == 2  # rechecked once before alerting
    # The API reports its own Kafka dependency as failing, and the check says so.
    assert states["recsys_api"] == "failed"
    assert "failing: kafka" in alert(dag_run, "recsys_api")["error"]

    recovered = run_dag("platform_health", logical_date=T3)
    assert recovered.state == "success", task_states(recovered)
    # The ingestion worker waited the outage out instead of dying with it.
    assert worker_pid is not None and _pid(lifecycle, "recsys-ingest") == worker_pid


def _wait_until_api_sees_kafka_down(timeout_s: float = 15.0) -> None:
    """The API caches its dependency checks for a moment (include/recsys/api/health.py): outlast the cache."""
    import time

    from plugins.hooks.recsys_api import RecsysApiHook

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = RecsysApiHook().health()
        if status == 503 and "kafka" in body.get("failing", []):
            return
        time.sleep(0.5)
    raise AssertionError(f"the API still reports kafka healthy {timeout_s:g}s after the broker stopped")


def _pid(lifecycle, component: str) -> int | None:
    [found] = [s for s in lifecycle.status() if s.name == component]
    return found.pid if found.state == "running" else None
