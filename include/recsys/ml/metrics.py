"""Offline evaluation: the protocol every figure of a model version is measured with, in one place.

Protocol (stated in report.json as ``model.protocol``):
- Split: per user, ``holdout_fraction`` (0.2) of the user's distinct items, at least one, drawn with
  ``seed`` (the run's seed) and independent of row order, go to test; every event of a held-out (user,
  item) pair goes with it. Users with fewer than ``min_user_items`` (3) distinct items stay in train only.
  Training carves its early-stopping validation set out of train the same way (see lightgcn.py), so test
  is never seen before the final measurement.
- Ranking: full ranking over the whole catalog of the run (no sampled negatives); items the user has in
  train are excluded, as serving excludes a user's history; ties broken by torch.topk.
- Metrics: binary relevance (a held-out item); NDCG@10 = DCG with 1/log2(rank+1) over the ideal DCG of
  min(10, |relevant|) hits; Recall@10 = hits / |relevant| (trec_eval's ``ndcg_cut_10`` and
  ``recall_10``, cross-checked against pytrec_eval in tests/unit/test_metrics_crosscheck.py);
  averaged over users with at least one held-out item.
- Every model (LightGCN, item-kNN, popularity) is measured on the same split with the same code.
- Model against model: the ratio of mean NDCG@10s comes with its 95% interval over users
  (:func:`paired_ratio_interval`), since two models a few percent apart swap places from one
  split to the next when only a few hundred users are evaluated.
- Beyond accuracy, on the same top-10 lists: catalog coverage@10, mean training popularity of what is
  recommended against the catalog's mean (popularity bias), the Gini index of exposure over the
  catalog, and NDCG@10 of the cold-start slice (users with fewer than ``COLD_START_MAX_ITEMS`` (5)
  distinct training items).

Users are scored in batches with torch.topk, so 10K users x 5K items evaluates in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from include.recsys.contract.schema import ContractError, require_columns
from include.recsys.ml.lightgcn import seen_rows

# Users with fewer distinct training items than this form the cold-start slice.
COLD_START_MAX_ITEMS = 5


class Holdout(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


def split_holdout(
    interactions: pd.DataFrame, *, seed: int, holdout_fraction: float = 0.2, min_user_items: int = 3
) -> Holdout:
    """Hold out ``holdout_fraction`` of each user's distinct items (at least one) for evaluation.

    All events of a held-out (user, item) pair go to test, so a pair is never on both sides. Users
    with fewer than ``min_user_items`` distinct items stay wholly in train. Deterministic in
    ``seed`` and independent of row order (see :func:`holdout_mask`, which does the work on codes).
    """
    require_columns(interactions.columns, ("user_id", "item_id"), what="interactions")
    users, items = (pd.factorize(interactions[c].astype(str), sort=True)[0] for c in ("user_id", "item_id"))
    in_test = holdout_mask(users, items, seed=seed, holdout_fraction=holdout_fraction, min_user_items=min_user_items)
    return Holdout(train=interactions[~in_test], test=interactions[in_test])


def holdout_mask(
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    *,
    seed: int,
    holdout_fraction: float = 0.2,
    min_user_items: int = 3,
) -> np.ndarray:
    """Per event, is its (user, item) pair held out? The split of :func:`split_holdout` on integer codes, so a
    10M-event log is split without a string in sight. Pairs take their draws in (user code, item code) order:
    codes numbered in the ids' sorted order give the split of the ids themselves, whatever the rows' order."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    n_items = int(item_codes.max()) + 1 if len(item_codes) else 1
    pair_keys, pair_of_event = np.unique(user_codes.astype(np.int64) * n_items + item_codes, return_inverse=True)
    pair_users = pair_keys // n_items
    starts = np.flatnonzero(np.r_[True, pair_users[1:] != pair_users[:-1]]) if len(pair_keys) else pair_keys
    per_user = np.diff(np.r_[starts, len(pair_keys)])
    user_rank = np.repeat(np.arange(len(starts)), per_user)
    draw = np.random.default_rng(seed).random(len(pair_keys))
    order = np.lexsort((draw, user_rank))
    rank = np.empty(len(pair_keys), dtype=np.int64)
    rank[order] = np.arange(len(pair_keys)) - np.repeat(starts, per_user)
    n_held = np.where(per_user >= min_user_items, np.maximum(1, np.round(per_user * holdout_fraction)), 0)
    return (rank < n_held[user_rank])[pair_of_event.reshape(-1)]


