from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from include.recsys.contract.schema import ContractError
from include.recsys.ml.lightgcn import dedupe_pairs
from include.recsys.ml.metrics import (
    Ranking,
    beyond_accuracy,
    evaluate_topk,
    gini,
    ndcg_from_hits,
    paired_ratio_interval,
    popularity_scorer,
    recall_from_hits,
    split_holdout,
)


def test_ndcg_against_hand_computed_values():
    hits = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    n_relevant = torch.tensor([2, 5, 0, 3])
    expected = [
        (1 + 1 / 2) / (1 + 1 / math.log2(3)),  # hits at ranks 1 and 3; ideal: ranks 1 and 2
        (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / 2),  # ideal DCG over min(k=3, 5) hits
        0.0,  # nothing relevant: scored 0, not NaN
        1.0,
    ]
    assert ndcg_from_hits(hits, n_relevant).tolist() == pytest.approx(expected)


def test_recall_against_hand_computed_values():
    hits = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert recall_from_hits(hits, torch.tensor([4, 1, 0])).tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_evaluate_excludes_training_items_and_averages_over_test_users():
    # 3 users x 4 items. User 0 trained on item 0 (top score) so item 1 ranks first: a hit at rank 1.
    # User 1's held-out item 3 ranks 2nd at k=2. User 2 has no held-out items and is not averaged.
    scores = torch.tensor([[9.0, 8.0, 7.0, 1.0], [9.0, 1.0, 3.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    train = (np.array([0, 1, 2]), np.array([0, 0, 1]))
    test = (np.array([0, 1]), np.array([1, 3]))
    result = evaluate_topk(
        lambda users: scores[users], train_pairs=train, test_pairs=test, n_users=3, k=2, batch_size=1
    )
    assert result["users"] == 2
    assert result["ndcg"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    assert result["recall"] == pytest.approx(1.0)


def test_evaluate_needs_held_out_items():
    with pytest.raises(ContractError, match="at least one user with held-out items"):
        evaluate_topk(
            lambda u: torch.zeros(len(u), 2),
            train_pairs=(np.array([0]), np.array([0])),
            test_pairs=(np.array([], dtype=int), np.array([], dtype=int)),
            n_users=1,
        )


def test_popularity_ranks_items_by_distinct_training_users():
    scorer = popularity_scorer((np.array([0, 1, 2, 0]), np.array([2, 2, 2, 1])), n_items=3)
    assert scorer(np.array([0, 1])).tolist() == [[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]]


def interactions(n_users: int = 50, items_per_user: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"i{i}") for u in range(n_users) for i in rng.choice(40, items_per_user, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return pd.concat([frame, frame.iloc[:30]], ignore_index=True)  # repeat events of the same pairs


def test_split_is_per_user_and_keeps_pairs_on_one_side():
    frame = pd.concat([interactions(), pd.DataFrame({"user_id": ["light"] * 2, "item_id": ["i1", "i2"]})])
    train, test = split_holdout(frame, seed=0, holdout_fraction=0.2, min_user_items=3)
    assert len(train) + len(test) == len(frame)
    held_per_user = test.drop_duplicates().groupby("user_id").size()
    assert (held_per_user == 2).all() and len(held_per_user) == 50  # round(0.2 * 10) of every eligible user
    assert "light" not in set(test["user_id"])  # fewer than min_user_items distinct items: train only
    pairs = lambda df: set(map(tuple, df[["user_id", "item_id"]].to_numpy()))  # noqa: E731
    assert pairs(train).isdisjoint(pairs(test))


def test_split_is_deterministic_and_independent_of_row_order():
    frame = interactions()
    _, test = split_holdout(frame, seed=5)
    _, again = split_holdout(frame.sample(frac=1.0, random_state=1), seed=5)
    _, other_seed = split_holdout(frame, seed=6)
    as_set = lambda df: set(map(tuple, df.to_numpy()))  # noqa: E731
    assert as_set(test) == as_set(again)
    assert as_set(test) != as_set(other_seed)


def test_split_rejects_bad_fraction_and_missing_columns():
    with pytest.raises(ValueError, match=r"holdout_fraction must be in \(0, 1\), got 1.0"):
        split_holdout(interactions(), seed=0, holdout_fraction=1.0)
    with pytest.raises(ContractError, match="interactions must have columns user_id, item_id; missing: item_id"):
        split_holdout(pd.DataFrame({"user_id": ["u"]}), seed=0)


def test_gini_against_hand_computed_values():
    assert gini(np.array([5, 5, 5, 5])) == 0.0
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(3 / 4)  # one item holds all exposure: (n-1)/n
    # sorted 1, 2, 3, 4: sum((2i - n - 1) x_i) / (n sum x) = (-3 - 2 + 3 + 12) / (4 * 10)
    assert gini(np.array([3, 1, 4, 2])) == pytest.approx(10 / 40)
    assert gini(np.array([0, 0])) == 0.0


def test_paired_ratio_interval_against_hand_computed_values():
    # mean(a) = mean(b) = 0.5, ratio 1; a - 1 * b = [0, -1, 1, 0] has sample sd sqrt(2/3), so the
    # ratio's standard error is sqrt(2/3) / 0.5 / sqrt(4) and the interval 1 +- 1.96 of it.
    low, high = paired_ratio_interval(np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0, 0.0]))
    half = 1.96 * math.sqrt(2 / 3) / 0.5 / 2
    assert (low, high) == pytest.approx((1 - half, 1 + half))
    # Identical models: no spread, the point ratio both ways.
    assert paired_ratio_interval(np.array([0.2, 0.4]), np.array([0.2, 0.4])) == pytest.approx((1.0, 1.0))
    assert paired_ratio_interval(np.array([0.3]), np.array([0.6])) == pytest.approx((0.5, 0.5))
    with pytest.raises(ContractError, match=r"got shapes \(2,\) and \(3,\)"):
        paired_ratio_interval(np.zeros(2), np.zeros(3))
    with pytest.raises(ContractError, match="non-empty"):
        paired_ratio_interval(np.zeros(0), np.zeros(0))


def test_paired_ratio_interval_tells_noise_from_a_worse_model():
    """Per-user NDCGs of two models as correlated as two real ones: a model as good as the baseline has
    the interval cover 1 about 95% of the time over many splits, and one 20% worse has it under 0.95."""

    def users(rng, n, quality):
        taste = rng.beta(0.6, 1.2, n)  # how predictable each user is, shared by both models
        return np.clip(taste * quality + rng.normal(0, 0.15, n), 0, 1), np.clip(taste + rng.normal(0, 0.15, n), 0, 1)

    rng = np.random.default_rng(7)
    covered = [low <= 1 <= high for low, high in (paired_ratio_interval(*users(rng, 400, 1.0)) for _ in range(300))]
    assert 0.91 <= np.mean(covered) <= 0.99
    worse = [paired_ratio_interval(*users(rng, 400, 0.8))[1] for _ in range(50)]
    assert max(worse) < 0.95

    # 5 items. Users 0 and 1 trained on items 0, 1 (2 items: cold start, < 5); user 2 on all 5 (not cold).
    # Training popularity (distinct users): item0 3, item1 3, items 2-4 1 each -> catalog mean 9/5.
    users = np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    items = np.array([0, 1, 1, 0, 0, 1, 2, 3, 4, 4])  # repeated events of a pair count once
    ranking = Ranking(
        users=np.array([0, 1, 2]),
        top=np.array([[2, 3], [2, 4], [1, 4]]),
        ndcg=np.array([1.0, 0.5, 0.0]),
        recall=np.array([1.0, 1.0, 0.0]),
    )
    figures = beyond_accuracy(ranking, train_pairs=dedupe_pairs(users, items, n_items=5), n_items=5, k=2)
    # Exposure: item0 0, item1 1, item2 2, item3 1, item4 2 -> 4 of 5 items recommended to someone.
    assert figures["coverage_at_10"] == pytest.approx(4 / 5)
    # Recommended items' popularity 1, 1, 1, 1, 3, 1: mean 8/6, against the catalog's 9/5.
    assert figures["rec_mean_popularity"] == pytest.approx(8 / 6)
    assert figures["catalog_mean_popularity"] == pytest.approx(9 / 5)
    assert figures["popularity_bias"] == pytest.approx((8 / 6) / (9 / 5))
    # Exposure sorted 0, 1, 1, 2, 2 (n 5, total 6): (-4*0 - 2*1 + 0*1 + 2*2 + 4*2) / (5 * 6).
    assert figures["exposure_gini"] == pytest.approx(10 / 30)
    assert figures["cold_start_users"] == 2 and figures["cold_start_ndcg_at_10"] == pytest.approx(0.75)
