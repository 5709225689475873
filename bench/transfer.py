"""Moving data into the platform: the feed stage's Kafka produce, the upload stage's object puts and the
ingestion worker's landing rate, each against the bare client doing the same work on the same server.

Everything goes through the project's hooks (connections from the stack's env file); the "bare" side
takes its client from the same hook's ``get_conn`` so both sides talk to the very same endpoint.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from include.config import INTERACTIONS_TOPIC, RAW_BUCKET
from include.recsys import datagen
from include.recsys.ingest import COLUMNS  # the columns and order the ingestion worker COPYs
from plugins.hooks.app_db import AppDbHook
from plugins.hooks.kafka import KafkaHook
from plugins.hooks.minio import MinioHook
from plugins.hooks.recsys_api import RecsysApiHook
from plugins.journey.feed_kafka import messages, wait_for_landing

BATCH_SIZE = 512 * 1024  # what KafkaHook.producer batches, so both sides batch alike
LINGER_MS = 20
INGEST_TIMEOUT_S = 300.0


DRAIN_POLL_S = 0.1
UPLOADS_PER_REPETITION = 5  # one round moves ~9 MB in a fraction of a second: more rounds, less noise


@dataclass
class TransferSamples:
    kafka_hook_msgs_s: list[float] = field(default_factory=list)
    kafka_bare_msgs_s: list[float] = field(default_factory=list)
    ingest_rows_s: list[float] = field(default_factory=list)
    drain_rows_s: list[float] = field(default_factory=list)
    copy_rows_s: list[float] = field(default_factory=list)
    upload_hook_mb_s: list[float] = field(default_factory=list)
    upload_bare_mb_s: list[float] = field(default_factory=list)
    messages: int = 0
    upload_bytes: int = 0


def _seed(tenant: str, *, day: datetime) -> datagen.SeedData:
    return datagen.generate(tenant=tenant, interval_start=day, interval_end=day + timedelta(days=1), seed=42)


def bare_produce(batch: list[tuple[bytes, bytes]]) -> float:
    """A plain kafka-python loop with the same durability (acks=all) and batching: messages/s."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**KafkaHook().get_conn(), acks="all", linger_ms=LINGER_MS, batch_size=BATCH_SIZE)
    try:
        start = time.perf_counter()
        for key, value in batch:
            producer.send(INTERACTIONS_TOPIC, key=key, value=value)
        producer.flush(timeout=120)
        return len(batch) / (time.perf_counter() - start)
    finally:
        producer.close(timeout=10)


def bare_copy(rows: list[tuple], *, table: str) -> float:
    """COPY the rows the worker lands into a scratch table shaped like ``interactions`` (same keys and
    indexes, WAL-logged like it), then drop it: rows/s."""
    import csv

    import psycopg2

    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    # psycopg2, the worker's driver (the hook itself may hand out psycopg 3), on the hook's connection.
    db = AppDbHook().get_connection(AppDbHook.default_conn_name)
    conn = psycopg2.connect(host=db.host, port=db.port, user=db.login, password=db.password, dbname=db.schema)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (LIKE interactions INCLUDING ALL)")
            conn.commit()
            try:
                buffer.seek(0)
                start = time.perf_counter()
                cur.copy_expert(f"COPY {table} ({COLUMNS}) FROM STDIN WITH (FORMAT csv)", buffer)
                conn.commit()
                return len(rows) / (time.perf_counter() - start)
            finally:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                conn.commit()
    finally:
        conn.close()


