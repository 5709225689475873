from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from include.recsys.contract.schema import ContractError
from include.recsys.ml import lightgcn
from include.recsys.ml.lightgcn import LightGCN, NormalizedAdjacency, TrainConfig, dedupe_pairs


def test_adjacency_is_symmetric_normalized():
    # users 0,1; items 0,1. Edges u0-i0, u0-i1, u1-i0: degrees u0=2, u1=1, i0=2, i1=1.
    dense = NormalizedAdjacency(np.array([0, 0, 1]), np.array([0, 1, 0]), n_users=2, n_items=2).to_dense()
    expected = np.zeros((4, 4), dtype=np.float32)
    for (u, i), value in {(0, 0): 1 / 2, (0, 1): 1 / math.sqrt(2), (1, 0): 1 / math.sqrt(2)}.items():
        expected[u, 2 + i] = expected[2 + i, u] = value
    np.testing.assert_allclose(dense, expected, rtol=1e-6)


def test_adjacency_products_block_by_block_equal_the_whole_matrix():
    rng = np.random.default_rng(3)
    users, items = dedupe_pairs(rng.integers(0, 50, 400), rng.integers(0, 30, 400), n_items=30)
    adjacency = NormalizedAdjacency(users, items, n_users=60, n_items=30)  # users 50-59 have no edges
    x = torch.randn(90, 8)
    np.testing.assert_allclose((adjacency @ x).numpy(), adjacency.to_dense() @ x.numpy(), rtol=1e-5, atol=1e-6)
    # A strided operand (a gradient can be one) gives the same product.
    wide = torch.randn(8, 90).T
    np.testing.assert_allclose((adjacency @ wide).numpy(), adjacency.to_dense() @ wide.numpy(), rtol=1e-5, atol=1e-6)


def test_repeated_events_are_one_positive():
    users, items = dedupe_pairs(np.array([1, 0, 1, 1]), np.array([2, 3, 2, 0]), n_items=4)
    assert users.tolist() == [0, 1, 1] and items.tolist() == [3, 0, 2]


@pytest.fixture(scope="module")
def model(planted, small_config):
    catalog = [*planted.items["item_id"], "item_never_seen"]
    return LightGCN(replace(small_config, epochs=10)).fit(planted.interactions, item_ids=catalog)


def test_every_id_gets_a_finite_embedding(model, planted, small_config):
    assert model.user_embeddings.shape == (planted.users.shape[0], small_config.dim)
    assert model.item_embeddings.shape == (planted.items.shape[0] + 1, small_config.dim)
    assert model.item_embeddings.dtype == np.float32
    assert np.isfinite(model.item_embeddings).all() and np.isfinite(model.user_embeddings).all()
    assert model.epochs_run == 10


def test_recommend_ranks_unseen_items_best_first(model, planted):
    users = ["user_00001", "user_00002"]
    items, scores = model.recommend(users, k=5)
    assert items.shape == scores.shape == (2, 5)
    assert (np.diff(scores, axis=1) <= 0).all()
    seen = planted.interactions.groupby("user_id")["item_id"].agg(set)
    for user, row in zip(users, items, strict=True):
        assert seen[user].isdisjoint(row) and len(set(row)) == 5
    with_seen, _ = model.recommend(users, k=model.item_ids.size, exclude_seen=False)
    assert seen["user_00001"] <= set(with_seen[0])


def test_recommend_names_unknown_users(model):
    with pytest.raises(ContractError, match=r"1 user_id value\(s\) not known to the model, e.g. \['nobody'\]"):
        model.recommend(["user_00001", "nobody"])


def test_same_seed_same_embeddings_other_seed_differs(planted, small_config):
    config = replace(small_config, epochs=2)
    first = LightGCN(config).fit(planted.interactions)
    again = LightGCN(config).fit(planted.interactions)
    other = LightGCN(replace(config, seed=1)).fit(planted.interactions)
    np.testing.assert_array_equal(first.item_embeddings, again.item_embeddings)
    assert not np.allclose(first.item_embeddings, other.item_embeddings)


def test_time_budget_stops_training_early(planted, small_config):
    model = LightGCN(replace(small_config, epochs=50, time_budget_seconds=0.0)).fit(planted.interactions)
    assert 0 < model.epochs_run < 1  # one optimizer step, then the budget is spent


def test_save_load_round_trip(model, tmp_path):
    model.save(str(tmp_path))
    loaded = LightGCN.load(str(tmp_path))
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.user_embeddings, model.user_embeddings)
    np.testing.assert_array_equal(loaded.item_embeddings, model.item_embeddings)
    expected, loaded_items = model.recommend(["user_00003"], k=10)[0], loaded.recommend(["user_00003"], k=10)[0]
    assert loaded_items.tolist() == expected.tolist()


def test_fit_validates_its_input(small_config):
    with pytest.raises(ContractError, match="interactions must have columns user_id, item_id; missing: item_id"):
        LightGCN(small_config).fit(pd.DataFrame({"user_id": ["u1"]}))
    with pytest.raises(ContractError, match="at least one row"):
        LightGCN(small_config).fit(pd.DataFrame({"user_id": [], "item_id": []}))
    with pytest.raises(ContractError, match=r"1 item_id value\(s\) not known to the model"):
        LightGCN(small_config).fit(pd.DataFrame({"user_id": ["u1"], "item_id": ["i9"]}), item_ids=["i1"])


def test_batch_scales_with_the_data_and_learning_rate_only_past_the_configured_batch():
    config = TrainConfig()
    assert config.scaled_for(30_000) == (3_000, config.lr)  # 10 steps per epoch, lr as configured
    assert config.scaled_for(1_000) == (config.min_batch_size, config.lr)  # tiny: no batch below the floor
    assert config.epochs_for(10) == config.max_steps // 10 and config.epochs_for(1) == config.epochs
    batch, lr = config.scaled_for(800_000)
    assert batch == 80_000 and -(-800_000 // batch) == config.max_steps_per_epoch
    assert lr == pytest.approx(config.lr * math.sqrt(80_000 / config.batch_size))


def test_a_fit_logs_its_progress_in_a_few_lines(planted, small_config, caplog, monkeypatch):
    # Every step past the progress interval logs (interval 0 here), so a 10-epoch fit logs its epochs and loss.
    monkeypatch.setattr(lightgcn, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger=lightgcn.__name__):
        model = LightGCN(replace(small_config, epochs=10)).fit(planted.interactions)
    lines = [r.getMessage() for r in caplog.records if r.name == lightgcn.__name__]
    assert any(line.startswith("epoch 1 of at most ") and ", loss " in line for line in lines)
    assert lines[-1].startswith(f"trained {model.epochs_run} epochs") and "stopped by epochs" in lines[-1]
