"""feed_kafka: produce the uploaded interactions to the platform's topic and wait until its ingestion worker
has landed them.

Messages are keyed by user_id (so a user's events share a partition and keep their order) and sent in
timestamp order with acks=all. Landing is reconciled by counting rows in the platform's database for this
tenant and run, never by Kafka watermarks (Tansu's end offsets under-report).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.config import DEAD_LETTER_TOPIC, INTERACTIONS_TOPIC, RAW_BUCKET
from include.recsys.storage import stream
from plugins.journey.run import JourneyRun
from plugins.journey.seed_data import clean_path
from plugins.journey.tables import RECORDS_CHUNK_ROWS, read_arrow
from plugins.journey.upload_to_minio import raw_key

POLL_SECONDS = 0.5
# msgspec writes the JSON json.dumps(separators=(",", ":")) does, but non-ASCII as UTF-8 rather than \u escapes
# (the same text to any JSON reader), in a fifth of the time: 0.7 against 3.5 us a message, which at 1M
# messages is ~3 s of the feed's one busy core.
_ENCODE = msgspec.json.Encoder().encode
log = logging.getLogger(__name__)


def messages(interactions: pd.DataFrame | pa.Table, *, tenant: str, source: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, JSON value) per interaction in (timestamp, event_id) order, encoded a chunk at a time as the producer
    takes them: a 10M-row feed never holds 10M row dicts and their encodings at once. Arrow's sort is stable and
    orders strings by their UTF-8 bytes, which is code point order, as a sort of Python strings would."""
    table = (
        pa.Table.from_pandas(interactions, preserve_index=False)
        if isinstance(interactions, pd.DataFrame)
        else interactions
    )
    order = pc.sort_indices(table, sort_keys=[("timestamp", "ascending"), ("event_id", "ascending")])
    for start in range(0, len(order), RECORDS_CHUNK_ROWS):
        for row in table.take(order[start : start + RECORDS_CHUNK_ROWS]).to_pylist():
            yield row["user_id"].encode(), _ENCODE({"tenant": tenant, "source": source, **row})


def wait_for_landing(
    *, tenant_id: str, source: str, expected: int, timeout_s: float, since: datetime | None = None
) -> tuple[int, float]:
    """Poll the platform's row count until it reaches ``expected`` or the timeout passes: (landed, seconds).

    ``since`` (the app database's clock before producing) counts only rows written by this attempt. A wait
    longer than PROGRESS_EVERY_S logs the count and the landing rate that often."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.kafka import PROGRESS_EVERY_S

    db = AppDbHook()

    def landed_now() -> int:
        # The worker's own count for the source (one row; never below what this attempt landed) says "not yet"
        # cheaply; every row is counted only once it says "done", as a feed of a million rows would otherwise
        # load the very database that is landing it.
        progress = db.rows_landed(tenant_id=tenant_id, source=source)
        return progress if progress < expected else db.count_landed(tenant_id=tenant_id, source=source, since=since)

    start = time.monotonic()
    next_report = start + PROGRESS_EVERY_S
    landed = landed_now()
    while landed < expected and time.monotonic() - start < timeout_s:
        time.sleep(POLL_SECONDS)
        landed = landed_now()
        if time.monotonic() >= next_report:
            rate = landed / (time.monotonic() - start)
            log.info("landed %s of %s rows, %.0f rows/s", f"{landed:,}", f"{expected:,}", rate)
            next_report += PROGRESS_EVERY_S
    return landed, time.monotonic() - start


def dead_lettered(*, source: str, timeout_s: float = 3.0) -> int:
    """Messages of this run on the dead-letter topic (read from the start: the topic is small by design)."""
    from plugins.hooks.kafka import KafkaHook

    consumer = KafkaHook().consumer(DEAD_LETTER_TOPIC, group_id=None, consumer_timeout_ms=int(timeout_s * 1000))
    marker = f'"source":"{source}"'.encode()
    try:
        return sum(1 for record in consumer if record.value and marker in record.value)
    finally:
        consumer.close()


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.kafka import KafkaHook
    from plugins.hooks.minio import MinioHook

    with stream(MinioHook().client, RAW_BUCKET, raw_key(journey, "interactions")) as body:
        interactions = read_arrow(body, "interactions")
    since = AppDbHook().now()
    produced = KafkaHook().produce(
        INTERACTIONS_TOPIC,
        messages(interactions, tenant=journey.tenant, source=journey.run_key),
        total=interactions.num_rows,
    )
    if produced.failed:
        raise RuntimeError(
            f"{produced.failed} of {produced.produced} messages were not acknowledged: {produced.errors}"
        )
    landed, wait_s = wait_for_landing(
        tenant_id=seed["tenant_id"],
        source=journey.run_key,
        expected=interactions.num_rows,
        timeout_s=float(journey.params["feed_timeout_s"]),
        since=since,
    )
    return {
        "generated": interactions.num_rows,
        "produced": produced.produced,
        "acked": produced.acked,
        "produce_seconds": round(produced.seconds, 3),
        "messages_per_s": round(produced.rate, 1),
        "landed": landed,
        "landing_wait_s": round(wait_s, 3),
    }


def user_order(landed: pd.DataFrame) -> pd.DataFrame:
    """Per user: were the events stored in the order they happened (offsets rise with timestamps)?"""
    ordered = landed.sort_values(["user_id", "ts", "event_id"], kind="stable")
    step = ordered.groupby("user_id")["kafka_offset"].diff()
    same_partition = ordered.groupby("user_id")["kafka_partition"].transform("nunique") == 1
    in_order = (step.isna() | (step > 0)).groupby(ordered["user_id"]).all() & same_partition.groupby(
        ordered["user_id"]
    ).all()
    return in_order.rename("in_order").reset_index()


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, feed = done["seed_data"], done["feed_kafka"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.validation import validate_stage

    # The dead-letter scan spends its last 3 s idle, making sure nothing follows: it runs beside the reads.
    with ThreadPoolExecutor(max_workers=1) as pool:
        scan = pool.submit(dead_lettered, source=run.run_key)
        landed = AppDbHook().landed(tenant_id=seed["tenant_id"], source=run.run_key)
        sent_users = read_arrow(clean_path(run, "interactions"), "interactions", columns=("user_id",))["user_id"]
        order = user_order(landed)
        dead = scan.result()
    counts = pd.DataFrame(
        [
            {
                "generated": seed["counts"]["interactions"],
                "produced": feed["produced"],
                "acked": feed["acked"],
                "landed": len(landed),
                "dead_lettered": dead,
            }
        ]
    )
    landed = landed.assign(ts=pd.to_datetime(landed["ts"], utc=True))
    parameters = {"max_dead_lettered": 0, "n_users_expected": pc.count_distinct(sent_users).as_py()}
    frames = {"counts": counts, "landed": landed, "user_order": order}
    return validate_stage("feed_kafka", frames, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id)