def ndcg_from_hits(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """NDCG per row of a [users, k] 0/1 hit matrix; ideal DCG has min(k, |relevant|) hits on top."""
    k = hits.shape[1]
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    dcg = (hits.double() * discounts).sum(1)
    ideal = torch.cumsum(discounts, 0)[(n_relevant.clamp(1, k) - 1).long()]
    return torch.where(n_relevant > 0, dcg / ideal, torch.zeros_like(dcg))


def recall_from_hits(hits: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    """Hits in the top k over all relevant items, per row (0 for users with nothing relevant)."""
    recall = hits.double().sum(1) / n_relevant.clamp(min=1)
    return torch.where(n_relevant > 0, recall, torch.zeros_like(recall))


class Ranking(NamedTuple):
    """Per evaluated user (codes ascending): the top-k item codes, best first, and NDCG@k / Recall@k."""

    users: np.ndarray
    top: np.ndarray
    ndcg: np.ndarray
    recall: np.ndarray


def rank_topk(
    score: Callable[[np.ndarray], torch.Tensor],
    *,
    train_pairs: tuple[np.ndarray, np.ndarray],
    test_pairs: tuple[np.ndarray, np.ndarray],
    n_users: int,
    k: int = 10,
    batch_size: int = 2048,
) -> Ranking:
    """Rank the whole catalog for every user with held-out items and score the top k.

    ``score(users)`` returns a new [len(users), n_items] tensor (it is written to: trained-on items are
    masked out before ranking); pairs are (user codes, item codes), distinct and sorted by user.
    """
    test_users, test_items = test_pairs
    users = np.unique(test_users)
    if len(users) == 0:
        raise ContractError("evaluation needs at least one user with held-out items, got none")
    tops, ndcgs, recalls = [], [], []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        # No defensive copy: a copy of 2000 x 5000 scores costs as much as computing them.
        scores = score(batch).to(torch.float32).cpu()
        rows, cols = seen_rows(*train_pairs, batch, n_users=n_users)
        scores[rows, cols] = -torch.inf
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices
        relevant = torch.zeros(scores.shape, dtype=torch.bool)
        rel_rows, rel_cols = seen_rows(test_users, test_items, batch, n_users=n_users)
        relevant[rel_rows, rel_cols] = True
        hits = relevant.gather(1, top)
        n_relevant = torch.from_numpy(np.bincount(rel_rows, minlength=len(batch)))
        tops.append(top.numpy())
        ndcgs.append(ndcg_from_hits(hits, n_relevant).numpy())
        recalls.append(recall_from_hits(hits, n_relevant).numpy())
    return Ranking(users=users, top=np.concatenate(tops), ndcg=np.concatenate(ndcgs), recall=np.concatenate(recalls))


def evaluate_topk(
    score: Callable[[np.ndarray], torch.Tensor],
    *,
    train_pairs: tuple[np.ndarray, np.ndarray],
    test_pairs: tuple[np.ndarray, np.ndarray],
    n_users: int,
    k: int = 10,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Mean NDCG@k and Recall@k over users with held-out items (see :func:`rank_topk`)."""
    ranking = rank_topk(
        score, train_pairs=train_pairs, test_pairs=test_pairs, n_users=n_users, k=k, batch_size=batch_size
    )
    return {
        "ndcg": float(ranking.ndcg.mean()),
        "recall": float(ranking.recall.mean()),
        "users": int(len(ranking.users)),
    }


def paired_ratio_interval(a: np.ndarray, b: np.ndarray, *, z: float = 1.96) -> tuple[float, float]:
    """The interval of mean(a) / mean(b) for per-user figures of two models on the same users (delta method).

    The pairing matters: both models score the same users, so their per-user NDCGs move together and
    the ratio is far tighter than the two means' own intervals suggest. ``z`` = 1.96 gives 95%. One
    user gives the point ratio twice (no spread to measure).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ContractError(f"a paired ratio needs two equal, non-empty 1-d arrays, got shapes {a.shape} and {b.shape}")
    mean_a, mean_b = float(a.mean()), max(float(b.mean()), 1e-9)
    ratio = mean_a / mean_b
    if len(a) == 1:
        return ratio, ratio
    # Per user, the ratio's linearisation: (a_i - ratio * b_i) / mean_b; its mean is 0 by construction.
    spread = float(np.std(a - ratio * b, ddof=1)) / mean_b / np.sqrt(len(a))
    return ratio - z * spread, ratio + z * spread


def gini(values: np.ndarray) -> float:
    """Gini index of non-negative values: 0 when all are equal, (n-1)/n when one holds everything."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(ordered), ordered.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(((2 * np.arange(1, n + 1) - n - 1) * ordered).sum() / (n * total))


def beyond_accuracy(
    ranking: Ranking, *, train_pairs: tuple[np.ndarray, np.ndarray], n_items: int, k: int = 10
) -> dict[str, float | int | None]:
    """Coverage, popularity bias and exposure Gini of the top-k lists, and NDCG@k of the cold-start slice.

    Popularity is an item's number of distinct training users (what the popularity baseline ranks by);
    exposure is how many users' top k hold the item, over every catalog item (never recommended = 0).
    """
    top = ranking.top[:, :k]
    popularity = np.bincount(train_pairs[1], minlength=n_items).astype(np.float64)
    exposure = np.bincount(top.ravel(), minlength=n_items)
    train_items_per_user = np.bincount(train_pairs[0], minlength=int(ranking.users.max()) + 1)[ranking.users]
    cold = train_items_per_user < COLD_START_MAX_ITEMS
    catalog_mean = float(popularity.mean())
    recommended_mean = float(popularity[top].mean())
    return {
        "coverage_at_10": float((exposure > 0).sum() / n_items),
        "rec_mean_popularity": recommended_mean,
        "catalog_mean_popularity": catalog_mean,
        "popularity_bias": recommended_mean / catalog_mean if catalog_mean > 0 else None,
        "exposure_gini": gini(exposure),
        "cold_start_users": int(cold.sum()),
        "cold_start_ndcg_at_10": float(ranking.ndcg[cold].mean()) if cold.any() else None,
    }


def popularity_scorer(
    train_pairs: tuple[np.ndarray, np.ndarray], *, n_items: int
) -> Callable[[np.ndarray], torch.Tensor]:
    """The baseline: every user gets items ranked by how many users interacted with them in train."""
    counts = torch.from_numpy(np.bincount(train_pairs[1], minlength=n_items).astype(np.float32))
    return lambda users: counts.repeat(len(users), 1)
