"""Train a tenant's LightGCN model, evaluate it on a per-user holdout, and package what serving needs.

The model is fitted once, on the train split: its holdout metrics describe exactly the embeddings
that get deployed (a second fit on all data would double the time budget and deploy an unmeasured
model). Every catalog item gets an embedding, including items nobody interacted with yet.

CLI: python -m include.recsys.ml.train --csv interactions.csv [--items items.csv] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from include.recsys.contract.artifacts import (
    TrainResult,
    load_artifacts,
    load_artifacts_dir,
    save_artifacts,
    save_artifacts_dir,
)
from include.recsys.contract.schema import ContractError, require_columns
from include.recsys.ml.itemknn import ItemKNN
from include.recsys.ml.lightgcn import LightGCN, TrainConfig, dedupe_pairs, device, positions, universe
from include.recsys.ml.metrics import (
    COLD_START_MAX_ITEMS,
    beyond_accuracy,
    evaluate_topk,
    holdout_mask,
    paired_ratio_interval,
    popularity_scorer,
    rank_topk,
)

# Callers get the whole training surface from this module; the artifact format lives in artifacts.py.
__all__ = [
    "TrainConfig",
    "TrainResult",
    "load_artifacts",
    "load_artifacts_dir",
    "main",
    "save_artifacts",
    "save_artifacts_dir",
    "train_tenant",
]

EVAL_K = 10


def train_tenant(
    interactions: pd.DataFrame, *, item_ids: Sequence[str] | None = None, config: TrainConfig = TrainConfig()
) -> TrainResult:
    """Fit, evaluate and package a model from ``interactions`` (user_id, item_id; categorical columns keep a
    10M-event log small). Every step after the ids are numbered works on integer codes."""
    _validate(interactions)
    started = time.perf_counter()
    model = LightGCN(config)
    model.user_ids = universe(interactions["user_id"], None)
    model.item_ids = universe(interactions["item_id"], item_ids)
    users, catalog = model.user_ids.tolist(), model.item_ids.tolist()
    n_items = len(catalog)
    user_codes = positions(model.user_ids, interactions["user_id"])
    item_codes = positions(model.item_ids, interactions["item_id"])
    if (item_codes < 0).any():
        unknown = pd.unique(interactions["item_id"][item_codes < 0].astype(str))
        raise ContractError(
            f"interactions reference {len(unknown)} item_id(s) not in item_ids, e.g. {unknown[:5].tolist()}"
        )
    # The split draws pairs in the ids' sorted order (the catalog's own order may be any).
    item_rank = np.empty(n_items, dtype=np.int64)
    item_rank[np.argsort(model.item_ids.to_numpy(), kind="stable")] = np.arange(n_items)
    sorted_item_codes = item_rank[item_codes]
    in_test = holdout_mask(
        user_codes,
        sorted_item_codes,
        seed=config.seed,
        holdout_fraction=config.holdout_fraction,
        min_user_items=config.min_user_items,
    )
    in_validation = _carve_validation(user_codes, sorted_item_codes, ~in_test, config=config)

    def pairs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dedupe_pairs(user_codes[rows], item_codes[rows], n_items=n_items)

    fit_pairs = pairs(~in_test & ~in_validation)
    validator = None
    if in_validation.any():
        val_pairs = pairs(in_validation)

        def validator(user_emb: torch.Tensor, item_emb: torch.Tensor) -> float:
            return evaluate_topk(
                lambda batch: user_emb[batch] @ item_emb.T,
                train_pairs=fit_pairs,
                test_pairs=val_pairs,
                n_users=len(users),
                k=EVAL_K,
            )["ndcg"]

    model.fit_pairs(*fit_pairs, validator=validator)
    train_seconds = model.train_seconds

    # Every model is measured against everything it may not recommend: the whole train split.
    train_pairs = pairs(~in_test)
    test_pairs = _sampled_users(pairs(in_test), limit=config.eval_users, seed=config.seed)
    user_emb, item_emb = torch.from_numpy(model.user_embeddings), torch.from_numpy(model.item_embeddings)
    evaluation = dict(train_pairs=train_pairs, test_pairs=test_pairs, n_users=len(users), k=EVAL_K)
    lightgcn = rank_topk(lambda batch: user_emb[batch] @ item_emb.T, **evaluation)
    knn_started = time.perf_counter()
    knn_model = ItemKNN(neighbours=config.knn_neighbours).fit(
        users=train_pairs[0], items=train_pairs[1], n_users=len(users), n_items=n_items
    )
    knn = rank_topk(knn_model.score, **evaluation)
    knn_seconds = time.perf_counter() - knn_started
    popularity = rank_topk(popularity_scorer(train_pairs, n_items=n_items), **evaluation)
    knn_ratio_low, knn_ratio_high = paired_ratio_interval(lightgcn.ndcg, knn.ndcg)
    beyond = beyond_accuracy(lightgcn, train_pairs=train_pairs, n_items=n_items, k=EVAL_K)

    metrics = {
        "ndcg_at_10": float(lightgcn.ndcg.mean()),
        "recall_at_10": float(lightgcn.recall.mean()),
        "knn_ndcg_at_10": float(knn.ndcg.mean()),
        "knn_recall_at_10": float(knn.recall.mean()),
        "knn_ratio_ci_low": knn_ratio_low,
        "knn_ratio_ci_high": knn_ratio_high,
        "popularity_ndcg_at_10": float(popularity.ndcg.mean()),
        "popularity_recall_at_10": float(popularity.recall.mean()),
        "evaluated_users": int(len(lightgcn.users)),
        **beyond,
        **_prefixed("knn", beyond_accuracy(knn, train_pairs=train_pairs, n_items=n_items, k=EVAL_K)),
        **_prefixed("popularity", beyond_accuracy(popularity, train_pairs=train_pairs, n_items=n_items, k=EVAL_K)),
        "train_seconds": round(train_seconds, 3),
        "knn_seconds": round(knn_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "epochs": model.epochs_run,
        "steps": model.steps_run,
        "max_epochs": config.epochs_for(-(-len(fit_pairs[0]) // model.batch_size)),
        "early_stopping_epoch": model.best_epoch,
        "validation_ndcg_at_10": model.best_validation_ndcg,
        "stopped_by": model.stopped_by,
        "stopped_by_time_budget": model.stopped_by == "time_budget",
        "batch_size": model.batch_size,
        "lr": model.lr,
        "n_users": len(users),
        "n_items": n_items,
        "n_interactions": len(interactions),
        "n_train_pairs": len(train_pairs[0]),
        "n_fit_pairs": len(fit_pairs[0]),
        "n_validation_pairs": len(val_pairs[0]) if validator is not None else 0,
        "n_test_pairs": len(test_pairs[0]),
    }
    # Plain Python numbers, so every consumer (artifacts, XCom, the platform's registry) takes them as they are.
    metrics = {name: value.item() if isinstance(value, np.generic) else value for name, value in metrics.items()}
    return TrainResult(
        user_ids=users,
        item_ids=catalog,
        user_embeddings=model.user_embeddings,
        item_embeddings=model.item_embeddings,
        popular_items=_popular_items(item_codes, catalog),
        metrics=metrics,
        config={
            **config.to_dict(),
            "eval_k": EVAL_K,
            "algorithm": "lightgcn",
            "device": str(device()),
            "protocol": protocol(config),
        },
    )


def _sampled_users(pairs: tuple[np.ndarray, np.ndarray], *, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of a seeded sample of at most ``limit`` of their users (all of them when fewer)."""
    users = np.unique(pairs[0])
    if len(users) <= limit:
        return pairs
    keep = np.isin(pairs[0], np.random.default_rng(seed).choice(users, limit, replace=False))
    return pairs[0][keep], pairs[1][keep]


