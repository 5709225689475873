from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from include.recsys.contract.artifacts import TrainResult
from include.recsys.contract.schema import CATEGORIES
from include.recsys.ml import serving

N_ITEMS, N_USERS, DIM = 200, 50, 16


@pytest.fixture(scope="module")
def artifacts() -> TrainResult:
    rng = np.random.default_rng(7)
    return TrainResult(
        item_ids=[f"item_{i:03d}" for i in range(N_ITEMS)],
        item_embeddings=rng.normal(size=(N_ITEMS, DIM)).astype(np.float32),
        user_ids=[f"user_{u:03d}" for u in range(N_USERS)],
        user_embeddings=rng.normal(size=(N_USERS, DIM)).astype(np.float32),
        popular_items=[f"item_{i:03d}" for i in reversed(range(N_ITEMS))],
        config={"dim": DIM},
        metrics={"ndcg_at_10": 0.5},
    )


@pytest.fixture(scope="module")
def catalog() -> dict[str, str]:
    return {f"item_{i:03d}": CATEGORIES[i % 3] for i in range(N_ITEMS)}


@pytest.fixture(scope="module")
def history() -> dict[str, list[str]]:
    return {
        "user_000": ["item_000", "item_001", "item_002", "not_in_model"],
        "cold_user": ["item_199"],
    }


@pytest.fixture(scope="module")
def model(artifacts, catalog, history) -> serving.TenantModel:
    return serving.TenantModel.build(artifacts, version="v1", categories=catalog, history=history)


def brute_force(artifacts, user_row: int, *, exclude: set[str], allowed=None) -> list[str]:
    scores = artifacts.item_embeddings @ artifacts.user_embeddings[user_row]
    order = np.argsort(-scores, kind="stable")
    return [
        artifacts.item_ids[i]
        for i in order
        if artifacts.item_ids[i] not in exclude and (allowed is None or artifacts.item_ids[i] in allowed)
    ]


def test_index_holds_every_item(model):
    assert model.index_size == N_ITEMS
    assert model.version == "v1"


def test_scores_are_inner_products_sorted_and_unique(model, artifacts):
    items, fallback = model.recommend("user_005", count=10)
    assert not fallback
    assert [r.item_id for r in items] == brute_force(artifacts, 5, exclude=set())[:10]
    scores = [r.score for r in items]
    assert scores == sorted(scores, reverse=True)
    best = artifacts.item_ids.index(items[0].item_id)
    assert items[0].score == pytest.approx(
        float(artifacts.item_embeddings[best] @ artifacts.user_embeddings[5]), rel=1e-5
    )


def test_items_the_user_interacted_with_are_excluded(model, artifacts, history):
    # Make sure the history items would otherwise rank: ask for everything.
    items, _ = model.recommend("user_000", count=100)
    ids = [r.item_id for r in items]
    assert len(ids) == 100 == len(set(ids))
    assert not set(history["user_000"]) & set(ids)
    assert ids == brute_force(artifacts, 0, exclude=set(history["user_000"]))[:100]


def test_all_unseen_items_are_reachable(model):
    items, _ = model.recommend("user_000", count=N_ITEMS)
    assert len(items) == N_ITEMS - 3


def test_category_filter_is_honoured_without_losing_count(model, artifacts, catalog, history):
    allowed = {i for i, c in catalog.items() if c == CATEGORIES[1]}
    items, fallback = model.recommend("user_000", count=20, category=CATEGORIES[1])
    assert not fallback
    assert len(items) == 20
    assert {r.category for r in items} == {CATEGORIES[1]}
    assert [r.item_id for r in items] == brute_force(artifacts, 0, exclude=set(history["user_000"]), allowed=allowed)[
        :20
    ]


def test_category_with_no_items_returns_nothing(model):
    assert model.recommend("user_003", count=5, category=CATEGORIES[9]) == ([], False)


def test_unknown_user_gets_popular_items_minus_history(model):
    items, fallback = model.recommend("cold_user", count=5)
    assert fallback
    assert [r.item_id for r in items] == ["item_198", "item_197", "item_196", "item_195", "item_194"]
    scores = [r.score for r in items]
    assert scores == sorted(scores, reverse=True)


def test_fallback_honours_category(model, catalog):
    items, fallback = model.recommend("nobody", count=4, category=CATEGORIES[0])
    assert fallback and len(items) == 4
    assert all(catalog[r.item_id] == CATEGORIES[0] for r in items)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("item_ids", ["dup"] * N_ITEMS, "item_ids.json has duplicate ids"),
        ("user_embeddings", np.full((N_USERS, DIM), np.nan, dtype=np.float32), "NaN"),
        ("user_embeddings", np.zeros((N_USERS, DIM + 1), dtype=np.float32), "item dim 16 != user dim 17"),
        ("item_embeddings", np.zeros((N_ITEMS, DIM)), "must be float32"),
    ],
)
def test_unservable_artifacts_are_rejected_with_a_reason(artifacts, field, value, message):
    serving.check_servable(artifacts, where="s3://b/t/v1/")
    with pytest.raises(serving.ArtifactError, match=message):
        serving.check_servable(replace(artifacts, **{field: value}), where="s3://b/t/v1/")


def test_registry_swaps_whole_models(model, artifacts, catalog):
    registry = serving.Registry()
    registry.put("t1", model)
    before = registry._models
    newer = serving.TenantModel.build(artifacts, version="v2", categories=catalog, history={})
    registry.put("t1", newer)
    assert registry.get("t1") is newer
    assert before["t1"] is model  # readers holding the old mapping still see a complete model
    assert registry.versions() == {"t1": "v2"}


def test_candidates_answer_only_when_pinned_and_a_promoted_candidate_is_kept_once(model, artifacts, catalog):
    registry = serving.Registry()
    registry.put("t1", model)
    candidate = serving.TenantModel.build(artifacts, version="v0-old", categories=catalog, history={})
    registry.put_candidate("t1", candidate)
    assert registry.get("t1") is model  # unpinned traffic still goes to the live model
    assert registry.get_version("t1", "v0-old") is candidate
    assert registry.get_version("t1", model.version) is model
    assert registry.get_version("t2", "v0-old") is None  # another tenant never reaches it
    assert registry.versions() == {"t1": model.version}

    registry.put("t1", candidate)  # promoted to live: served once, as the live model
    assert registry.get("t1") is candidate and registry._candidates == {}
    registry.put_candidate("t1", model)
    assert registry.drop_candidate("t1", model.version) is True
    assert registry.drop_candidate("t1", model.version) is False
    assert registry.get_version("t1", model.version) is None


def test_popularity_scores_descend_after_filtering():
    popularity = serving.Popularity(("a", "b", "c", "d"), {"a": "tv", "b": "audio", "c": "tv", "d": "tv"})
    items = popularity.top(2, category="tv", exclude={"a"})
    assert [(r.item_id, r.score) for r in items] == [("c", 1 / 3), ("d", 1 / 4)]
