"""The ingestion worker: Kafka interactions -> Postgres, exactly once in effect.

    python -m include.recsys.ingest.worker        # settings from RECSYS_* (settings.py)

Per poll (up to MAX_BATCH messages): classify each message (valid, or poison with a reason), send
poison to the dead-letter topic and flush, upsert valid rows by (tenant, event_id), move the rows landed
per tenant and source by what the upsert changed, write one audit row per tenant and source, commit the database transaction, and
only then commit the Kafka offsets. A crash anywhere re-delivers the batch, and the upsert makes the
re-delivery harmless. While one batch lands (in a thread: the database does the work), the next is
polled, classified and dead-lettered. Database or broker outages are waited out with backoff while the
consumer stays in its group; SIGTERM finishes the batches in hand and exits 0.

The client is librdkafka (confluent-kafka): kafka-python parses every record in Python, ~33k records/s
read and ~25k decoded on these machines before any landing, while librdkafka hands them over at ~3 s of
CPU per million.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeVar

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from include import config
from include.recsys import audit
from include.recsys import settings as settings_module
from include.recsys.contract import schema
from include.recsys.db import Database, DatabaseUnavailable

log = logging.getLogger("recsys.ingest")

MAX_BATCH = 20_000
COPY_MIN_CHUNK = 8192  # psycopg2's own default read size
POLL_TIMEOUT_S = 0.5
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
# After SIGTERM, how long an outage may hold the batch in hand before it is left for re-delivery.
STOP_GRACE_S = 15.0
TENANT_REFRESH_S = 2.0
ACTOR = "ingest-worker"
ABANDONED = object()  # what Worker._until_done returns for a step given up on stop
T = TypeVar("T")
_JSON = msgspec.json.Decoder()  # JSON to plain dicts and lists, like json.loads
COLUMNS = "event_id, tenant_id, user_id, item_id, interaction_type, ts, source, kafka_partition, kafka_offset"


# The commit errors that mean "the group rebalanced (or is rebalancing) under this batch".
REBALANCED = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._STATE,
}


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a write or a commit in time."""