def _prefixed(model: str, figures: dict[str, object]) -> dict[str, object]:
    """A baseline's beyond-accuracy figures under its name (its cold-start slice is the model's: same users)."""
    return {
        f"{model}_{name}": value
        for name, value in figures.items()
        if name not in ("cold_start_users", "catalog_mean_popularity")
    }


def protocol(config: TrainConfig) -> dict[str, object]:
    """How every figure of the model version was measured (see include/recsys/ml/metrics.py)."""
    return {
        "ranking": "full ranking over the run's catalog; items the user has in train excluded",
        "relevance": "binary: the user's held-out items",
        "holdout": (
            f"per user, {config.holdout_fraction:g} of distinct items (at least 1) to test, drawn with seed"
            f" {config.seed}; users with fewer than {config.min_user_items} distinct items train only"
        ),
        "validation": (
            f"early stopping on NDCG@{EVAL_K} of items carved from train the same way (seed {config.seed + 1},"
            f" up to {config.validation_users} users); test is never seen in training"
        ),
        "metrics": (
            f"NDCG@{EVAL_K}, Recall@{EVAL_K} (trec_eval ndcg_cut/recall), mean over users with held-out items"
            f" (a sample of {config.eval_users:,} with seed {config.seed} where there are more)"
        ),
        "cold_start": f"users with fewer than {COLD_START_MAX_ITEMS} distinct training items",
        "seed": config.seed,
        "baselines": f"item-kNN (cosine, {config.knn_neighbours} neighbours) and popularity on the same split",
    }


