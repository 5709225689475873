"""train_model: train LightGCN on the interactions the platform landed for this run, store the artifacts in
the models bucket and register the version with the platform.

The model is trained over this run's own catalog snapshot (the items of its upload). The GX suite reads the
artifacts back from the object store and proves: NDCG@10 above the threshold (if one is in force) and at least
``min_lift`` times popularity's on the same split, every embedding finite, every catalog item embedded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from include.config import MODELS_BUCKET
from plugins.journey.run import JourneyRun

# The platform's stated NDCG@10 target, met by generated data's planted tastes.
GENERATED_NDCG_TARGET = 0.30


def artifact_prefix(run: JourneyRun) -> str:
    return f"{run.tenant}/{run.model_version}/"


def catalog_upload(done: dict[str, Any]) -> str | None:
    """This run's catalog snapshot: the items upload upload_to_minio registered. None outside the journey
    (tenant_model_training validates a retrained model over the tenant's merged catalog)."""
    return ((done.get("upload_to_minio") or {}).get("uploads") or {}).get("items")


def gates(run: JourneyRun) -> dict[str, float | None]:
    """The model gates in force: ``ndcg_threshold`` null means the platform's target for generated data and no
    absolute gate for a real tenant's sample, whose attainable NDCG depends on its catalog; the lift over
    popularity on the same split gates both."""
    threshold = run.params.get("ndcg_threshold")
    if threshold is None:
        threshold = None if run.byod else GENERATED_NDCG_TARGET
    return {"ndcg_threshold": threshold, "min_lift": float(run.params["min_lift"])}


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from include.recsys.train import TrainConfig, save_artifacts, train_tenant
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.minio import MinioHook
    from plugins.hooks.recsys_api import RecsysApiHook

    db = AppDbHook()
    interactions = db.landed(tenant_id=seed["tenant_id"], source=run.run_key)
    catalog = db.catalog(tenant_id=seed["tenant_id"], upload_id=catalog_upload(done))
    if interactions.empty:
        raise ValueError(f"no landed interactions for tenant {run.tenant} and run {run.run_key}: nothing to train on")
    epochs = run.params.get("train_epochs")
    config = TrainConfig(seed=int(run.params["seed"]), **({"epochs": int(epochs)} if epochs else {}))
    result = train_tenant(interactions, item_ids=catalog["item_id"].tolist(), config=config)
    stored = save_artifacts(result, client=MinioHook().client, bucket=MODELS_BUCKET, prefix=artifact_prefix(run))
    metrics = {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v) for k, v in result.metrics.items()}
    metrics["ndcg_lift"] = round(lift(metrics), 3)
    RecsysApiHook(run_key=run.run_key).register_model(
        seed["tenant_id"],
        version=run.model_version,
        metrics=metrics,
        artifact_uri=stored["artifact_uri"],
        catalog_upload_id=catalog_upload(done),
        # The day validated: deploy_model compares it with the live model's, so older days never take traffic.
        logical_date=run.window_start.isoformat(),
        source=run.run_key,
    )
    return {"version": run.model_version, "artifact_uri": stored["artifact_uri"], "metrics": metrics, "gates": gates(run)}


def lift(metrics: dict[str, Any]) -> float:
    return float(metrics["ndcg_at_10"]) / max(float(metrics["popularity_ndcg_at_10"]), 1e-9)


def validate(run: JourneyRun, done: dict[str, Any]):
    seed = done["seed_data"]
    from include.recsys.train import load_artifacts
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.minio import MinioHook
    from plugins.validation import validate_stage

    artifacts = load_artifacts(client=MinioHook().client, bucket=MODELS_BUCKET, prefix=artifact_prefix(run))
    catalog = AppDbHook().catalog(tenant_id=seed["tenant_id"], upload_id=catalog_upload(done))
    metrics = artifacts.metrics
    embedded = set(artifacts.item_ids)
    row = {
        "ndcg_at_10": metrics["ndcg_at_10"],
        "recall_at_10": metrics["recall_at_10"],
        "popularity_ndcg_at_10": metrics["popularity_ndcg_at_10"],
        "ndcg_lift": lift(metrics),
        "train_seconds": metrics["train_seconds"],
        "n_items_catalog": len(catalog),
        "n_items_embedded": int(catalog["item_id"].isin(embedded).sum()),
        "n_users_embedded": len(artifacts.user_ids),
        "nonfinite_values": int((~np.isfinite(artifacts.item_embeddings)).sum() + (~np.isfinite(artifacts.user_embeddings)).sum()),
        "embedding_dim": int(artifacts.item_embeddings.shape[1]),
    }
    gate = gates(run)
    # No absolute gate is a threshold of 0: the expectation stays in the suite (and the Data Docs) and holds.
    parameters = {"ndcg_threshold": gate["ndcg_threshold"] or 0.0, "min_lift": gate["min_lift"]}
    return validate_stage(
        "train_model", {"metrics": pd.DataFrame([row])}, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id
    )
