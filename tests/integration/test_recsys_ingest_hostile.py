"""Hostile Kafka messages through the stack's own, running ingestion worker.

Every message either lands or reaches user_interactions.dlq with its reason (landed + dead-lettered ==
produced, matched by message key), and the worker that took them is the same process afterwards and
still ingests. Unlike test_recsys_ingest.py, nothing here stops the stack's worker.
"""

from __future__ import annotations

import json
import time
import uuid

from include import config
from include.recsys.contract import schema
from include.recsys.ingest.worker import Record, Worker
from include.recsys.settings import load
from tests.integration.interactions import landed, message


def worker_pid() -> int:
    from include.stack import lifecycle

    (worker,) = [s for s in lifecycle.status() if s.name == "recsys-ingest"]
    assert worker.state == "running" and worker.pid, f"the stack's ingestion worker is not running: {worker}"
    return worker.pid


def hostile_messages(slug: str, tenant_id: str, suspended: str, source: str) -> dict[str, tuple[bytes | None, str]]:
    """case -> (raw value, expected reason)."""
    base = message(slug, source, 900)

    def variant(**changes) -> bytes:
        return json.dumps({**base, **changes}).encode()

    return {
        "not JSON": (b"this is not json " + source.encode(), "undecodable"),
        "not UTF-8": (b"\xff\xfe\xfa" + source.encode(), "undecodable"),
        "JSON but not an object": (json.dumps([source]).encode(), "must be a JSON object"),
        "empty value": (None, "empty message value"),
        "missing fields": (json.dumps({"tenant": slug, "source": source}).encode(), "missing fields"),
        "oversize": (variant(pad="x" * schema.MAX_MESSAGE_BYTES), "exceeds"),
        "id of the wrong type": (variant(event_id=42), "event_id must be a non-empty string"),
        "null user": (variant(user_id=None), "user_id must be a non-empty string"),
        "timestamp of the wrong type": (variant(timestamp=1767225600), "timestamp must be an ISO-8601 string"),
        "NUL in a field": (variant(item_id="item\x00"), "NUL"),
        "unknown tenant": (variant(tenant=f"ghost-{source}"), "unknown tenant"),
        "tenant by id, not slug": (variant(tenant=tenant_id), "unknown tenant"),
        "suspended tenant": (variant(tenant=suspended), "unknown tenant"),
        "deep nesting": (b"[" * 8_000 + b"]" * 8_000, "nested too deeply"),
        "lone surrogate": (variant(user_id="\ud800"), "lone surrogates"),
        "offset Postgres refuses": (variant(timestamp="2026-01-01T10:00:00+23:59"), "UTC offset"),
        "year beyond 9999 in UTC": (variant(timestamp="9999-12-31T23:59:59-05:00"), "years 1-9999"),
    }


