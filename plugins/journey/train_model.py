"""train_model: train LightGCN on the interactions the platform landed for this run, store the artifacts in
the models bucket and register the version with the platform.

The model is trained over this run's own catalog snapshot (the items of its upload). The GX suite reads the
artifacts back from the object store and proves: NDCG@10 above the threshold (if one is in force), at least
``min_lift`` times popularity's and not clearly under ``min_ratio_over_knn`` times item-kNN's on the same split
(the top of the ratio's 95% interval over users is at least that), and the gates
beyond accuracy (catalog coverage@10, popularity bias and Gini index of exposure of the top 10, the cold-start
slice's NDCG@10 against popularity's on that slice); every embedding finite, every catalog item embedded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.config import MODELS_BUCKET, TRAIN_TIME_BUDGET_SECONDS
from plugins.journey.run import JourneyRun

if TYPE_CHECKING:
    from include.recsys.ml.lightgcn import TrainConfig

# The platform's stated NDCG@10 target, met by generated data's planted tastes.
GENERATED_NDCG_TARGET = 0.30


def artifact_prefix(run: JourneyRun) -> str:
    return f"{run.tenant}/{run.model_version}/"


def catalog_upload(done: dict[str, Any]) -> str | None:
    """This run's catalog snapshot: the items upload upload_to_minio registered. None outside the journey
    (tenant_model_training validates a retrained model over the tenant's merged catalog)."""
    return ((done.get("upload_to_minio") or {}).get("uploads") or {}).get("items")


# Gate params beyond NDCG, as the DAGs name them (their defaults live in the DAGs' Params).
GATE_PARAMS = (
    "min_lift",
    "min_ratio_over_knn",
    "min_coverage_ratio_over_knn",
    "max_popularity_bias_ratio_over_knn",
    "max_exposure_gini_over_knn",
    "min_cold_start_lift",
)
# The figures beyond accuracy the suite's metrics batch carries beside their ratios to the baselines.
BEYOND_ACCURACY = ("coverage_at_10", "popularity_bias", "exposure_gini", "cold_start_ndcg_at_10")
# Fewer cold-start users than this make their NDCG too noisy to gate on (it is still reported).
MIN_COLD_START_USERS = 20


def gate_params() -> dict[str, Any]:
    """The Params of the training budget and of the gates relative to baselines, for both DAGs that train."""
    from airflow.sdk import Param

    return {
        "train_time_budget_s": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=3600,
            description=f"Training stops at this many seconds; empty: the setting (now {TRAIN_TIME_BUDGET_SECONDS:g} s).",
        ),
        "min_lift": Param(1.5, type="number", minimum=0, description="Minimum NDCG@10 ratio over popularity."),
        "min_ratio_over_knn": Param(
            0.95,
            type="number",
            minimum=0,
            description="Minimum NDCG@10 ratio over item-kNN on the same split, held by the top of the ratio's 95% interval over users.",
        ),
        # Lenient on purpose: on generated data the model is 1.17x item-kNN's NDCG@10 with half its coverage,
        # twice its popularity bias and a Gini 0.16 higher; a model collapsed to popularity has coverage near
        # 10 / catalog size and fails all three.
        "min_coverage_ratio_over_knn": Param(
            0.25, type="number", minimum=0, description="Minimum catalog coverage@10 as a share of item-kNN's."
        ),
        "max_popularity_bias_ratio_over_knn": Param(
            3.0,
            type="number",
            minimum=0,
            description="Maximum popularity bias of the top 10 (their mean popularity over the catalog's) as a multiple of item-kNN's.",
        ),
        "max_exposure_gini_over_knn": Param(
            0.25,
            type="number",
            minimum=-1,
            maximum=1,
            description="Maximum Gini index of exposure above item-kNN's.",
        ),
        "min_cold_start_lift": Param(
            0.5,
            type="number",
            minimum=0,
            description=f"Minimum NDCG@10 ratio over popularity for users with < 5 training items (gated from {MIN_COLD_START_USERS} such users).",
        ),
    }


