"""Offline evaluation: a per-user holdout split and top-k ranking metrics (NDCG@k, Recall@k).

Relevance is binary (a held-out item the user interacted with). Items the user was trained on are
excluded from the ranking, as serving would exclude them. Users are scored in batches with
torch.topk, so 10K users x 5K items evaluates in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from include.recsys.contracts import ContractError, require_columns
from include.recsys.lightgcn import seen_rows


class Holdout(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame


def split_holdout(
    interactions: pd.DataFrame, *, seed: int, holdout_fraction: float = 0.2, min_user_items: int = 3
) -> Holdout:
    """Hold out ``holdout_fraction`` of each user's distinct items (at least one) for evaluation.

    All events of a held-out (user, item) pair go to test, so a pair is never on both sides. Users
    with fewer than ``min_user_items`` distinct items stay wholly in train. Deterministic in
    ``seed`` and independent of row order.
    """
    require_columns(interactions.columns, ("user_id", "item_id"), what="interactions")
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    pairs = interactions[["user_id", "item_id"]].astype(str).drop_duplicates().sort_values(["user_id", "item_id"])
    user_codes = pd.factorize(pairs["user_id"], sort=True)[0]
    per_user = np.bincount(user_codes)
    draw = np.random.default_rng(seed).random(len(pairs))
    order = np.lexsort((draw, user_codes))
    rank = np.empty(len(pairs), dtype=np.int64)
    rank[order] = np.arange(len(pairs)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    n_held = np.where(per_user >= min_user_items, np.maximum(1, np.round(per_user * holdout_fraction)), 0)
    held = pairs[rank < n_held[user_codes]]
    key = pd.MultiIndex.from_frame(interactions[["user_id", "item_id"]].astype(str))
    in_test = key.isin(pd.MultiIndex.from_frame(held))
    return Holdout(train=interactions[~in_test], test=interactions[in_test])


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


def evaluate_topk(
    score: Callable[[np.ndarray], torch.Tensor],
    *,
    train_pairs: tuple[np.ndarray, np.ndarray],
    test_pairs: tuple[np.ndarray, np.ndarray],
    n_users: int,
    k: int = 10,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Mean NDCG@k and Recall@k over users with held-out items.

    ``score(users)`` returns a [len(users), n_items] tensor; pairs are (user codes, item codes),
    distinct and sorted by user. Trained-on items are masked out before ranking.
    """
    test_users, test_items = test_pairs
    users = np.unique(test_users)
    if len(users) == 0:
        raise ContractError("evaluation needs at least one user with held-out items, got none")
    ndcg_sum = recall_sum = 0.0
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = score(batch).to(torch.float32).cpu().clone()
        rows, cols = seen_rows(*train_pairs, batch, n_users=n_users)
        scores[rows, cols] = -torch.inf
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices
        relevant = torch.zeros(scores.shape, dtype=torch.bool)
        rel_rows, rel_cols = seen_rows(test_users, test_items, batch, n_users=n_users)
        relevant[rel_rows, rel_cols] = True
        hits = relevant.gather(1, top)
        n_relevant = torch.from_numpy(np.bincount(rel_rows, minlength=len(batch)))
        ndcg_sum += ndcg_from_hits(hits, n_relevant).sum().item()
        recall_sum += recall_from_hits(hits, n_relevant).sum().item()
    return {"ndcg": ndcg_sum / len(users), "recall": recall_sum / len(users), "users": int(len(users))}


def popularity_scorer(
    train_pairs: tuple[np.ndarray, np.ndarray], *, n_items: int
) -> Callable[[np.ndarray], torch.Tensor]:
    """The baseline: every user gets items ranked by how many users interacted with them in train."""
    counts = torch.from_numpy(np.bincount(train_pairs[1], minlength=n_items).astype(np.float32))
    return lambda users: counts.expand(len(users), n_items)
