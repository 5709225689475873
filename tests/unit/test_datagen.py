from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from include.checksums import sha256_file
from include.recsys.contract.schema import (
    CATEGORIES,
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    ITEM_COLUMNS,
    USER_COLUMNS,
    interaction_problem,
    item_problem,
)
from include.recsys.datagen import generate, write_csv

from .conftest import PLANTED_END, PLANTED_START

DAY = datetime(2026, 11, 21, tzinfo=UTC)


def small(**overrides):
    kwargs = dict(
        tenant="acme",
        interval_start=DAY,
        interval_end=DAY + timedelta(days=1),
        seed=7,
        n_users=500,
        n_items=200,
        n_interactions=5_000,
    )
    return generate(**{**kwargs, **overrides})


def test_same_inputs_give_identical_csv_bytes(tmp_path):
    first = write_csv(small(), str(tmp_path / "a"))
    second = write_csv(small(), str(tmp_path / "b"))
    assert sorted(first) == ["interactions", "items", "users"]
    for name in first:
        assert sha256_file(first[name]) == sha256_file(second[name]), name
    with open(first["interactions"], "rb") as handle:
        assert b"\r" not in handle.read()


def test_other_day_tenant_or_seed_changes_every_event_id():
    base = set(small().interactions["event_id"])
    for changed in (
        small(interval_start=DAY + timedelta(days=1), interval_end=DAY + timedelta(days=2)),
        small(tenant="globex"),
        small(seed=8),
    ):
        assert base.isdisjoint(changed.interactions["event_id"])


def test_columns_match_the_contract(planted):
    assert tuple(planted.items.columns) == ITEM_COLUMNS
    assert tuple(planted.users.columns) == USER_COLUMNS
    assert tuple(planted.interactions.columns) == INTERACTION_COLUMNS


def test_rows_are_contract_valid_and_inside_the_window(planted):
    items = planted.items
    assert [p for p in (item_problem(r) for r in items.to_dict("records")) if p] == []
    item_ids = frozenset(items["item_id"])
    window = (PLANTED_START, PLANTED_END)
    rows = planted.interactions.to_dict("records")
    problems = [interaction_problem(r, item_ids=item_ids, window=window) for r in rows]
    assert [p for p in problems if p] == []


def test_ids_are_unique_and_well_formed(planted):
    assert planted.items["item_id"].is_unique and planted.users["user_id"].is_unique
    assert planted.items["item_id"].str.fullmatch(r"item_\d{5}").all()
    assert planted.users["user_id"].str.fullmatch(r"user_\d{5}").all()
    events = planted.interactions["event_id"]
    assert events.is_unique
    assert all(str(uuid.UUID(e)) == e for e in events)
    assert set(planted.interactions["user_id"]) <= set(planted.users["user_id"])


def test_id_width_grows_with_the_population():
    data = small(n_users=120_000, n_items=50, n_interactions=120_000)
    assert data.users["user_id"].iloc[0] == "user_000001"
    assert data.users["user_id"].iloc[-1] == "user_120000"


def test_catalog_and_users_look_plausible(planted):
    items, users = planted.items, planted.users
    assert set(items["category"]) <= set(CATEGORIES)
    assert (items["price"] > 0).all() and (items["price"].round(2) == items["price"]).all()
    assert (items["image_url"] == "https://img.example.com/planted/" + items["item_id"] + ".jpg").all()
    assert items["title"].str.fullmatch(r"[A-Z][\w ]+ [\w\- ]+ [A-Z]\d+( \w+)?").all(), items["title"].head()
    assert (pd.to_datetime(users["signup_date"]) < pd.Timestamp(PLANTED_START.date())).all()
    assert users["country"].str.fullmatch(r"[A-Z]{2}").all()


def test_events_are_chronological_and_increase_per_user(planted):
    interactions = planted.interactions
    assert interactions["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert interactions["timestamp"].is_monotonic_increasing
    per_user_steps = pd.to_datetime(interactions["timestamp"]).groupby(interactions["user_id"]).diff().dropna()
    assert (per_user_steps > pd.Timedelta(0)).all()


def test_everyone_shows_up_and_views_dominate(planted):
    interactions = planted.interactions
    assert set(interactions["user_id"]) == set(planted.users["user_id"])
    mix = interactions["interaction_type"].value_counts(normalize=True)
    assert set(mix.index) == set(INTERACTION_TYPES)
    assert mix["view"] > 0.6 and mix["purchase"] < mix["add_to_cart"] < mix["click"]


def test_taste_is_concentrated_but_not_exclusive(planted):
    """Users favour a few categories, yet still browse outside them (cross-cluster noise)."""
    joined = planted.interactions.merge(planted.items[["item_id", "category"]], on="item_id")
    heavy = joined.groupby("user_id").filter(lambda g: len(g) >= 20)
    top_two_share = heavy.groupby("user_id")["category"].agg(lambda c: c.value_counts().iloc[:2].sum() / len(c))
    assert 0.7 < top_two_share.median() < 1.0


def test_rejects_naive_times_and_windows_too_short_for_per_user_order():
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(tenant="acme", interval_start=datetime(2026, 1, 1), interval_end=datetime(2026, 1, 2), seed=1)
    with pytest.raises(ValueError, match=re.escape("has 10 whole seconds")):
        small(interval_end=DAY + timedelta(seconds=10))
    with pytest.raises(ValueError, match="interval_end must be after interval_start"):
        small(interval_end=DAY)
