"""Moving data into the platform: the feed stage's Kafka produce, the upload stage's object puts and the
ingestion worker's landing rate, each against the bare client doing the same work on the same server.

Everything goes through the project's hooks (connections from the stack's env file); the "bare" side
takes its client from the same hook's ``get_conn`` so both sides talk to the very same endpoint.

The feed's ceiling is the best of a small grid of bare kafka-python producer settings (PRODUCER_GRID), all
with acks=all like the hook; librdkafka's rate on the same messages is recorded beside it as the broker's
reference, not as a target (the pipeline produces with kafka-python).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.config import INTERACTIONS_TOPIC, RAW_BUCKET
from include.recsys import datagen
from include.recsys.ingest.worker import COLUMNS  # the columns and order the ingestion worker COPYs
from plugins.hooks.app_db import AppDbHook
from plugins.hooks.kafka import KafkaHook
from plugins.hooks.minio import MinioHook
from plugins.hooks.recsys_api import RecsysApiHook
from plugins.journey.feed_kafka import messages, wait_for_landing

KIB, MIB = 1024, 1024 * 1024
# name -> bare kafka-python settings on top of acks=all (all else at the client's defaults). lz4 and zstd are
# measured only where their codecs are installed (kafka.codec.has_lz4 / has_zstd). The client's defaults
# (16 KiB batches, no linger: ~7.5k msg/s) are left out: Tansu serves a backlog of such small batches to the
# worker at ~1-2k msg/s, so draining the grid's messages afterwards would take minutes.
PRODUCER_GRID: dict[str, dict[str, Any]] = {
    "linger 20 ms, batch 256 KiB": {"linger_ms": 20, "batch_size": 256 * KIB},
    "linger 20 ms, batch 1 MiB": {"linger_ms": 20, "batch_size": MIB},
    "linger 20 ms, batch 1 MiB, gzip": {"linger_ms": 20, "batch_size": MIB, "compression_type": "gzip"},
    "linger 20 ms, batch 1 MiB, lz4": {"linger_ms": 20, "batch_size": MIB, "compression_type": "lz4"},
    "linger 20 ms, batch 1 MiB, zstd": {"linger_ms": 20, "batch_size": MIB, "compression_type": "zstd"},
    "linger 50 ms, batch 1 MiB, lz4": {"linger_ms": 50, "batch_size": MIB, "compression_type": "lz4"},
    "linger 200 ms, batch 1 MiB, lz4": {"linger_ms": 200, "batch_size": MIB, "compression_type": "lz4"},
    "linger 200 ms, batch 1 MiB, lz4, 1 in flight": {
        "linger_ms": 200,
        "batch_size": MIB,
        "compression_type": "lz4",
        "max_in_flight_requests_per_connection": 1,
    },
}
# After the first repetition's whole grid, later repetitions re-measure only its best settings.
GRID_RERUN_BEST = 2
# Same durability and batching; murmur2 keys each user to the partition kafka-python picks for it.
LIBRDKAFKA = {
    "acks": "all",
    "linger.ms": 20,
    "batch.size": MIB,
    "compression.type": "lz4",
    "partitioner": "murmur2_random",
}
INGEST_TIMEOUT_S = 300.0
COPY_TRIES = 2  # the ceiling is the bare COPY at its best: one slow try on a shared machine is noise


DRAIN_POLL_S = 0.1
UPLOADS_PER_REPETITION = 5  # one round moves ~9 MB in a fraction of a second: more rounds, less noise


@dataclass
class TransferSamples:
    kafka_hook_msgs_s: list[float] = field(default_factory=list)
    kafka_bare_msgs_s: list[float] = field(default_factory=list)  # per repetition: the best of the grid
    kafka_grid_msgs_s: dict[str, list[float]] = field(default_factory=dict)
    kafka_librdkafka_msgs_s: list[float] = field(default_factory=list)
    drain_rows_s: list[float] = field(default_factory=list)
    copy_rows_s: list[float] = field(default_factory=list)  # into interactions itself: the drain's ceiling
    copy_empty_rows_s: list[float] = field(default_factory=list)  # into an empty copy of it, for the record
    upload_hook_mb_s: list[float] = field(default_factory=list)
    upload_bare_mb_s: list[float] = field(default_factory=list)
    messages: int = 0
    upload_bytes: int = 0


def _seed(tenant: str, *, day: datetime) -> datagen.SeedData:
    return datagen.generate(tenant=tenant, interval_start=day, interval_end=day + timedelta(days=1), seed=42)


def grid_settings() -> dict[str, dict[str, Any]]:
    """PRODUCER_GRID less the codecs this environment cannot load."""
    from kafka import codec

    available = {None: True, "gzip": codec.has_gzip(), "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}
    return {name: s for name, s in PRODUCER_GRID.items() if available[s.get("compression_type")]}


def bare_produce(batch: list[tuple[bytes, bytes]], settings: dict[str, Any]) -> float:
    """A plain kafka-python loop with the hook's durability (acks=all) and these settings: messages/s."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**KafkaHook().get_conn(), acks="all", **settings)
    try:
        start = time.perf_counter()
        for key, value in batch:
            producer.send(INTERACTIONS_TOPIC, key=key, value=value)
        producer.flush(timeout=120)
        return len(batch) / (time.perf_counter() - start)
    finally:
        producer.close(timeout=10)


