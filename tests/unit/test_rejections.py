"""Rejected rows counted by reason: the top reasons per table, each with its count and one example row."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from plugins.journey.rejections import describe, failure_text, summarize
from plugins.journey.seed_data import split_by_contract


def catalog_in_dollars() -> dict[str, pd.DataFrame]:
    """A shop's catalog with prices written as text: every row breaks the contract the same way."""
    items = pd.DataFrame(
        {
            "item_id": ["A1", "A2", "A3"],
            "title": ["Hose", "Leash", "Lamp"],
            "category": ["Garden", "Pets", "Lighting"],
            "price": ["$12.99", "$5", "$40.00"],
            "image_url": "",
        }
    )
    interactions = pd.DataFrame(
        {
            "event_id": ["e1", "e2"],
            "user_id": ["u1", "u2"],
            "item_id": ["A1", "A9"],
            "interaction_type": "view",
            "timestamp": "2026-03-01T10:00:00+00:00",
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2"], "country": "", "signup_date": ""})
    return {"items": items, "users": users, "interactions": interactions}


def test_an_all_rejected_catalog_names_its_reason_with_count_and_example():
    frames = catalog_in_dollars()
    _, rejected = split_by_contract(frames, window=None)
    summaries = {name: summarize(rejected[name], total=len(frames[name])) for name in frames}

    assert summaries["items"]["reasons"] == [
        {
            "reason": "price must be a number",
            "count": 3,
            "example": {
                "item_id": "A1",
                "title": "Hose",
                "category": "Garden",
                "price": "$12.99",
                "image_url": "",
                "source_row": "1",
                "reason": "price must be a number, got '$12.99'",
            },
        },
    ]
    assert describe(summaries) == [
        "items: 3 of 3 rows rejected: price must be a number (3, e.g. row 1: item_id='A1', title='Hose',"
        " category='Garden', price='$12.99')",
        "interactions: 2 of 2 rows rejected: item_id of a rejected catalog row (1, e.g. row 1: event_id='e1',"
        " user_id='u1', item_id='A1', interaction_type='view', timestamp='2026-03-01T10:00:00+00:00'); unknown item_id"
        " (1, e.g. row 2: event_id='e2', user_id='u2', item_id='A9', interaction_type='view',"
        " timestamp='2026-03-01T10:00:00+00:00')",
    ]
    assert failure_text(describe(summaries)).splitlines()[0] == "rejected rows:"


def test_the_top_reasons_come_most_frequent_first_and_the_rest_are_counted():
    reasons = ["b, got 1", "a, got 2", "a, got 3", "c", "d", "e", "f", "g"]
    rejected = pd.DataFrame({"item_id": [f"i{n}" for n in range(len(reasons))], "reason": reasons})
    summary = summarize(rejected, total=10, top=3)
    assert [(r["reason"], r["count"]) for r in summary["reasons"]] == [("a", 2), ("b", 1), ("c", 1)]
    assert summary["more_reasons"] == 4 and summary["rejected"] == 8 and summary["rows"] == 10
    assert describe({"items": summary})[0].endswith("; and 4 more reasons")


def test_nothing_rejected_says_nothing():
    empty = pd.DataFrame(columns=["item_id", "reason"])
    assert (
        describe({"items": summarize(empty, total=4)}) == []
        and failure_text(describe({"items": summarize(empty, total=4)})) == ""
    )


def test_window_rejections_count_as_one_reason_whatever_the_timestamps():
    frames = catalog_in_dollars()
    frames["items"]["price"] = "1.00"
    frames["interactions"]["item_id"] = "A1"
    frames["interactions"]["timestamp"] = ["2025-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00"]
    window = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    _, rejected = split_by_contract(frames, window=window)
    summary = summarize(rejected["interactions"], total=2)
    assert [(r["reason"], r["count"]) for r in summary["reasons"]] == [
        ("timestamp outside the run's interval [2026-03-01T00:00:00+00:00, 2026-03-02T00:00:00+00:00)", 2)
    ]