def feed_and_ingest(*, repetitions: int, stamp: str, samples: TransferSamples) -> None:
    """Per repetition, a fresh tenant: its interactions through KafkaHook.produce (the feed stage's call),
    timed until the worker has landed them all; then the same messages from a bare producer (under another
    source, so their landing marks the worker idle again); then a bare COPY of the same rows."""
    api = RecsysApiHook(run_key=f"bench-{stamp}")
    day = datetime(2026, 11, 20, tzinfo=UTC)
    for rep in range(repetitions):
        slug = f"bench-ingest-{stamp}-{rep}"
        tenant_id = api.ensure_tenant(slug=slug, name=slug, email="bench@example.com")["tenant_id"]
        interactions = _seed(slug, day=day).interactions
        source = f"bench-{stamp}-{rep}"
        batch = messages(interactions, tenant=slug, source=source)
        samples.messages = len(batch)

        start = time.perf_counter()
        produced = KafkaHook().produce(INTERACTIONS_TOPIC, batch)
        if produced.failed:
            raise RuntimeError(f"{produced.failed} of {produced.produced} messages not acknowledged: {produced.errors}")
        landed, _wait = wait_for_landing(
            tenant_id=tenant_id, source=source, expected=len(batch), timeout_s=INGEST_TIMEOUT_S
        )
        if landed < len(batch):
            raise RuntimeError(f"ingestion landed {landed} of {len(batch)} rows within {INGEST_TIMEOUT_S:.0f} s")
        samples.kafka_hook_msgs_s.append(produced.rate)
        samples.ingest_rows_s.append(len(batch) / (time.perf_counter() - start))

        bare_source = f"{source}-bare"
        samples.kafka_bare_msgs_s.append(bare_produce(messages(interactions, tenant=slug, source=bare_source)))
        wait_for_landing(tenant_id=tenant_id, source=bare_source, expected=len(batch), timeout_s=INGEST_TIMEOUT_S)

        rows = AppDbHook().get_records(
            f"SELECT {COLUMNS} FROM interactions WHERE tenant_id = %s AND source = %s",
            parameters=(tenant_id, bare_source),
        )
        samples.copy_rows_s.append(bare_copy(rows, table=f"bench_copy_{rep}"))


def drain(*, stamp: str, repetitions: int, samples: TransferSamples) -> None:
    """The worker's own pace: with the worker stopped, a fresh tenant's messages are produced as a backlog;
    then the worker starts and the rate is timed from its first landed row to its last (polled every 0.1 s)."""
    from include.stack import lifecycle
    from include.stack.settings import StackSettings

    settings, worker = StackSettings.from_env(), ["recsys-ingest"]
    api = RecsysApiHook(run_key=f"bench-{stamp}")
    db = AppDbHook()
    day = datetime(2026, 11, 20, tzinfo=UTC)
    for rep in range(repetitions):
        slug = f"bench-drain-{stamp}-{rep}"
        tenant_id = api.ensure_tenant(slug=slug, name=slug, email="bench@example.com")["tenant_id"]
        source = f"bench-drain-{stamp}-{rep}"
        batch = messages(_seed(slug, day=day).interactions, tenant=slug, source=source)
        lifecycle.down(settings, only=worker, log=lambda _line: None)
        try:
            produced = KafkaHook().produce(INTERACTIONS_TOPIC, batch)
            if produced.failed:
                raise RuntimeError(f"{produced.failed} of {produced.produced} messages not acknowledged")
        finally:
            lifecycle.up(settings, only=worker, log=lambda _line: None)
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        first = None
        # The worker's own per-batch count is the probe: counting 100K rows ten times a second would load the
        # very database whose pace is measured.
        landed = db.rows_landed(tenant_id=tenant_id, source=source)
        while landed < len(batch) and time.monotonic() < deadline:
            if first is None and landed:
                first = (time.perf_counter(), landed)
            time.sleep(DRAIN_POLL_S)
            landed = db.rows_landed(tenant_id=tenant_id, source=source)
        counted = db.count_landed(tenant_id=tenant_id, source=source)
        if counted < len(batch) or first is None:
            raise RuntimeError(f"the worker landed {counted} of {len(batch)} backlogged rows")
        samples.drain_rows_s.append((landed - first[1]) / (time.perf_counter() - first[0]))


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