def librdkafka_produce(batch: list[tuple[bytes, bytes]]) -> float:
    """The same messages through librdkafka (confluent-kafka), for the record: messages/s."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": ",".join(KafkaHook().get_conn()["bootstrap_servers"]), **LIBRDKAFKA})
    failed: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failed.append(str(error))

    start = time.perf_counter()
    for key, value in batch:
        while True:
            try:
                producer.produce(INTERACTIONS_TOPIC, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.01)
        producer.poll(0)
    unsent = producer.flush(120)
    if failed or unsent:
        raise RuntimeError(f"librdkafka: {len(failed) + unsent} of {len(batch)} messages not delivered: {failed[:1]}")
    return len(batch) / (time.perf_counter() - start)


def bare_copy(rows: list[tuple], *, into_table: bool, scratch: str) -> float:
    """The best of COPY_TRIES bare COPYs of the rows the worker landed: rows/s.

    ``into_table``: into ``interactions`` itself, the job the worker does (its key, foreign key and indexes at
    their current size, WAL-logged), under fresh event ids, rolled back. Otherwise into an empty copy of the
    table (same key and indexes, no foreign key), dropped after: the same rows without the table's bulk.
    """
    return max(_bare_copy_once(rows, into_table=into_table, table=f"{scratch}_{n}") for n in range(COPY_TRIES))


def _bare_copy_once(rows: list[tuple], *, into_table: bool, table: str) -> float:
    import csv

    import psycopg2

    buffer = io.StringIO()
    # The event id is the first column: prefixed, each row is new to the table, like the worker's backlog was.
    csv.writer(buffer).writerows([(f"{table}-{row[0]}", *row[1:]) for row in rows] if into_table else rows)
    data = buffer.getvalue()
    target = "interactions" if into_table else table
    # psycopg2, the worker's driver (the hook itself may hand out psycopg 3), on the hook's connection.
    db = AppDbHook().get_connection(AppDbHook.default_conn_name)
    conn = psycopg2.connect(host=db.host, port=db.port, user=db.login, password=db.password, dbname=db.schema)
    try:
        with conn.cursor() as cur:
            if not into_table:
                cur.execute(f"CREATE TABLE {table} (LIKE interactions INCLUDING ALL)")
                conn.commit()
            try:
                buffer.seek(0)
                start = time.perf_counter()
                # The whole buffer in one read (psycopg2 reads 8 KiB at a time otherwise), as the worker does.
                cur.copy_expert(f"COPY {target} ({COLUMNS}) FROM STDIN WITH (FORMAT csv)", buffer, size=len(data))
                # Into the table, the rows are rolled back rather than committed: the few ms of the commit's
                # WAL flush are left out, which only raises the ceiling.
                (conn.rollback if into_table else conn.commit)()
                return len(rows) / (time.perf_counter() - start)
            finally:
                if not into_table:
                    cur.execute(f"DROP TABLE IF EXISTS {table}")
                    conn.commit()
    finally:
        conn.close()


def feed_and_drain(*, repetitions: int, stamp: str, samples: TransferSamples) -> None:
    """Per repetition, with the ingestion worker stopped so that every producer meets the same idle broker: one
    fresh tenant's interactions through KafkaHook.produce (the feed stage's call), then the same interactions
    of a second fresh tenant from each bare producer (the grid, then librdkafka), each under a source of its
    own; the worker then lands all of that. Then the drain alone: with the worker stopped again, a third fresh
    tenant's interactions are produced as a backlog, and the worker's pace through it is timed; a bare COPY of
    the same rows is its ceiling."""
    from include.stack import lifecycle
    from include.stack.settings import StackSettings

    stack, worker = StackSettings.from_env(), ["recsys-ingest"]
    api = RecsysApiHook(run_key=f"bench-{stamp}")
    db = AppDbHook()
    day = datetime(2026, 11, 20, tzinfo=UTC)
    grid = grid_settings()
    for rep in range(repetitions):
        tenants = {}
        for role in ("hook", "bare", "drain"):
            slug = f"bench-{role}-{stamp}-{rep}"
            tenants[role] = (slug, api.ensure_tenant(slug=slug, name=slug, email="bench@example.com")["tenant_id"])
        source = f"bench-{stamp}-{rep}"
        batch = {
            role: list(messages(_seed(slug, day=day).interactions, tenant=slug, source=source))
            for role, (slug, _id) in tenants.items()
        }
        samples.messages = len(batch["hook"])
        if rep:
            ranked = sorted(samples.kafka_grid_msgs_s, key=lambda name: -max(samples.kafka_grid_msgs_s[name]))
            grid = {name: grid[name] for name in ranked[:GRID_RERUN_BEST]}

        lifecycle.down(stack, only=worker, log=lambda _line: None)
        try:
            produced = KafkaHook().produce(INTERACTIONS_TOPIC, batch["hook"])
            if produced.failed:
                raise RuntimeError(f"{produced.failed} of {produced.produced} not acknowledged: {produced.errors}")
            samples.kafka_hook_msgs_s.append(produced.rate)
            best = 0.0
            bare_slug, bare_tenant = tenants["bare"]
            for n, (name, settings) in enumerate({**grid, "librdkafka": None}.items()):
                bare_source = f"{source}-bare-{n}"
                bare = list(messages(_seed(bare_slug, day=day).interactions, tenant=bare_slug, source=bare_source))
                rate = librdkafka_produce(bare) if settings is None else bare_produce(bare, settings)
                if settings is None:
                    samples.kafka_librdkafka_msgs_s.append(rate)
                else:
                    samples.kafka_grid_msgs_s.setdefault(name, []).append(rate)
                    best = max(best, rate)
            samples.kafka_bare_msgs_s.append(best)
        finally:
            lifecycle.up(stack, only=worker, log=lambda _line: None)
        # Every bare producer re-sent the same events, so once the last one's source holds them all, the
        # backlog is gone.
        wait_for_landing(tenant_id=bare_tenant, source=bare_source, expected=len(bare), timeout_s=INGEST_TIMEOUT_S)

        drain_tenant = tenants["drain"][1]
        lifecycle.down(stack, only=worker, log=lambda _line: None)
        try:
            produced = KafkaHook().produce(INTERACTIONS_TOPIC, batch["drain"])
            if produced.failed:
                raise RuntimeError(f"{produced.failed} of {produced.produced} not acknowledged: {produced.errors}")
        finally:
            lifecycle.up(stack, only=worker, log=lambda _line: None)
        samples.drain_rows_s.append(
            _drain_rate(db, tenant_id=drain_tenant, source=source, expected=len(batch["drain"]))
        )
        rows = db.get_records(
            f"SELECT {COLUMNS} FROM interactions WHERE tenant_id = %s AND source = %s",
            parameters=(drain_tenant, source),
        )
        samples.copy_rows_s.append(bare_copy(rows, into_table=True, scratch=f"bench-copy-{rep}"))
        samples.copy_empty_rows_s.append(bare_copy(rows, into_table=False, scratch=f"bench_copy_{rep}"))


def _drain_rate(db: AppDbHook, *, tenant_id: str, source: str, expected: int) -> float:
    """Rows/s from the first landed row of this source to its last, polled every DRAIN_POLL_S."""
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    first = None
    # The worker's own per-batch count is the probe: counting 100K rows ten times a second would load the very
    # database whose pace is measured.
    landed = db.rows_landed(tenant_id=tenant_id, source=source)
    while landed < expected and time.monotonic() < deadline:
        if first is None and landed:
            first = (time.perf_counter(), landed)
        time.sleep(DRAIN_POLL_S)
        landed = db.rows_landed(tenant_id=tenant_id, source=source)
    counted = db.count_landed(tenant_id=tenant_id, source=source)
    if counted < expected or first is None:
        raise RuntimeError(f"the worker landed {counted} of {expected} backlogged rows within {INGEST_TIMEOUT_S:.0f} s")
    return (landed - first[1]) / (time.perf_counter() - first[0])


def upload(*, repetitions: int, stamp: str, work_dir: str, samples: TransferSamples) -> None:
    """The upload stage's MinioHook.put_file (SHA-256 in the metadata) vs a bare put_object of the same bytes."""
    day = datetime(2026, 11, 20, tzinfo=UTC)
    paths = datagen.write_csv(_seed(f"bench-upload-{stamp}", day=day), os.path.join(work_dir, "upload"))
    blobs = {name: open(path, "rb").read() for name, path in paths.items()}
    total = sum(len(b) for b in blobs.values())
    samples.upload_bytes = total
    hook = MinioHook()
    bare = hook.get_conn()
    prefix = f"bench/{stamp}/"
    try:
        for rep in range(repetitions * UPLOADS_PER_REPETITION):
            start = time.perf_counter()
            for name, path in paths.items():
                hook.put_file(bucket=RAW_BUCKET, key=f"{prefix}hook/{rep}/{name}.csv", path=path)
            samples.upload_hook_mb_s.append(total / 1e6 / (time.perf_counter() - start))
            start = time.perf_counter()
            for name, data in blobs.items():
                bare.put_object(RAW_BUCKET, f"{prefix}bare/{rep}/{name}.csv", io.BytesIO(data), len(data))
            samples.upload_bare_mb_s.append(total / 1e6 / (time.perf_counter() - start))
    finally:
        hook.delete_prefix(bucket=RAW_BUCKET, prefix=prefix)