def _carve_validation(
    user_codes: np.ndarray, item_codes: np.ndarray, in_train: np.ndarray, *, config: TrainConfig
) -> np.ndarray:
    """Per event, is it validation? The items a ``holdout_mask`` with the next seed holds out from the train
    events of a seeded sample of up to ``validation_users`` users (codes in sorted id order); none when
    nobody has enough items."""
    carved = np.zeros(len(user_codes), dtype=bool)
    if config.validation_users <= 0:
        return carved
    users = np.unique(user_codes[in_train])
    if len(users) > config.validation_users:
        users = users[
            np.sort(np.random.default_rng(config.seed + 1).choice(len(users), config.validation_users, replace=False))
        ]
    sampled = np.flatnonzero(in_train & np.isin(user_codes, users))
    held = holdout_mask(
        user_codes[sampled],
        item_codes[sampled],
        seed=config.seed + 1,
        holdout_fraction=config.holdout_fraction,
        min_user_items=config.min_user_items,
    )
    carved[sampled[held]] = True
    return carved


def _validate(interactions: pd.DataFrame) -> None:
    require_columns(interactions.columns, ("user_id", "item_id"), what="interactions")
    if interactions.empty:
        raise ContractError("interactions must have at least one row, got 0")
    nulls = interactions[["user_id", "item_id"]].isna().sum()
    if nulls.any():
        raise ContractError(f"interactions must have no empty user_id/item_id; found {nulls.to_dict()}")


def _popular_items(item_codes: np.ndarray, catalog: list[str]) -> list[str]:
    """Every catalog item, most interacted-with first; ties by item_id so the list is reproducible."""
    frame = pd.DataFrame({"item_id": catalog, "count": np.bincount(item_codes, minlength=len(catalog))})
    return frame.sort_values(["count", "item_id"], ascending=[False, True])["item_id"].tolist()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.recsys.ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--csv", required=True, help="interactions CSV (user_id, item_id, ...)")
    parser.add_argument("--items", help="catalog CSV with item_id; every catalog item gets an embedding")
    parser.add_argument("--out", help="write the model artifacts to this directory")
    defaults = TrainConfig()
    for field in dataclasses.fields(TrainConfig):
        default = getattr(defaults, field.name)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    interactions = pd.read_csv(args.csv, dtype=str)
    item_ids = pd.read_csv(args.items, dtype=str, usecols=["item_id"])["item_id"].tolist() if args.items else None
    result = train_tenant(interactions, item_ids=item_ids, config=config)
    output = dict(result.metrics)
    if args.out:
        output["artifacts"] = save_artifacts_dir(result, args.out)
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if np.isfinite(result.item_embeddings).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
