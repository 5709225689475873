"""The ingestion worker's message classification, without a broker or database.

Each hostile value here once crashed the worker (an exception outside its retry loop, so the process
died and the same message came back on every restart) or failed its whole batch in Postgres. Now each
is a poison message with a reason. The real worker takes the same values in
tests/integration/test_recsys_ingest_hostile.py.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from include.recsys.ingest.worker import Record, Tenants, Worker, decode

VALID = {
    "tenant": "acme",
    "source": "run-1",
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "interaction_type": "view",
    "timestamp": "2026-01-01T10:00:00+00:00",
}


def encoded(**changes) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 8_000 + b"]" * 8_000, "nested too deeply"),
        (b'{"a":' * 2_500 + b"1" + b"}" * 2_500, "nested too deeply"),
        (encoded(user_id="\ud800"), "lone surrogates"),
        (encoded(timestamp="2026-01-01T10:00:00+23:59"), "UTC offset must be under 16 hours"),
        (encoded(timestamp="2026-01-01T10:00:00-16:00"), "UTC offset must be under 16 hours"),
        (encoded(timestamp="9999-12-31T23:59:59-05:00"), "years 1-9999"),
        (encoded(timestamp="0001-01-01T00:00:00+01:00"), "years 1-9999"),
        (encoded(item_id="i\x001"), "NUL"),
    ],
)
def test_former_poison_pills_are_classified_not_raised(value, reason):
    message, why = decode(value)
    assert message is None and reason in why


def test_edge_values_postgres_accepts_stay_valid():
    for timestamp in ("2026-01-01T10:00:00+15:59", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59Z"):
        assert decode(encoded(timestamp=timestamp)) == ({**VALID, "timestamp": timestamp}, None)


class FakeDb:
    def __init__(self, tenants: dict[str, str]) -> None:
        self.tenants = tenants
        self.queries: list[str] = []

    @contextmanager
    def transaction(self):
        yield self

    def execute(self, sql: str, params=()) -> None:
        self.queries.append(sql)
        wanted = set(params[0]) if params else set(self.tenants)
        self.rows = [{"slug": s, "id": i} for s, i in self.tenants.items() if s in wanted]

    def fetchall(self) -> list[dict]:
        return self.rows


def test_a_tenant_created_right_after_a_refresh_is_resolved():
    db = FakeDb({"acme": "t-acme"})
    tenants = Tenants(db)
    assert tenants.resolve({"acme", "ghost"}) == {"acme": "t-acme"}  # full refresh
    db.tenants["newco"] = "t-newco"  # created within TENANT_REFRESH_S of that refresh
    assert tenants.resolve({"newco"})["newco"] == "t-newco"
    assert tenants.resolve({"acme", "newco"}) == {"acme": "t-acme", "newco": "t-newco"}
    assert len(db.queries) == 2  # known slugs cost no query


def test_one_event_id_from_two_tenants_in_a_batch_keeps_both_and_a_resend_upserts_its_own():
    worker = Worker.__new__(Worker)  # classification only: no broker, no database
    worker._tenants = Tenants(FakeDb({"acme": "t-acme", "other": "t-other"}))
    values = [encoded(), encoded(tenant="other", user_id="u2"), encoded(user_id="u3")]
    records = [Record("t", 0, n, None, v) for n, v in enumerate(values)]

    batch = worker._classify(records)
    assert batch.poison == []
    assert batch.rows[("t-acme", "e1")][1:3] == ("t-acme", "u3")  # the same tenant's re-send keeps the last
    assert batch.rows[("t-other", "e1")][1:3] == ("t-other", "u2")
    assert dict(batch.counts) == {("t-acme", "run-1"): 2, ("t-other", "run-1"): 1}
    assert batch.next_offsets == {("t", 0): 3}


def test_json_the_fast_decoder_refuses_is_still_decoded_as_json_decodes_it():
    # msgspec refuses NaN and 1e400, which json.loads accepts: an extra field holding one leaves the
    # message valid, as it was before the fast path, rather than dead-lettering it as undecodable.
    for extra in (b"NaN", b"1e400", b"-Infinity"):
        value = encoded()[:-1] + b', "score": ' + extra + b"}"
        message, why = decode(value)
        assert why is None and message["event_id"] == "e1"
    assert decode(b"null") == (None, "message must be a JSON object, got NoneType")
