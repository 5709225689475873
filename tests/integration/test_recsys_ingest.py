"""The ingestion worker against the real stack: no loss or duplicates across a crash, poison to the DLQ.

The stack's own worker is stopped for the module (and restarted after), so the rows counted here can
only have been landed by the worker processes these tests start and kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from include import config
from include.recsys.contract import schema
from tests.integration.interactions import landed, message


@pytest.fixture(scope="module")
def only_test_workers(stack_env):
    from include.stack import lifecycle

    stopped = lifecycle.down(only=["recsys-ingest"], log=lambda *_a: None)
    yield
    if stopped:
        lifecycle.up(only=["recsys-ingest"], log=lambda *_a: None)


@pytest.fixture(scope="module")
def producer(stack_env):
    kafka = KafkaProducer(bootstrap_servers=stack_env["RECSYS_KAFKA_BOOTSTRAP"], acks="all", linger_ms=20)
    yield kafka
    kafka.close()


def produce(producer: KafkaProducer, messages: list[dict]) -> None:
    for m in messages:
        producer.send(config.INTERACTIONS_TOPIC, key=m["user_id"].encode(), value=json.dumps(m).encode())
    producer.flush(timeout=60)


def start_worker(tmp_path, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "include.recsys.ingest.worker"],
        cwd=config.project_root(),
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_ten_thousand_messages_survive_a_worker_crash(
    stack_env, only_test_workers, db, producer, tmp_path, new_tenant, wait_for
):
    tenant = new_tenant("ingest")
    slug, tenant_id = tenant["slug"], tenant["tenant_id"]
    source = f"restart-{uuid.uuid4().hex[:8]}"
    messages = [message(slug, source, n) for n in range(10_000)]
    produce(producer, messages[:5_000])

    first = start_worker(tmp_path, "first")
    try:
        wait_for(lambda: landed(db, tenant_id, source) > 0, timeout_s=90, what="the first rows to land")
    finally:
        first.send_signal(signal.SIGKILL)  # a crash, not a clean stop: nothing gets to tidy up
        first.wait(timeout=10)
    produce(producer, messages[5_000:])

    second = start_worker(tmp_path, "second")
    try:
        started = time.monotonic()
        wait_for(lambda: landed(db, tenant_id, source) >= 10_000, timeout_s=120, what="all 10,000 rows")
        elapsed = time.monotonic() - started
        time.sleep(2)  # anything re-delivered late would show up now
        with db.cursor() as cur:
            cur.execute("SELECT event_id FROM interactions WHERE tenant_id = %s AND source = %s", (tenant_id, source))
            event_ids = [row[0] for row in cur.fetchall()]
            cur.execute(
                "SELECT rows_landed FROM ingest_progress WHERE tenant_id = %s AND source = %s", (tenant_id, source)
            )
            progress = cur.fetchone()[0]
            cur.execute(
                "SELECT details FROM audit_log WHERE tenant_id = %s AND action = 'interactions.ingested'"
                " AND details ->> 'source' = %s",
                (tenant_id, source),
            )
            audits = [row[0] for row in cur.fetchall()]
        assert sorted(event_ids) == sorted(m["event_id"] for m in messages)  # none lost, none doubled
        assert progress == 10_000
        assert audits and sum(a["rows"] for a in audits) >= 10_000
        assert all(a["partitions"] and a["rows_landed"] <= 10_000 for a in audits)
        print(f"second worker landed the rest in {elapsed:.1f}s")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, (tmp_path / "second.log").read_text()[-2000:]


def test_poison_messages_reach_the_dead_letter_topic_with_a_reason(
    stack_env, only_test_workers, db, producer, tmp_path, new_tenant, wait_for
):
    tenant = new_tenant("poison")
    slug, tenant_id = tenant["slug"], tenant["tenant_id"]
    source = f"poison-{uuid.uuid4().hex[:8]}"
    marker = source.encode()
    good = [message(slug, source, n) for n in range(3)]
    unknown = {**message(slug, source, 10), "tenant": f"ghost-{source}"}
    bad_type = {**message(slug, source, 11), "interaction_type": "'; DROP TABLE interactions; --"}
    naive_ts = {**message(slug, source, 12), "timestamp": "2026-01-01T00:00:00"}
    poison = {
        b"not json at all " + marker: "undecodable",
        b"\xff\xfe" + marker: "undecodable",
        json.dumps({"tenant": slug, "source": source}).encode(): "missing fields",
        json.dumps(unknown).encode(): "unknown tenant",
        json.dumps(bad_type).encode(): "interaction_type must be one of",
        json.dumps(naive_ts).encode(): "timestamp must carry a timezone",
        json.dumps({**message(slug, source, 13), "pad": "x" * schema.MAX_MESSAGE_BYTES}).encode(): "exceeds",
    }
    produce(producer, good)
    for value in poison:
        producer.send(config.INTERACTIONS_TOPIC, key=b"poison", value=value)
    producer.flush(timeout=30)

    worker = start_worker(tmp_path, "poison")
    try:
        wait_for(lambda: landed(db, tenant_id, source) == 3, timeout_s=90, what="the valid rows")
        dlq = KafkaConsumer(bootstrap_servers=stack_env["RECSYS_KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        partition = TopicPartition(config.DEAD_LETTER_TOPIC, 0)
        dlq.assign([partition])
        dlq.seek_to_beginning(partition)
        found: dict[bytes, dict[str, str]] = {}
        deadline = time.monotonic() + 60
        while len(found) < len(poison) and time.monotonic() < deadline:
            for records in dlq.poll(timeout_ms=1000).values():
                for record in records:
                    if record.value in poison:
                        found[record.value] = {k: v.decode() for k, v in record.headers}
        dlq.close()
        assert set(found) == set(poison), f"missing from the DLQ: {[v[:60] for v in poison if v not in found]}"
        for value, headers in found.items():
            assert poison[value] in headers["reason"], (headers["reason"], poison[value])
            assert headers["source_topic"] == config.INTERACTIONS_TOPIC
            assert int(headers["source_partition"]) >= 0 and int(headers["source_offset"]) >= 0
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM interactions WHERE source = %s", (source,))
            assert cur.fetchone()[0] == 3  # poison never reached the table
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_events_resent_under_another_source_move_and_a_replay_changes_nothing(
    stack_env, only_test_workers, db, producer, tmp_path, new_tenant, wait_for
):
    tenant = new_tenant("ingest-move")
    slug, tenant_id = tenant["slug"], tenant["tenant_id"]
    first, second = (f"move-{name}-{uuid.uuid4().hex[:8]}" for name in ("a", "b"))
    events = [message(slug, first, n) for n in range(3_000)]

    def progress() -> dict[str, int]:
        with db.cursor() as cur:
            cur.execute("SELECT source, rows_landed FROM ingest_progress WHERE tenant_id = %s", (tenant_id,))
            return dict(cur.fetchall())

    def by_source() -> dict[str, int]:
        with db.cursor() as cur:
            cur.execute("SELECT source, count(*) FROM interactions WHERE tenant_id = %s GROUP BY 1", (tenant_id,))
            return dict(cur.fetchall())

    worker = start_worker(tmp_path, "move")
    try:
        produce(producer, events)
        wait_for(lambda: progress().get(first) == 3_000, timeout_s=90, what="the first source's 3,000 rows")
        # A third of the same events again under another source: they move, the rest stay.
        produce(producer, [{**m, "source": second} for m in events[:1_000]])
        wait_for(lambda: progress().get(second) == 1_000, timeout_s=90, what="1,000 rows under the second source")
        assert progress() == by_source() == {first: 2_000, second: 1_000}
        # The same events once more under the same source (a replay): counts and rows stay as they are.
        produce(producer, [{**m, "source": second} for m in events[:1_000]])
        marker = [message(slug, second, 3_000)]
        produce(producer, marker)
        wait_for(lambda: progress().get(second) == 1_001, timeout_s=90, what="the marker event behind the replay")
        assert progress() == by_source() == {first: 2_000, second: 1_001}
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, (tmp_path / "move.log").read_text()[-2000:]
