"""Training at the platform's default scale, in-process on the seed generator's data: how long LightGCN
takes to reach the journey's NDCG@10 threshold, and the metrics of a full default fit.

A fit with the same data, seed and epoch count repeats bit for bit on CPU (include/recsys/ml/lightgcn.py), so
fits of growing epoch counts trace the learning curve: the first one to reach the threshold gives the
time to reach it, within one grid step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from include.recsys import datagen
from include.recsys.ml.train import TrainConfig, train_tenant

NDCG_THRESHOLD = 0.30  # the journey's default ndcg_threshold
EPOCH_GRID = (4, 6, 8, 10, 12, 15, 20, 25, 30)


@dataclass
class TrainingSamples:
    epochs_to_target: int | None
    seconds_to_target: list[float]
    curve: list[dict[str, Any]]  # one row per fit of the grid: epochs, ndcg, train seconds
    final: dict[str, Any]  # metrics of a full default fit


def _fit(data: datagen.SeedData, config: TrainConfig) -> dict[str, Any]:
    return train_tenant(data.interactions, item_ids=data.items["item_id"].tolist(), config=config).metrics


def measure(*, repetitions: int) -> TrainingSamples:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    data = datagen.generate(tenant="bench-train", interval_start=day, interval_end=day + timedelta(days=1), seed=42)
    base = TrainConfig(seed=42)
    # The grid's epoch cap, not the fit's ``epochs`` metric: that one is the epochs run, fractional when a fit
    # stopped mid-epoch, and a cap must be a whole number.
    curve, reached, cap = [], None, None
    for epochs in EPOCH_GRID:
        metrics = _fit(data, replace(base, epochs=epochs))
        curve.append({"epochs": epochs, "ndcg_at_10": metrics["ndcg_at_10"], "train_seconds": metrics["train_seconds"]})
        if metrics["ndcg_at_10"] >= NDCG_THRESHOLD:
            reached, cap = metrics, epochs
            break
    seconds = []
    if reached is not None:
        seconds.append(reached["train_seconds"])
        seconds += [_fit(data, replace(base, epochs=cap))["train_seconds"] for _ in range(repetitions - 1)]
    final_metrics = reached if reached is not None and cap == base.epochs else _fit(data, base)
    return TrainingSamples(
        epochs_to_target=cap,
        seconds_to_target=seconds,
        curve=curve,
        final={
            k: final_metrics[k]
            for k in ("ndcg_at_10", "recall_at_10", "popularity_ndcg_at_10", "train_seconds", "epochs")
        },
    )
