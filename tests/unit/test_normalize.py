"""A tenant's tables in the contract's layout: mapped columns, derived event ids, timestamps in every accepted
form, interaction vocabularies, and catalogs with only an item_id and any taxonomy."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from include.recsys.contract.schema import ContractError
from plugins.journey.normalize import Layout, normalize_interactions, normalize_items

STAND_IN = datetime(2026, 11, 10, tzinfo=UTC)


def interactions(raw: dict, *, tenant: str = "acme", **layout):
    return normalize_interactions(
        pd.DataFrame(raw), tenant=tenant, layout=Layout(**layout), stand_in=STAND_IN, what="log"
    )


def test_columns_are_mapped_unmapped_names_looked_up_as_is_and_extras_ignored():
    out = interactions(
        {"userId": ["u1"], "item_id": ["i1"], "ts": ["2026-03-01T10:00:00+01:00"], "rating": ["5"], "extra": ["x"]},
        columns={"interactions": {"user_id": "userId", "timestamp": "ts"}},
        default_interaction_type="click",
    )
    assert out.frame.to_dict("records") == [
        {
            "event_id": out.frame["event_id"][0],
            "user_id": "u1",
            "item_id": "i1",
            "interaction_type": "click",
            "timestamp": "2026-03-01T09:00:00+00:00",
        }
    ]
    assert out.notes["user_id"] == "from column 'userId'" and out.notes["item_id"] == "given"


def test_a_mapped_column_missing_from_the_file_is_a_clear_error():
    with pytest.raises(
        ContractError,
        match=r"log has no column 'userId' \(for user_id\), as params columns.interactions says; found: user, item_id",
    ):
        interactions({"user": ["u1"], "item_id": ["i1"]}, columns={"interactions": {"user_id": "userId"}})


def test_only_user_and_item_are_required():
    with pytest.raises(
        ContractError, match=r"must have columns userId, item_id; missing: item_id \(found: item, userId\)"
    ):
        interactions({"userId": ["u1"], "item": ["i1"]}, columns={"interactions": {"user_id": "userId"}})
    out = interactions({"user_id": ["u1", "u2"], "item_id": ["i1", "i1"]})
    assert out.frame["interaction_type"].tolist() == ["view", "view"]
    assert out.frame["timestamp"].tolist() == [STAND_IN.isoformat()] * 2
    assert out.notes["timestamp"].startswith("absent: every event stamped 2026-11-10T00:00:00+00:00")
    assert out.notes["interaction_type"] == "absent: every event 'view' (default_interaction_type)"


def test_layout_params_are_checked():
    with pytest.raises(ValueError, match="columns.interactions maps the contract's columns .*; got 'userid'"):
        Layout(columns={"interactions": {"userid": "u"}}).check()
    with pytest.raises(
        ValueError, match="interaction_type_map maps to view, click, add_to_cart, purchase; got '5': 'love'"
    ):
        Layout(interaction_type_map={"5": "love"}).check()
    with pytest.raises(ValueError, match="timezone must be an IANA name such as 'Europe/Berlin', got 'CEST'"):
        Layout(timezone="CEST").check()


def test_derived_event_ids_reproduce_include_the_tenant_and_number_exact_repeats():
    raw = {
        "user_id": ["u1", "u1", "u2", "u1"],
        "item_id": ["i1", "i1", "i1", "i1"],
        "timestamp": ["1700000000", "1700000000", "1700000000", "1700000001"],
    }
    first = interactions(raw).frame["event_id"]
    assert first.tolist() == interactions(raw).frame["event_id"].tolist()
    assert first.is_unique
    stems = first.str.rsplit("-", n=1).str[0]
    assert stems[0] == stems[1] and first[0].endswith("-0") and first[1].endswith("-1")  # one event, sent twice
    assert len(set(stems)) == 3
    assert set(first).isdisjoint(interactions(raw, tenant="globex").frame["event_id"])
    # Other rows do not change an event's id: reordering the file keeps every id.
    reordered = interactions({k: v[::-1] for k, v in raw.items()}).frame["event_id"]
    assert set(reordered) == set(first)
    assert "1 exact repeats of an event kept with their ordinal" in interactions(raw).notes["event_id"]


def test_timestamps_in_every_accepted_form_become_utc():
    raw = {
        "user_id": ["u"] * 6,
        "item_id": ["i"] * 6,
        "timestamp": [
            "2026-03-29T03:30:00+02:00",  # with an offset
            "2026-03-29 01:30:00",  # naive, Berlin winter time
            "2026-03-29 03:30:00",  # naive, Berlin summer time (the clocks jumped at 02:00)
            "1774747800",  # epoch seconds
            "1774747800000",  # epoch milliseconds
            "2026-03-29T01:30:00Z",
        ],
    }
    out = interactions(raw, timezone="Europe/Berlin")
    assert out.frame["timestamp"].tolist() == [
        "2026-03-29T01:30:00+00:00",
        "2026-03-29T00:30:00+00:00",
        "2026-03-29T01:30:00+00:00",
        "2026-03-29T01:30:00+00:00",
        "2026-03-29T01:30:00+00:00",
        "2026-03-29T01:30:00+00:00",
    ]
    assert out.reasons.isna().all()


def test_naive_timestamps_without_a_timezone_fail_naming_the_param():
    with pytest.raises(
        ContractError, match=r"2 timestamps carry no UTC offset \(e.g. '2026-03-01 10:00:00'\); set the timezone param"
    ):
        interactions({"user_id": ["u", "u"], "item_id": ["i", "i"], "timestamp": ["2026-03-01 10:00:00"] * 2})


def test_unreadable_timestamps_keep_their_text_and_get_a_reason():
    out = interactions(
        {"user_id": ["u"] * 4, "item_id": ["i"] * 4, "timestamp": ["03/01/2026", "", "1e20", "99999999999999999"]}
    )
    assert out.frame["timestamp"].tolist() == ["03/01/2026", "", "1e20", "99999999999999999"]
    assert out.reasons.tolist() == [
        "timestamp must be ISO-8601 or epoch seconds/milliseconds, got '03/01/2026'",
        "timestamp must not be empty",
        "timestamp must be ISO-8601 or epoch seconds/milliseconds, got '1e20'",
        "epoch timestamp must be in seconds or milliseconds, got '99999999999999999'",
    ]


def test_the_tenants_vocabulary_is_mapped_as_strings_and_unmapped_values_get_a_reason():
    out = interactions(
        {"user_id": ["u"] * 4, "item_id": ["i"] * 4, "rating": ["5", " 1", "4.5", "view"]},
        columns={"interactions": {"interaction_type": "rating"}},
        interaction_type_map={"5": "purchase", "1": "view"},
    )
    assert out.frame["interaction_type"].tolist() == ["purchase", "view", "4.5", "view"]
    assert out.reasons.tolist() == [
        None,
        None,
        "interaction_type not in interaction_type_map, got '4.5'",
        "interaction_type not in interaction_type_map, got 'view'",
    ]


def test_no_interaction_type_and_no_default_is_a_clear_error():
    with pytest.raises(
        ContractError,
        match="no interaction_type column: map one with params columns.interactions.interaction_type or set default_interaction_type",
    ):
        interactions({"user_id": ["u"], "item_id": ["i"]}, default_interaction_type=None)


def test_a_catalog_needs_only_item_ids_and_keeps_its_own_taxonomy():
    out = normalize_items(
        pd.DataFrame({"sku": ["A1", "A2"], "department": [" Garden ", "Pet Supplies"], "name": ["Hose", "Leash"]}),
        layout=Layout(columns={"items": {"item_id": "sku", "category": "department"}}),
        what="catalog",
    )
    assert out.frame.to_dict("list") == {
        "item_id": ["A1", "A2"],
        "title": ["", ""],
        "category": ["Garden", "Pet Supplies"],
        "price": ["", ""],
        "image_url": ["", ""],
    }
    assert out.notes == {
        "item_id": "from column 'sku'",
        "title": "absent",
        "category": "from column 'department'",
        "price": "absent",
        "image_url": "absent",
    }
