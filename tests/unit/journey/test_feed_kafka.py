"""feed_kafka's pure logic: the messages it produces (keyed by user, in time order) and the per-user order check."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from plugins.journey.feed_kafka import messages, user_order


def _landed(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "event_id", "ts", "kafka_partition", "kafka_offset"])
    return frame.assign(ts=pd.to_datetime(frame["ts"], utc=True))


def test_messages_are_keyed_by_user_in_timestamp_order_with_the_tenant_and_source():
    interactions = pd.DataFrame(
        {
            "event_id": ["e2", "e1", "e3"],
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i1", "i2", "i3"],
            "interaction_type": ["view", "click", "view"],
            "timestamp": ["2026-01-01T10:00:00+00:00", "2026-01-01T09:00:00+00:00", "2026-01-01T10:00:00+00:00"],
        }
    )
    batch = list(messages(interactions, tenant="acme", source="2026-01-01-abcd"))
    assert [key for key, _ in batch] == [b"u2", b"u1", b"u1"]
    bodies = [json.loads(value) for _, value in batch]
    # Same timestamp: the event id breaks the tie, so a re-run sends the same sequence.
    assert [b["event_id"] for b in bodies] == ["e1", "e2", "e3"]
    assert bodies[0] == {
        "tenant": "acme",
        "source": "2026-01-01-abcd",
        "event_id": "e1",
        "user_id": "u2",
        "item_id": "i2",
        "interaction_type": "click",
        "timestamp": "2026-01-01T09:00:00+00:00",
    }


def test_messages_carry_a_tenant_s_own_text_exactly_and_pass_the_worker_s_decoder():
    from include.recsys.ingest.worker import decode

    odd = ['caf\u00e9 "quoted" \\ back', "line\nbreak\ttab\x01", "\U0001f600 emoji", "NA", ""]
    interactions = pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(odd))],
            "user_id": odd,
            "item_id": list(reversed(odd)),
            "interaction_type": ["view"] * len(odd),
            "timestamp": ["2026-01-01T10:00:00+00:00"] * len(odd),
        }
    )
    batch = list(messages(interactions, tenant="acme", source="s"))
    assert [key.decode() for key, _ in batch] == odd
    for (_, value), (_, row) in zip(batch, interactions.iterrows(), strict=True):
        assert json.loads(value) == {"tenant": "acme", "source": "s", **row.to_dict()}
        assert b"\n" not in value  # control characters are escaped: one message, one line of JSON
    # The worker takes each one whose ids are non-empty, with the same text (its contract refuses empty ids).
    decoded = [decode(value) for _, value in batch]
    accepted = [user for user, item in zip(odd, reversed(odd), strict=True) if user and item]
    assert [m["user_id"] for m, reason in decoded if reason is None] == accepted == odd[1:4]


def test_user_order_holds_when_offsets_rise_with_time_on_one_partition():
    landed = _landed(
        [
            ("u1", "e1", "2026-01-01T09:00:00Z", 0, 5),
            ("u1", "e2", "2026-01-01T10:00:00Z", 0, 9),
            ("u2", "e3", "2026-01-01T09:30:00Z", 1, 2),
        ]
    )
    assert user_order(landed).set_index("user_id")["in_order"].to_dict() == {"u1": True, "u2": True}


def test_user_order_fails_a_user_whose_later_event_has_the_earlier_offset():
    landed = _landed(
        [
            ("u1", "e1", "2026-01-01T09:00:00Z", 0, 9),
            ("u1", "e2", "2026-01-01T10:00:00Z", 0, 5),
            ("u2", "e3", "2026-01-01T09:30:00Z", 1, 2),
            ("u2", "e4", "2026-01-01T09:40:00Z", 1, 3),
        ]
    )
    assert user_order(landed).set_index("user_id")["in_order"].to_dict() == {"u1": False, "u2": True}


def test_user_order_fails_a_user_split_across_partitions_even_with_rising_offsets():
    # Offsets of two partitions are not comparable: a user's events must share one to keep their order.
    landed = _landed(
        [
            ("u1", "e1", "2026-01-01T09:00:00Z", 0, 1),
            ("u1", "e2", "2026-01-01T10:00:00Z", 1, 2),
        ]
    )
    assert user_order(landed)["in_order"].tolist() == [False]


def test_user_order_orders_by_time_not_by_the_frame_s_row_order():
    landed = _landed(
        [
            ("u1", "e2", "2026-01-01T10:00:00Z", 0, 9),
            ("u1", "e1", "2026-01-01T09:00:00Z", 0, 5),
        ]
    )
    assert user_order(landed)["in_order"].tolist() == [True]


def test_read_arrow_keeps_ids_as_written_and_matches_read_table():
    from plugins.journey.tables import read_arrow, read_table

    text = (
        b"event_id,user_id,item_id,interaction_type,timestamp,extra\n"
        b"e1,NA,007,view,2026-01-01T10:00:00+00:00,x\n"
        b'e2,,"line\nbreak",click,2026-01-01T11:00:00Z,y\n'
    )
    table = read_arrow(io.BytesIO(text), "interactions")
    assert table.column_names == ["event_id", "user_id", "item_id", "interaction_type", "timestamp"]
    assert table.to_pandas().equals(read_table(text, "interactions"))
    assert read_arrow(io.BytesIO(text), "interactions", columns=("user_id",))["user_id"].to_pylist() == ["NA", ""]


def test_read_arrow_names_the_missing_columns():
    from plugins.journey.tables import read_arrow

    with pytest.raises(ValueError, match="interactions must be CSV with the columns"):
        read_arrow(io.BytesIO(b"event_id,user_id\ne1,u1\n"), "interactions")