def train_config(params: Any) -> TrainConfig:
    """The training config of a run: its seed, time budget and (journey only) epoch cap ``train_epochs``; every
    other hyper-parameter TrainConfig's."""
    from include.recsys.ml.lightgcn import TrainConfig

    budget, epochs = params.get("train_time_budget_s"), params.get("train_epochs")
    return TrainConfig(
        seed=int(params["seed"]),
        time_budget_seconds=float(budget or TRAIN_TIME_BUDGET_SECONDS),
        **({"epochs": int(epochs)} if epochs else {}),
    )


def gates(run: JourneyRun) -> dict[str, float | None]:
    """The model gates in force: ``ndcg_threshold`` null means the platform's target for generated data and no
    absolute gate for a real tenant's sample, whose attainable NDCG depends on its catalog; the gates relative
    to baselines on the same split (popularity, item-kNN) and beyond accuracy hold for both."""
    threshold = run.params.get("ndcg_threshold")
    if threshold is None:
        threshold = None if run.byod else GENERATED_NDCG_TARGET
    return {"ndcg_threshold": threshold, **{name: float(run.params[name]) for name in GATE_PARAMS}}


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from include.recsys.ml.train import save_artifacts, train_tenant
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.minio import MinioHook
    from plugins.hooks.recsys_api import RecsysApiHook

    db = AppDbHook()
    interactions = db.landed_pairs(tenant_id=seed["tenant_id"], source=journey.run_key)
    catalog = db.catalog(tenant_id=seed["tenant_id"], upload_id=catalog_upload(done))
    if interactions.empty:
        raise ValueError(
            f"no landed interactions for tenant {journey.tenant} and run {journey.run_key}: nothing to train on"
        )
    result = train_tenant(interactions, item_ids=catalog["item_id"].tolist(), config=train_config(journey.params))
    stored = save_artifacts(result, client=MinioHook().client, bucket=MODELS_BUCKET, prefix=artifact_prefix(journey))
    metrics = {**result.metrics, **ratios(result.metrics)}
    api = RecsysApiHook(run_key=journey.run_key)
    # The tenant's previous model version, as the platform recorded it: the report sets today's figures beside it.
    previous = next(
        (m for m in api.list_models(seed["tenant_id"])["models"] if m["version"] != journey.model_version), None
    )
    api.register_model(
        seed["tenant_id"],
        version=journey.model_version,
        metrics=metrics,
        artifact_uri=stored["artifact_uri"],
        catalog_upload_id=catalog_upload(done),
        # The day validated: deploy_model compares it with the live model's, so older days never take traffic.
        logical_date=journey.window_start.isoformat(),
        source=journey.run_key,
    )
    return {
        "version": journey.model_version,
        "artifact_uri": stored["artifact_uri"],
        "metrics": metrics,
        "gates": gates(journey),
        "protocol": result.config["protocol"],
        "previous": {"version": previous["version"], "metrics": previous.get("metrics") or {}} if previous else None,
    }


# Each gate: (param, the figure it bounds, ">=" or "<="); the train_model suite holds the same expectations.
GATE_FIGURES = (
    ("ndcg_threshold", "ndcg_at_10", ">="),
    ("min_lift", "ndcg_lift", ">="),
    # A model level with item-kNN lands either side of 0.95 from one split to the next at a few hundred
    # users (0.93-1.10 over 25 seeds of the test tenant); only a model clearly worse fails.
    ("min_ratio_over_knn", "knn_ratio_ci_high", ">="),
    ("min_coverage_ratio_over_knn", "coverage_ratio_over_knn", ">="),
    ("max_popularity_bias_ratio_over_knn", "popularity_bias_ratio_over_knn", "<="),
    ("max_exposure_gini_over_knn", "exposure_gini_over_knn", "<="),
    ("min_cold_start_lift", "cold_start_lift", ">="),
)


def gate_table(metrics: dict[str, Any], gate: dict[str, float | None]) -> list[dict[str, Any]]:
    """Each gate with its bound and the observed figure, for the report (GX decides; this only lays it out)."""
    rows = []
    for param, figure, op in GATE_FIGURES:
        bound, observed = gate.get(param), metrics.get(figure)
        held = None if bound is None or observed is None else (observed >= bound if op == ">=" else observed <= bound)
        rows.append({"param": param, "figure": figure, "op": op, "bound": bound, "observed": observed, "holds": held})
    return rows


