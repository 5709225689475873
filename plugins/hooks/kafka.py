"""KafkaHook: the Kafka-protocol broker behind the ``kafka_default`` connection."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from include.config import CONSUMER_HEARTBEAT_MS, CONSUMER_SESSION_TIMEOUT_MS, KAFKA_CONN_ID

# One progress line per this many seconds of a long produce: a few lines per feed, never one per batch.
PROGRESS_EVERY_S = 5.0

if TYPE_CHECKING:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer


def key_partitioner() -> Any:
    """kafka-python's DefaultPartitioner (murmur2 of the key, as the Java client and librdkafka's murmur2
    partitioner hash it), computing each key's hash once: its pure-Python murmur2 was ~8% of the feed's CPU,
    and a feed repeats each user's key for every one of their events. The cache is bounded (a 100x feed has
    1M users) and lives as long as the producer."""
    from functools import lru_cache

    from kafka.partitioner import DefaultPartitioner
    from kafka.partitioner.default import murmur2

    key_hash = lru_cache(maxsize=1 << 18)(lambda key: murmur2(key) & 0x7FFFFFFF)

    class KeyHashPartitioner(DefaultPartitioner):
        def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
            partitions = cluster.partitions_for_topic(topic)
            if serialized_key is None or not partitions:
                # No key (random choice) or a topic without metadata (the default's own error).
                return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            ordered = sorted(partitions)
            return ordered[key_hash(serialized_key) % len(ordered)]

    return KeyHashPartitioner()


@dataclass
class ProduceResult:
    produced: int = 0
    acked: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few, for the log and the report

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


class KafkaHook(BaseHook):
    """Producers, consumers and admin clients configured from one connection (extra.bootstrap_servers)."""

    conn_name_attr = "kafka_conn_id"
    default_conn_name = KAFKA_CONN_ID
    hook_name = "Kafka"

    def __init__(self, kafka_conn_id: str = KAFKA_CONN_ID) -> None:
        super().__init__()
        self.kafka_conn_id = kafka_conn_id

    def get_conn(self) -> dict[str, Any]:
        """Client settings shared by producers, consumers and admin clients."""
        conn = self.get_connection(self.kafka_conn_id)
        servers = conn.extra_dejson.get("bootstrap_servers") or (f"{conn.host}:{conn.port}" if conn.host else None)
        if not servers:
            raise ValueError(f"connection {self.kafka_conn_id!r} must set extra.bootstrap_servers (host:port)")
        return {"bootstrap_servers": servers.split(",") if isinstance(servers, str) else servers}

    def producer(self, **overrides: Any) -> KafkaProducer:
        from kafka import KafkaProducer

        settings: dict[str, Any] = {
            "acks": "all",
            # One request in flight per connection keeps per-key order even when a batch is retried.
            "max_in_flight_requests_per_connection": 1,
            # Retry without a count limit but within delivery_timeout_ms: a broker outage shorter than that
            # is buffered and ridden out (reconnects back off up to 5 s); a longer one fails the sends,
            # which produce() counts and reports, never drops silently.
            "delivery_timeout_ms": 120_000,
            # Measured on Tansu: with idempotence on, batches retried across a broker restart were acked as
            # duplicates of writes the broker had lost (256 of 30,000 acked events missing). Plain retries
            # may write a batch twice instead, which the platform absorbs: it upserts by (tenant, event_id).
            "enable_idempotence": False,
            "retry_backoff_ms": 200,
            "reconnect_backoff_max_ms": 5_000,
            # The best of make bench's grid of bare kafka-python settings (bench/transfer.py PRODUCER_GRID) that
            # keeps the guarantees above (one request in flight, no idempotence); the figures are in the README
            # (Performance). lz4 shrinks what Tansu writes to its S3 store for little CPU, and the crc32c package
            # computes the batch checksums in C (kafka-python's own is pure Python). Linger: Tansu stores each
            # partition's batch of a request as one S3 object (a PUT, a watermark update, and a GET when the
            # worker fetches it), and SeaweedFS spent more CPU on those than the producer did. 200 ms against
            # 20 ms, 300K messages with the worker draining beside: ~260 -> ~650 messages an object, SeaweedFS
            # CPU 9.3-10.6 -> 5.1-6.8 s, sending 16.8-17.9 -> 13.9-16.9 s. Alone on the broker the two tie.
            "compression_type": "lz4",
            "linger_ms": 200,
            "batch_size": 1024 * 1024,
            "partitioner": key_partitioner(),
            "max_block_ms": 30_000,
            "request_timeout_ms": 30_000,
        }
        settings.update(overrides)
        return KafkaProducer(**self.get_conn(), **settings)

    def consumer(self, *topics: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
        from kafka import KafkaConsumer

        settings: dict[str, Any] = {
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            "session_timeout_ms": CONSUMER_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": CONSUMER_HEARTBEAT_MS,
        }
        settings.update(overrides)
        return KafkaConsumer(*topics, **self.get_conn(), **settings)

    def admin(self) -> KafkaAdminClient:
        from kafka import KafkaAdminClient

        return KafkaAdminClient(**self.get_conn(), request_timeout_ms=10_000)

    def list_topics(self) -> set[str]:
        admin = self.admin()
        try:
            return set(admin.list_topics())
        finally:
            admin.close()

    def produce(
        self,
        topic: str,
        messages: Iterable[tuple[bytes, bytes]],
        *,
        flush_timeout_s: float = 120.0,
        result: ProduceResult | None = None,
        total: int | None = None,
    ) -> ProduceResult:
        """Send (key, value) pairs and count broker acknowledgements, not just sends.

        Pass ``result`` to watch progress from another thread (the fault drills do). A produce longer than
        PROGRESS_EVERY_S logs its progress that often (``total``, when known, says out of how many).
        """
        result = ProduceResult() if result is None else result

        def on_ack(_metadata: Any) -> None:
            result.acked += 1

        def on_error(exc: BaseException) -> None:
            result.failed += 1
            if len(result.errors) < 5:
                result.errors.append(f"{type(exc).__name__}: {exc}")

        producer = self.producer()
        start = time.perf_counter()
        next_report = start + PROGRESS_EVERY_S
        try:
            for key, value in messages:
                producer.send(topic, key=key, value=value).add_callback(on_ack).add_errback(on_error)
                result.produced += 1
                if result.produced % 1000 == 0 and time.perf_counter() >= next_report:
                    self._progress(result, total=total, start=start)
                    next_report += PROGRESS_EVERY_S
            producer.flush(timeout=flush_timeout_s)
        finally:
            result.seconds = time.perf_counter() - start
            producer.close(timeout=10)
        if result.seconds >= PROGRESS_EVERY_S:
            self._progress(result, total=total, start=start)
        return result

    def _progress(self, result: ProduceResult, *, total: int | None, start: float) -> None:
        elapsed = time.perf_counter() - start
        out_of = f" of {total:,}" if total is not None else ""
        self.log.info(
            "kafka: sent %s%s, acked %s, %.0f msg/s over %.0f s",
            f"{result.produced:,}",
            out_of,
            f"{result.acked:,}",
            result.acked / elapsed if elapsed else 0.0,
            elapsed,
        )