def dead_letters(keys: set[bytes], *, timeout_s: float) -> dict[bytes, dict[str, str]]:
    """DLQ headers of the records with these keys, read from the start of every partition."""
    from kafka import TopicPartition

    from plugins.hooks.kafka import KafkaHook

    consumer = KafkaHook().consumer(group_id=None)
    try:
        partitions = [
            TopicPartition(config.DEAD_LETTER_TOPIC, p) for p in consumer.partitions_for_topic(config.DEAD_LETTER_TOPIC)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: dict[bytes, dict[str, str]] = {}
        deadline = time.monotonic() + timeout_s
        while set(found) != keys and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                found.update({r.key: {k: v.decode() for k, v in r.headers} for r in records if r.key in keys})
        return found
    finally:
        consumer.close()


def send_and_reconcile(db, new_tenant, wait_for, cases: set[str]) -> None:
    """Sends these hostile cases interleaved with good messages to the stack's worker, then reconciles."""
    from plugins.hooks.kafka import KafkaHook

    pid = worker_pid()
    tenant, suspended_tenant = new_tenant("hostile"), new_tenant("suspended")
    slug, tenant_id = tenant["slug"], tenant["tenant_id"]
    suspended, suspended_id = suspended_tenant["slug"], suspended_tenant["tenant_id"]
    with db.cursor() as cur:
        cur.execute("UPDATE tenants SET status = 'suspended' WHERE id = %s", (suspended_id,))
    source = f"hostile-{uuid.uuid4().hex[:8]}"
    poison = {c: sent for c, sent in hostile_messages(slug, tenant_id, suspended, source).items() if c in cases}
    good = [message(slug, source, n) for n in range(len(poison) + 5)]

    sent = []  # (key, value): good and poison interleaved, each keyed uniquely so the DLQ can be matched
    for n, m in enumerate(good):
        sent.append((f"{source}:good:{n}".encode(), json.dumps(m).encode()))
        if n < len(poison):
            case, (value, _reason) = list(poison.items())[n]
            sent.append((f"{source}:poison:{case}".encode(), value))
    result = KafkaHook().produce(config.INTERACTIONS_TOPIC, sent)
    assert result.acked == len(sent) and result.failed == 0, result.errors

    wait_for(lambda: landed(db, tenant_id, source) >= len(good), timeout_s=60, what="the valid rows to land")
    keys = {f"{source}:poison:{case}".encode() for case in poison}
    found = dead_letters(keys, timeout_s=60)

    missing = sorted(k.decode() for k in keys - set(found))
    assert not missing, f"neither landed nor dead-lettered: {missing}"
    for case, (_value, reason) in poison.items():
        headers = found[f"{source}:poison:{case}".encode()]
        assert reason in headers["reason"], (case, headers["reason"])
        assert headers["source_topic"] == config.INTERACTIONS_TOPIC
    time.sleep(1)  # anything landing late, or twice, would show now
    assert landed(db, tenant_id, source) + len(found) == len(sent)  # nothing dropped, nothing doubled
    assert worker_pid() == pid  # the same worker process took all of it
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM interactions WHERE tenant_id = %s", (suspended_id,))
        assert cur.fetchone()[0] == 0


def test_malformed_and_wrong_tenant_messages_are_dead_lettered_and_the_worker_survives(db, new_tenant, wait_for):
    send_and_reconcile(db, new_tenant, wait_for, set(hostile_messages("t", "id", "s", "src")))


def test_two_tenants_numbering_their_events_alike_both_land_in_full(db, new_tenant, wait_for):
    """Event ids are each tenant's own numbering: tenants A and B both send events 1, 2, 3 through the
    stack's worker, and each keeps its own three rows, untouched by the other's."""
    from plugins.hooks.kafka import KafkaHook

    source = f"shared-ids-{uuid.uuid4().hex[:8]}"
    a, b = new_tenant("shared-ids"), new_tenant("shared-ids")
    (slug_a, id_a), (slug_b, id_b) = (a["slug"], a["tenant_id"]), (b["slug"], b["tenant_id"])
    numbered = {
        f"{source}:{slug}:{n}".encode(): {**message(slug, source, n), "event_id": str(n), "user_id": user}
        for slug, user in ((slug_a, "alice"), (slug_b, "bob"))
        for n in (1, 2, 3)
    }
    sent = [(key, json.dumps(m).encode()) for key, m in numbered.items()]
    result = KafkaHook().produce(config.INTERACTIONS_TOPIC, sent)
    assert result.acked == len(sent) and result.failed == 0, result.errors

    both = lambda: (landed(db, id_a, source), landed(db, id_b, source))  # noqa: E731
    wait_for(lambda: both() == (3, 3), timeout_s=60, what="both tenants' rows")
    with db.cursor() as cur:
        cur.execute(
            "SELECT tenant_id, event_id, user_id FROM interactions WHERE source = %s ORDER BY tenant_id, event_id",
            (source,),
        )
        rows = cur.fetchall()
    expected = [(id_a, str(n), "alice") for n in (1, 2, 3)] + [(id_b, str(n), "bob") for n in (1, 2, 3)]
    assert sorted(rows) == sorted(expected)
    assert dead_letters({key for key, _value in sent}, timeout_s=3) == {}  # nothing of either was set aside


def test_landing_upserts_a_tenants_own_event_and_never_another_tenants(stack_env, db, new_tenant):
    """The worker's landing step on the real database, without joining the consumer group: B's event 1 lands
    beside A's, and A re-sending its event 1 updates A's row only."""
    source = f"shared-ids-{uuid.uuid4().hex[:8]}"
    a, b = new_tenant("shared-ids"), new_tenant("shared-ids")
    (slug_a, id_a), (slug_b, id_b) = (a["slug"], a["tenant_id"]), (b["slug"], b["tenant_id"])
    worker = Worker(load(stack_env))
    first = {**message(slug_a, source, 1), "event_id": "1"}
    values = [first, {**first, "tenant": slug_b, "user_id": "someone-else"}, {**first, "item_id": "item_resent"}]
    records = [Record("t", 0, n, None, json.dumps(v).encode()) for n, v in enumerate(values)]
    try:
        worker._land(worker._classify(records[:2]))
        landed_now = worker._land(worker._classify(records[2:]))
    finally:
        worker._db.close()
    assert landed_now == {(id_a, source): 1}
    assert (landed(db, id_a, source), landed(db, id_b, source)) == (1, 1)
    with db.cursor() as cur:
        cur.execute(
            "SELECT tenant_id, user_id, item_id FROM interactions WHERE source = %s AND event_id = '1'", (source,)
        )
        rows = sorted(cur.fetchall())
    assert rows == sorted([(id_a, first["user_id"], "item_resent"), (id_b, "someone-else", first["item_id"])])
