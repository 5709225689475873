"""Train a tenant's LightGCN model, evaluate it on a per-user holdout, and package what serving needs.

The model is fitted once, on the train split: its holdout metrics describe exactly the embeddings
that get deployed (a second fit on all data would double the time budget and deploy an unmeasured
model). Every catalog item gets an embedding, including items nobody interacted with yet.

CLI: python -m include.recsys.train --csv interactions.csv [--items items.csv] [--out DIR]
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

from include.recsys.artifacts import TrainResult, load_artifacts, load_artifacts_dir, save_artifacts, save_artifacts_dir
from include.recsys.contracts import ContractError, require_columns
from include.recsys.lightgcn import LightGCN, TrainConfig, dedupe_pairs, device
from include.recsys.metrics import evaluate_topk, popularity_scorer, split_holdout

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
    _validate(interactions, item_ids)
    started = time.perf_counter()
    catalog = list(item_ids) if item_ids is not None else sorted(interactions["item_id"].astype(str).unique())
    users = sorted(interactions["user_id"].astype(str).unique())
    holdout = split_holdout(
        interactions, seed=config.seed, holdout_fraction=config.holdout_fraction, min_user_items=config.min_user_items
    )
    model = LightGCN(config).fit(holdout.train, user_ids=users, item_ids=catalog)

    n_items = len(catalog)
    train_pairs = (model.seen_users, model.seen_items)
    test_users, test_items = model.codes(holdout.test)
    test_pairs = dedupe_pairs(test_users, test_items, n_items=n_items)
    user_emb, item_emb = torch.from_numpy(model.user_embeddings), torch.from_numpy(model.item_embeddings)
    evaluation = dict(train_pairs=train_pairs, test_pairs=test_pairs, n_users=len(users), k=EVAL_K)
    lightgcn = evaluate_topk(lambda batch: user_emb[batch] @ item_emb.T, **evaluation)
    popularity = evaluate_topk(popularity_scorer(train_pairs, n_items=n_items), **evaluation)

    metrics = {
        "ndcg_at_10": lightgcn["ndcg"],
        "recall_at_10": lightgcn["recall"],
        "popularity_ndcg_at_10": popularity["ndcg"],
        "popularity_recall_at_10": popularity["recall"],
        "evaluated_users": lightgcn["users"],
        "train_seconds": round(model.train_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "epochs": model.epochs_run,
        "stopped_by_time_budget": model.epochs_run < config.epochs,
        "batch_size": model.batch_size,
        "lr": model.lr,
        "n_users": len(users),
        "n_items": n_items,
        "n_interactions": len(interactions),
        "n_train_pairs": len(model.seen_users),
        "n_test_pairs": len(test_pairs[0]),
    }
    return TrainResult(
        user_ids=users,
        item_ids=catalog,
        user_embeddings=model.user_embeddings,
        item_embeddings=model.item_embeddings,
        popular_items=_popular_items(interactions, catalog),
        metrics=metrics,
        config={**config.to_dict(), "eval_k": EVAL_K, "algorithm": "lightgcn", "device": str(device())},
    )


def _validate(interactions: pd.DataFrame, item_ids: Sequence[str] | None) -> None:
    require_columns(interactions.columns, ("user_id", "item_id"), what="interactions")
    if interactions.empty:
        raise ContractError("interactions must have at least one row, got 0")
    nulls = interactions[["user_id", "item_id"]].isna().sum()
    if nulls.any():
        raise ContractError(f"interactions must have no empty user_id/item_id; found {nulls.to_dict()}")
    if item_ids is not None:
        unknown = pd.Index(interactions["item_id"].astype(str).unique()).difference(pd.Index(list(item_ids), dtype=str))
        if len(unknown):
            raise ContractError(
                f"interactions reference {len(unknown)} item_id(s) not in item_ids, e.g. {unknown[:5].tolist()}"
            )


def _popular_items(interactions: pd.DataFrame, catalog: list[str]) -> list[str]:
    """Every catalog item, most interacted-with first; ties by item_id so the list is reproducible."""
    counts = interactions["item_id"].astype(str).value_counts().reindex(catalog, fill_value=0)
    frame = pd.DataFrame({"item_id": catalog, "count": counts.to_numpy()})
    return frame.sort_values(["count", "item_id"], ascending=[False, True])["item_id"].tolist()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.recsys.train", description=__doc__.split("\n")[0])
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
