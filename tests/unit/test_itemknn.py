"""Item-kNN: cosine similarity on the user-item matrix, checked by hand, and the baseline the model must match."""

from __future__ import annotations

import math

import numpy as np
import pytest

from include.recsys.ml.itemknn import ItemKNN
from include.recsys.ml.lightgcn import dedupe_pairs
from include.recsys.ml.metrics import evaluate_topk, popularity_scorer, split_holdout


def test_scores_are_summed_cosine_similarities_to_the_users_items():
    # Items 0 and 1 share user 0; item 1 and 2 share user 1; item 0 has users 0 and 2.
    # cos(0,1) = 1 / sqrt(2 * 2), cos(1,2) = 1 / sqrt(2 * 1), cos(0,2) = 0.
    users, items = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 0])
    knn = ItemKNN(neighbours=5).fit(users=users, items=items, n_users=3, n_items=3)
    scores = knn.score(np.array([0, 1, 2])).numpy()
    assert scores[2].tolist() == pytest.approx([0.0, 1 / 2, 0.0])  # user 2 has only item 0
    assert scores[1].tolist() == pytest.approx([1 / 2, 1 / math.sqrt(2), 1 / math.sqrt(2)])


def test_only_the_nearest_neighbours_of_each_item_count():
    users, items = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 0])
    knn = ItemKNN(neighbours=1).fit(users=users, items=items, n_users=3, n_items=3)
    # Item 1's one neighbour is item 2 (1/sqrt 2 > 1/2), item 2's is item 1: user 1 (items 1, 2) reaches
    # item 0 through neither, where with 5 neighbours it scored 1/2.
    assert knn.score(np.array([1])).numpy()[0].tolist() == pytest.approx([0.0, 1 / math.sqrt(2), 1 / math.sqrt(2)])
    # Item 0's one neighbour is item 1.
    assert knn.score(np.array([2])).numpy()[0].tolist() == pytest.approx([0.0, 1 / 2, 0.0])


def test_item_knn_beats_popularity_on_planted_taste_and_is_deterministic(planted, shuffled_interactions):
    def measure(frame):
        users, items = (
            frame[c].astype("category").cat.codes.to_numpy().astype(np.int64) for c in ("user_id", "item_id")
        )
        coded = frame.assign(user_id=users.astype(str), item_id=items.astype(str))
        train, test = split_holdout(coded, seed=0)
        n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
        train_pairs = dedupe_pairs(
            train["user_id"].astype(int).to_numpy(), train["item_id"].astype(int).to_numpy(), n_items=n_items
        )
        test_pairs = dedupe_pairs(
            test["user_id"].astype(int).to_numpy(), test["item_id"].astype(int).to_numpy(), n_items=n_items
        )
        evaluation = dict(train_pairs=train_pairs, test_pairs=test_pairs, n_users=n_users)
        knn = ItemKNN().fit(users=train_pairs[0], items=train_pairs[1], n_users=n_users, n_items=n_items)
        again = ItemKNN().fit(users=train_pairs[0], items=train_pairs[1], n_users=n_users, n_items=n_items)
        assert evaluate_topk(knn.score, **evaluation) == evaluate_topk(again.score, **evaluation)
        return evaluate_topk(knn.score, **evaluation)["ndcg"], evaluate_topk(
            popularity_scorer(train_pairs, n_items=n_items), **evaluation
        )["ndcg"]

    knn, popularity = measure(planted.interactions)
    assert knn >= 1.5 * popularity and knn - popularity >= 0.1, (knn, popularity)
    # The same events with links shuffled: no taste left for item-kNN to find either.
    knn, popularity = measure(shuffled_interactions)
    assert knn <= popularity + 0.02, (knn, popularity)
