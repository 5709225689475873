"""Upload drift: popularity deciles, shares, and the drift batch against a previous upload."""

from __future__ import annotations

import pandas as pd
import pytest

from plugins.journey import drift


def tables(item_ids: list[str], *, users: int = 4, types: list[str] | None = None) -> dict[str, pd.DataFrame]:
    picks = [item_ids[i % len(item_ids)] for i in range(40)]
    return {
        "items": pd.DataFrame({"item_id": item_ids}),
        "users": pd.DataFrame({"user_id": [f"u{i}" for i in range(users)]}),
        "interactions": pd.DataFrame({"item_id": picks, "interaction_type": types or ["view", "click"] * 20}),
    }


def test_popularity_deciles_put_the_most_interacted_tenth_in_d01_and_ties_in_id_order():
    # 20 items: i00 has 3 interactions, i01 2, the rest 1; ties ordered by id.
    ids = pd.Series(["i00"] * 3 + ["i01"] * 2 + [f"i{n:02d}" for n in range(2, 20)])
    deciles = drift.popularity_deciles(ids)
    by_item = dict(zip(ids, deciles, strict=True))
    assert by_item["i00"] == "d01" and by_item["i01"] == "d01"  # ranks 0 and 1 of 20
    assert by_item["i02"] == "d02" and by_item["i19"] == "d10"
    assert drift.shares(deciles)["d01"] == pytest.approx(5 / 23, abs=1e-6)


def test_partition_weights_sum_to_one():
    part = drift.partition({"a": 0.333333, "b": 0.333333, "c": 0.333333})
    assert part["values"] == ["a", "b", "c"] and sum(part["weights"]) == pytest.approx(1.0)


def test_half_the_items_replaced_shows_as_half_new_items_and_an_unchanged_upload_as_none():
    before = tables([f"i{n}" for n in range(10)])
    same = drift.table_rows(tables([f"i{n}" for n in range(10)]), before).set_index("table")
    assert same.loc["items", "new_share"] == 0.0 and same.loc["users", "new_share"] == 0.0
    assert same.loc["interactions", "row_ratio"] == 1.0
    half = drift.table_rows(tables([f"i{n}" for n in range(5, 15)]), before).set_index("table")
    assert half.loc["items", "new_share"] == 0.5


def test_a_first_upload_has_no_baseline_and_compares_with_itself():
    now = tables([f"i{n}" for n in range(10)])
    params = {"drift_min_row_ratio": 0.5, "drift_max_row_ratio": 2.0, "drift_max_new_share": 0.2, "drift_max_kl": 0.1}
    batches, parameters, section = drift.batches(now, None, previous_profile=None, params=params)
    assert batches["drift"]["row_ratio"].isna().all() and section["previous_profile"] is None
    assert parameters["interaction_type_partition"] == drift.partition(section["profile"]["interaction_type"])
    assert section["tables"]["items"] == {"rows": 10, "previous_rows": None, "row_ratio": None, "new_share": None}