@dataclass
class Batch:
    # (tenant_id, event_id) -> row: a repeated event of one tenant keeps the last
    rows: dict[tuple[str, str], tuple] = field(default_factory=dict)
    poison: list[tuple[Record, str]] = field(default_factory=list)  # (record, reason)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) -> offset
    # (tenant_id, source) -> {partition: [first offset, last offset]}
    ranges: dict[tuple[str, str], dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    csv: str = ""  # the rows as COPY reads them, written before landing so the landing thread holds no GIL
    messages: int = 0
    # For the log: where a batch's time goes (decoding here, landing in the database, or waiting in line).
    started: float = 0.0
    prepare_s: float = 0.0
    land_s: float = 0.0


class Tenants:
    """slug -> tenant id, refreshed from the database when a batch names an unknown slug."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_slug: dict[str, str] = {}
        self._refreshed_at = float("-inf")

    def resolve(self, slugs: set[str]) -> dict[str, str]:
        unknown = slugs - self._by_slug.keys()
        if not unknown:
            return self._by_slug
        with self._db.transaction() as cur:
            if time.monotonic() - self._refreshed_at > TENANT_REFRESH_S:
                cur.execute("SELECT slug, id FROM tenants WHERE status = 'active'")
                self._by_slug = {row["slug"]: row["id"] for row in cur.fetchall()}
                self._refreshed_at = time.monotonic()
            else:
                # Between full refreshes, still look up the slugs not seen yet: skipping them dead-lettered
                # the first messages of a tenant created within TENANT_REFRESH_S of the last refresh.
                cur.execute(
                    "SELECT slug, id FROM tenants WHERE status = 'active' AND slug = ANY(%s)", (sorted(unknown),)
                )
                self._by_slug.update({row["slug"]: row["id"] for row in cur.fetchall()})
        return self._by_slug


def decode(value: bytes | None) -> tuple[dict | None, str | None]:
    """(message, None) for a valid message, else (None, reason)."""
    message, _ts, reason = decode_timed(value)
    return message, reason


def decode_timed(value: bytes | None) -> tuple[dict | None, datetime | None, str | None]:
    """(message, its parsed timestamp, None) for a valid message, else (None, None, reason)."""
    if value is None:
        return None, None, "empty message value"
    if len(value) > schema.MAX_MESSAGE_BYTES:
        return None, None, f"message of {len(value)} bytes exceeds {schema.MAX_MESSAGE_BYTES}"
    try:
        message = _JSON.decode(value)
    except (msgspec.MsgspecError, RecursionError):
        # msgspec decodes exactly as json does whatever it accepts, ~6x faster; what it refuses (NaN, lone
        # surrogates, broken UTF-8, ...) goes to the standard parser, which decides and names the reason.
        message = None
    try:
        if message is None:
            message = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, None, f"undecodable: not UTF-8 JSON ({str(exc)[:120]})"
    except RecursionError:
        # 16 KiB of "[[[[..." is enough to exhaust the parser's stack; uncaught, it killed the worker
        # and the same message came back on every restart.
        return None, None, "undecodable: JSON nested too deeply"
    # Only a \u escape can put a NUL or a lone surrogate in a JSON string: without one, neither is checked.
    escaped = b"\\u" in value
    ts, problem = schema.checked_message(message, nul_possible=escaped)
    if problem:
        return None, None, problem
    # JSON may escape lone surrogates ("\ud800"): valid JSON, but not encodable as UTF-8 for the
    # database, so they would fail the whole batch on every re-delivery.
    if escaped:
        try:
            for f in schema.MESSAGE_FIELDS:
                message[f].encode("utf-8")
        except UnicodeEncodeError:
            return None, None, "fields must be valid Unicode text (no lone surrogates)"
    return message, ts, None


class Worker:
    def __init__(self, settings: settings_module.Settings) -> None:
        self._settings = settings
        # Two: one batch lands while the next one's tenants are resolved.
        self._db = Database(settings.database_url, max_connections=2)
        self._tenants = Tenants(self._db)
        self._stopping = False
        self._stop_requested_at: float | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._paused = False

    def _connect(self) -> None:
        """librdkafka connects (and reconnects) in the background, so a worker started before its broker waits."""
        self._consumer = Consumer(
            {
                "bootstrap.servers": self._settings.kafka_bootstrap,
                "group.id": config.INGEST_GROUP,
                "client.id": "recsys-ingest",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": config.CONSUMER_SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": config.CONSUMER_HEARTBEAT_MS,
                # ~200-byte messages: 1 MiB per partition and fetch (the default) is ~5,000 of them.
                "max.partition.fetch.bytes": 4 * 1024 * 1024,
                "logger": log,
            }
        )
        self._consumer.subscribe([config.INTERACTIONS_TOPIC])
        self._producer = Producer(
            {
                "bootstrap.servers": self._settings.kafka_bootstrap,
                "client.id": "recsys-ingest-dlq",
                "acks": "all",
                # Idempotent retries across a Tansu restart can be acked as duplicates of lost writes
                # (see plugins/hooks/kafka.py); a dead letter written twice is harmless.
                "enable.idempotence": False,
                "linger.ms": 5,
                "message.timeout.ms": 10_000,
                "logger": log,
            }
        )

    def request_stop(self, *_args) -> None:
        self._stopping = True
        self._stop_requested_at = time.monotonic()

    def run(self) -> None:
        self._connect()
        log.info("consuming %s as group %s", config.INTERACTIONS_TOPIC, config.INGEST_GROUP)
        in_flight: tuple[Batch, Future] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="land") as lander:
            delay = BACKOFF_START_S
            while not self._stopping:
                # A broker outage between batches mostly shows as empty polls (librdkafka reconnects by itself
                # and resumes from the last committed offsets); an error raised here is waited out too.
                try:
                    records = self._records(self._consumer.consume(num_messages=MAX_BATCH, timeout=POLL_TIMEOUT_S))
                except KafkaException as exc:
                    log.warning("broker unreachable, polling again in %.1fs: %s", delay, exc)
                    time.sleep(delay)
                    delay = min(delay * 2, BACKOFF_MAX_S)
                    continue
                delay = BACKOFF_START_S
                # The next batch is decoded and dead-lettered while the previous one lands, so this process and
                # Postgres work at the same time; batches still land, and commit, one after the other.
                batch = self._prepare(records) if records else None
                if in_flight is not None:
                    self._finish(*in_flight)
                    in_flight = None
                if batch is not None:
                    in_flight = (batch, lander.submit(self._land, batch))
            if in_flight is not None:
                self._finish(*in_flight)
        self._consumer.close()
        self._producer.flush(5)
        self._db.close()
        log.info("stopped cleanly")

    @staticmethod
    def _records(messages: list) -> list[Record]:
        records = []
        for m in messages:
            error = m.error()
            if error is not None:
                # Events, not records (a broker gone away, a partition at its end): nothing to land or commit.
                log.warning("consumer event: %s", error)
                continue
            records.append(Record(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        return records

    def _classify(self, records: list[Record]) -> Batch:
        batch = Batch()
        decoded = []
        for record in records:
            tp = (record.topic, record.partition)
            batch.next_offsets[tp] = max(batch.next_offsets.get(tp, 0), record.offset + 1)
            message, ts, reason = decode_timed(record.value)
            if reason:
                batch.poison.append((record, reason))
            else:
                decoded.append((record, message, ts))
        tenants = self._tenants.resolve({m["tenant"] for _r, m, _ts in decoded})
        for record, message, ts in decoded:
            tenant_id = tenants.get(message["tenant"])
            if tenant_id is None:
                batch.poison.append((record, f"unknown tenant {message['tenant'][: schema.MAX_ID_LENGTH]!r}"))
                continue
            key = (tenant_id, message["source"])
            batch.rows[(tenant_id, message["event_id"])] = (
                message["event_id"],
                tenant_id,
                message["user_id"],
                message["item_id"],
                message["interaction_type"],
                ts,
                message["source"],
                record.partition,
                record.offset,
            )
            batch.counts[key] += 1
            span = batch.ranges[key].setdefault(record.partition, [record.offset, record.offset])
            span[0], span[1] = min(span[0], record.offset), max(span[1], record.offset)
        buffer = io.StringIO()
        csv.writer(buffer).writerows(batch.rows.values())
        batch.csv = buffer.getvalue()
        return batch

    def _dead_letter(self, poison: list[tuple[Record, str]]) -> int:
        if not poison:
            return 0
        failed: list[str] = []

        def delivered(error, _message) -> None:
            if error is not None:
                failed.append(str(error))

        for record, reason in poison:
            self._producer.produce(
                config.DEAD_LETTER_TOPIC,
                key=record.key,
                value=record.value or b"",
                headers=[
                    # backslashreplace: a reason quoting hostile input must not fail the dead-lettering.
                    ("reason", reason[:500].encode("utf-8", "backslashreplace")),
                    ("source_topic", record.topic.encode()),
                    ("source_partition", str(record.partition).encode()),
                    ("source_offset", str(record.offset).encode()),
                ],
                on_delivery=delivered,
            )
        unsent = self._producer.flush(10)
        if failed or unsent:
            raise BrokerUnavailable(
                f"{len(failed) + unsent} of {len(poison)} dead letters not acknowledged: {(failed or ['timed out'])[0]}"
            )
        return len(poison)

    def _land(self, batch: Batch) -> dict[tuple[str, str], int]:
        """Upsert, count and audit in one transaction; returns rows landed per (tenant, source)."""
        landed: dict[tuple[str, str], int] = {}
        if not batch.rows:
            return landed
        started = time.perf_counter()
        with self._db.transaction() as cur:
            # COPY into a session-local staging table, then one set-based upsert: about twice as fast
            # as a multi-row INSERT, whose client-side quoting dominates at 5,000 rows.
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS interactions_batch (LIKE interactions INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            )
            # One read of the whole CSV: psycopg2 reads the file in 8 KiB chunks by default, and each chunk
            # needs the GIL, which the main thread holds while it decodes the next batch (up to a 5 ms switch
            # interval per chunk, ~250 chunks per batch).
            cur.copy_expert(
                f"COPY interactions_batch ({COLUMNS}) FROM STDIN WITH (FORMAT csv)",
                io.StringIO(batch.csv),
                size=max(len(batch.csv), COPY_MIN_CHUNK),
            )
            # One landing per tenant at a time across workers (sorted: no deadlock between two batches), so the
            # rows a batch finds already present are still there, unchanged, when its upsert runs.
            for tenant_id in sorted({tenant for tenant, _source in batch.counts}):
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"ingest/{tenant_id}",))
            deltas = self._upsert(cur, batch)
            for (tenant_id, source), delta in sorted(deltas.items()):
                cur.execute(
                    "UPDATE ingest_progress SET rows_landed = rows_landed + %s, updated_at = now()"
                    " WHERE tenant_id = %s AND source = %s RETURNING rows_landed",
                    (delta, tenant_id, source),
                )
                row = cur.fetchone()
                if row is None:
                    # A source's first landing counts its rows once, whoever wrote them.
                    cur.execute(
                        "INSERT INTO ingest_progress (tenant_id, source, rows_landed)"
                        " SELECT %s, %s, count(*) FROM interactions WHERE tenant_id = %s AND source = %s"
                        " RETURNING rows_landed",
                        (tenant_id, source, tenant_id, source),
                    )
                    row = cur.fetchone()
                if (tenant_id, source) in batch.counts:
                    landed[(tenant_id, source)] = row["rows_landed"]
            for tenant_id, source in sorted(batch.counts):
                audit.record(
                    cur,
                    actor=ACTOR,
                    action="interactions.ingested",
                    tenant_id=tenant_id,
                    object_ref=f"kafka:{config.INTERACTIONS_TOPIC}",
                    details={
                        "source": source,
                        "rows": batch.counts[(tenant_id, source)],
                        "rows_landed": landed[(tenant_id, source)],
                        "partitions": {str(p): span for p, span in sorted(batch.ranges[(tenant_id, source)].items())},
                    },
                )
        batch.land_s = time.perf_counter() - started
        return landed

    @staticmethod
    def _upsert(cur, batch: Batch) -> dict[tuple[str, str], int]:
        """Lands the staged rows; returns how rows_landed moves per (tenant, source).

        Each (tenant, source) gains the events it did not hold and loses those of its events re-sent under
        another source; a re-delivery changes nothing. Recounting instead scanned every row of the source per
        batch (~0.4 s a batch by 250K rows of one feed, growing with it). New events, which is every batch of a
        feed but a re-delivered one, are inserted in one statement that never reads the table's rows: joining
        the batch with the table first to find the events present cost ~20% of a fresh batch's landing.
        """
        deltas: dict[tuple[str, str], int] = dict.fromkeys(batch.counts, 0)
        cur.execute(
            f"WITH landed AS (INSERT INTO interactions ({COLUMNS}) SELECT {COLUMNS} FROM interactions_batch"
            " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING tenant_id, source)"
            " SELECT tenant_id, source, count(*) AS n FROM landed GROUP BY 1, 2"
        )
        for row in cur.fetchall():
            deltas[(row["tenant_id"], row["source"])] += row["n"]
        if sum(deltas.values()) == len(batch.rows):
            return deltas
        # Events already there before this transaction (its own inserts have its xid as xmin): updated to
        # the batch's values, skipped when identical (a redelivery of the same message writes nothing).
        # The key holds the tenant, so an update can only ever reach its own tenant's rows.
        cur.execute(
            "WITH present AS (SELECT b.*, i.source AS was FROM interactions_batch b JOIN interactions i"
            " ON i.tenant_id = b.tenant_id AND i.event_id = b.event_id WHERE i.xmin <> pg_current_xact_id()::xid),"
            " moved AS (UPDATE interactions i SET user_id = p.user_id, item_id = p.item_id,"
            " interaction_type = p.interaction_type, ts = p.ts, source = p.source,"
            " kafka_partition = p.kafka_partition, kafka_offset = p.kafka_offset, ingested_at = now()"
            " FROM present p WHERE i.tenant_id = p.tenant_id AND i.event_id = p.event_id"
            " AND (i.user_id, i.item_id, i.interaction_type, i.ts, i.source, i.kafka_partition, i.kafka_offset)"
            " IS DISTINCT FROM (p.user_id, p.item_id, p.interaction_type, p.ts, p.source, p.kafka_partition,"
            " p.kafka_offset) RETURNING p.tenant_id, p.was, p.source)"
            " SELECT tenant_id, was, source, count(*) AS n FROM moved GROUP BY 1, 2, 3"
        )
        for row in cur.fetchall():
            deltas[(row["tenant_id"], row["was"])] = deltas.get((row["tenant_id"], row["was"]), 0) - row["n"]
            deltas[(row["tenant_id"], row["source"])] += row["n"]
        return deltas

    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(*tp, offset) for tp, offset in batch.next_offsets.items()]
        try:
            committed = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() not in REBALANCED:
                raise BrokerUnavailable(f"offset commit failed: {error}") from None
            # The group rebalanced (or is rebalancing, e.g. after a broker restart): the rows are committed in
            # the database already, so skip this commit; whoever owns the partitions next re-reads from the last
            # committed offset and the upserts absorb it. Retrying the commit instead would wait forever,
            # because the rebalance only completes in the main loop's poll.
            log.warning("offset commit refused during a rebalance; batch will be re-delivered: %s", error)
            return
        refused = [tp for tp in committed or [] if tp.error is not None]
        if refused:
            log.warning("offset commit refused for %s; those messages will be re-delivered", refused)

    def _until_done(self, step: Callable[[], T], *, batch_size: int) -> T | object:
        """Runs one step of a batch until it succeeds, waiting out database and broker outages with backoff
        (the consumer stays in its group). ABANDONED when a stop was requested and the outage outlasted
        STOP_GRACE_S: the batch is left uncommitted, so it is re-delivered on restart."""
        delay = BACKOFF_START_S
        while True:
            try:
                return step()
            except (DatabaseUnavailable, BrokerUnavailable, KafkaException) as exc:
                if self._stopping and time.monotonic() - self._stop_requested_at > STOP_GRACE_S:
                    log.warning("stopping with an unfinished batch (re-delivered on restart): %s", exc)
                    return ABANDONED
                log.warning("batch of %d waits %.1fs for an outage: %s", batch_size, delay, exc)
                self._idle(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)

    def _prepare(self, records: list[Record]) -> Batch | None:
        """Classify, then dead-letter the poison; None if abandoned on stop."""
        started = time.perf_counter()
        batch = self._until_done(lambda: self._classify(records), batch_size=len(records))
        if batch is ABANDONED:
            return None
        if self._until_done(lambda: self._dead_letter(batch.poison), batch_size=len(records)) is ABANDONED:
            return None
        batch.messages, batch.started, batch.prepare_s = len(records), started, time.perf_counter() - started
        self._resume()
        return batch

    def _finish(self, batch: Batch, landing: Future) -> None:
        """Wait for the batch's landing (retried here if an outage failed it), then commit its offsets."""
        attempt = [landing]

        def land() -> dict[tuple[str, str], int]:
            return attempt.pop().result() if attempt else self._land(batch)

        landed = self._until_done(land, batch_size=batch.messages)
        if landed is ABANDONED:
            return
        if self._until_done(lambda: self._commit(batch), batch_size=batch.messages) is ABANDONED:
            return
        self._resume()
        log.info(
            "batch: %d messages, %d rows upserted, %d dead-lettered, landed %s, last offsets %s,"
            " %.0f ms (decoding %.0f, landing %.0f)",
            batch.messages,
            len(batch.rows),
            len(batch.poison),
            {f"{t[:8]}/{s}": n for (t, s), n in landed.items()},
            {f"p{p}": offset - 1 for (_t, p), offset in sorted(batch.next_offsets.items())},
            (time.perf_counter() - batch.started) * 1000,
            batch.prepare_s * 1000,
            batch.land_s * 1000,
        )

    def _resume(self) -> None:
        if self._paused:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False

    def _idle(self, seconds: float) -> None:
        """Waits while still polling, so the group does not evict this consumer during an outage."""
        self._consumer.pause(self._consumer.assignment())
        self._paused = True
        # Only a rebalance can hand over a new, unpaused partition; rewind it so nothing is skipped.
        first: dict[tuple[str, int], int] = {}
        for record in self._records(self._consumer.consume(num_messages=MAX_BATCH, timeout=seconds)):
            first.setdefault((record.topic, record.partition), record.offset)
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
            self._consumer.pause([TopicPartition(topic, partition)])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = Worker(settings_module.get())
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
