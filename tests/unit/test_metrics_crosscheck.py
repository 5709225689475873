"""include/recsys/ml/metrics.py against trec_eval (pytrec_eval): NDCG@10 and Recall@10 agree to 1e-9, on random
rankings and relevance sets and on a trained model's real output, under the project's protocol (full ranking
over the catalog, trained-on items excluded). The run handed to trec_eval is ranked independently of ours:
every unseen catalog item with its score, sorted by trec_eval itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pytrec_eval
import torch

from include.recsys.ml.lightgcn import dedupe_pairs
from include.recsys.ml.metrics import rank_topk, split_holdout
from include.recsys.ml.train import train_tenant

MEASURES = {"ndcg_cut_10", "recall_10"}


def trec_eval(scores: np.ndarray, *, train: set[tuple[int, int]], test: set[tuple[int, int]]) -> dict[int, dict]:
    qrels, run = {}, {}
    for user, item in test:
        qrels.setdefault(f"u{user}", {})[f"i{item}"] = 1
    for user in {u for u, _ in test}:
        run[f"u{user}"] = {f"i{i}": float(s) for i, s in enumerate(scores[user]) if (user, i) not in train}
    evaluated = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    return {int(q[1:]): m for q, m in evaluated.items()}


def pairs(found: set[tuple[int, int]], n_items: int) -> tuple[np.ndarray, np.ndarray]:
    users, items = (np.array(x, dtype=np.int64) for x in zip(*sorted(found), strict=True))
    return dedupe_pairs(users, items, n_items=n_items)


def assert_agree(scores: np.ndarray, *, train: set, test: set, n_items: int) -> int:
    ranking = rank_topk(
        lambda batch: torch.from_numpy(scores[batch].copy()),
        train_pairs=pairs(train, n_items),
        test_pairs=pairs(test, n_items),
        n_users=scores.shape[0],
        k=10,
        batch_size=7,
    )
    reference = trec_eval(scores, train=train, test=test)
    assert sorted(reference) == ranking.users.tolist()
    for user, ndcg, recall in zip(ranking.users, ranking.ndcg, ranking.recall, strict=True):
        assert ndcg == pytest.approx(reference[user]["ndcg_cut_10"], abs=1e-9), user
        assert recall == pytest.approx(reference[user]["recall_10"], abs=1e-9), user
    return len(reference)


@pytest.mark.parametrize("seed", range(20))
def test_random_rankings_and_relevance_sets_agree_with_trec_eval(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(5, 60)), int(rng.integers(12, 80))
    # Distinct float32 scores: trec_eval breaks ties by document id, torch.topk otherwise.
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float32)
    train, test = set(), set()
    for user in range(n_users):
        items = rng.permutation(n_items)[: int(rng.integers(1, n_items - 1))]
        cut = int(rng.integers(0, len(items)))  # some users hold out nothing, some up to all but one
        train |= {(user, int(i)) for i in items[:cut] if rng.random() < 0.9 or not cut}
        test |= {(user, int(i)) for i in items[cut:]}
    assert assert_agree(scores, train=train, test=test, n_items=n_items) > 0


def test_a_trained_models_real_output_agrees_with_trec_eval(planted, small_config):
    result = train_tenant(planted.interactions, config=replace(small_config, epochs=5))
    scores = result.user_embeddings @ result.item_embeddings.T
    users = {u: i for i, u in enumerate(result.user_ids)}
    items = {u: i for i, u in enumerate(result.item_ids)}
    holdout = split_holdout(planted.interactions, seed=small_config.seed)
    code = lambda frame: {(users[u], items[i]) for u, i in frame[["user_id", "item_id"]].itertuples(index=False)}  # noqa: E731
    evaluated = assert_agree(scores, train=code(holdout.train), test=code(holdout.test), n_items=len(items))
    assert evaluated == result.metrics["evaluated_users"]
    # And the mean is what the model's metrics report.
    reference = trec_eval(scores, train=code(holdout.train), test=code(holdout.test))
    assert result.metrics["ndcg_at_10"] == pytest.approx(
        np.mean([m["ndcg_cut_10"] for m in reference.values()]), abs=1e-9
    )
    assert result.metrics["recall_at_10"] == pytest.approx(
        np.mean([m["recall_10"] for m in reference.values()]), abs=1e-9
    )