def lift(metrics: dict[str, Any]) -> float:
    return float(metrics["ndcg_at_10"]) / max(float(metrics["popularity_ndcg_at_10"]), 1e-9)


def ratios(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The model's figures against its baselines' on the same split: NDCG@10 over popularity's and item-kNN's
    (with the top of the latter's 95% interval), coverage and popularity bias over item-kNN's, exposure Gini minus item-kNN's, and the cold-start slice's
    NDCG@10 over popularity's on that slice (null, so not gated, when the slice is too small)."""

    def over(a: str, b: str) -> float | None:
        if metrics.get(a) is None or metrics.get(b) is None:
            return None
        return float(metrics[a]) / max(float(metrics[b]), 1e-9)

    cold_enough = (metrics.get("cold_start_users") or 0) >= MIN_COLD_START_USERS
    return {
        "ndcg_lift": over("ndcg_at_10", "popularity_ndcg_at_10"),
        "knn_ratio": over("ndcg_at_10", "knn_ndcg_at_10"),
        # Versions trained before the interval was measured carry only the point ratio.
        "knn_ratio_ci_high": metrics.get("knn_ratio_ci_high", over("ndcg_at_10", "knn_ndcg_at_10")),
        "coverage_ratio_over_knn": over("coverage_at_10", "knn_coverage_at_10"),
        "popularity_bias_ratio_over_knn": over("popularity_bias", "knn_popularity_bias"),
        "exposure_gini_over_knn": float(metrics["exposure_gini"]) - float(metrics["knn_exposure_gini"]),
        "cold_start_lift": over("cold_start_ndcg_at_10", "popularity_cold_start_ndcg_at_10") if cold_enough else None,
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    """The journey's entry: its tenant from seed_data, its catalog snapshot from upload_to_minio."""
    return validate_model(run, tenant_id=done["seed_data"]["tenant_id"], catalog_upload_id=catalog_upload(done))


def validate_model(run: JourneyRun, *, tenant_id: str, catalog_upload_id: str | None):
    """The train_model suite on the artifacts ``run`` stored: its metrics against ``run``'s gates, and its
    embeddings against the tenant's catalog (the snapshot ``catalog_upload_id``; None: the merged catalog).
    Every DAG that trains a model validates it here (tenant_model_training passes what it trained on)."""
    import numpy as np
    import pandas as pd

    from include.recsys.ml.train import load_artifacts
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.minio import MinioHook
    from plugins.validation import validate_stage

    artifacts = load_artifacts(client=MinioHook().client, bucket=MODELS_BUCKET, prefix=artifact_prefix(run))
    catalog = AppDbHook().catalog(tenant_id=tenant_id, upload_id=catalog_upload_id)
    metrics = artifacts.metrics
    embedded = set(artifacts.item_ids)
    row = {
        "ndcg_at_10": metrics["ndcg_at_10"],
        "recall_at_10": metrics["recall_at_10"],
        "popularity_ndcg_at_10": metrics["popularity_ndcg_at_10"],
        "knn_ndcg_at_10": metrics["knn_ndcg_at_10"],
        **{name: metrics[name] for name in BEYOND_ACCURACY},
        **ratios(metrics),
        "ndcg_lift": lift(metrics),
        "train_seconds": metrics["train_seconds"],
        "n_items_catalog": len(catalog),
        "n_items_embedded": int(catalog["item_id"].isin(embedded).sum()),
        "n_users_embedded": len(artifacts.user_ids),
        "nonfinite_values": int(
            (~np.isfinite(artifacts.item_embeddings)).sum() + (~np.isfinite(artifacts.user_embeddings)).sum()
        ),
        "embedding_dim": int(artifacts.item_embeddings.shape[1]),
    }
    gate = gates(run)
    # No absolute gate is a threshold of 0: the expectation stays in the suite (and the Data Docs) and holds.
    parameters = {**gate, "ndcg_threshold": gate["ndcg_threshold"] or 0.0}
    return validate_stage(
        "train_model",
        {"metrics": pd.DataFrame([row])},
        parameters=parameters,
        results_dir=run.gx_dir,
        run_name=run.run_id,
    )
