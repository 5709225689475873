"""train_model's gates: the absolute NDCG@10 target holds for generated data only unless an operator sets one;
the gates relative to popularity and item-kNN gate every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload, gates, lift, ratios

DAY = datetime(2026, 11, 10, tzinfo=UTC)
RELATIVE = {
    "min_lift": 1.5,
    "min_ratio_over_knn": 0.95,
    "min_coverage_ratio_over_knn": 0.25,
    "max_popularity_bias_ratio_over_knn": 3.0,
    "max_exposure_gini_over_knn": 0.25,
    "min_cold_start_lift": 0.5,
}


def journey(**params) -> JourneyRun:
    return JourneyRun(
        "onboarding_journey",
        "manual__x",
        "acme",
        DAY,
        DAY + timedelta(days=1),
        {"ndcg_threshold": None, **RELATIVE, **params},
    )


def test_by_default_generated_data_meets_the_platform_target_and_a_real_sample_only_the_lift():
    assert gates(journey()) == {"ndcg_threshold": 0.30, **RELATIVE}
    assert gates(journey(interactions_uri="log.tsv", items_uri="movies.tsv")) == {"ndcg_threshold": None, **RELATIVE}


def test_an_operator_may_set_either_gate_for_either_kind_of_run():
    assert gates(journey(ndcg_threshold=0.1, min_lift=2.0, interactions_uri="log.tsv")) == {
        **RELATIVE,
        "ndcg_threshold": 0.1,
        "min_lift": 2.0,
    }
    assert gates(journey(ndcg_threshold=0.0, min_ratio_over_knn=1.1)) == {
        **RELATIVE,
        "ndcg_threshold": 0.0,
        "min_ratio_over_knn": 1.1,
    }


def test_lift_is_the_ratio_over_popularity_even_when_popularity_scores_nothing():
    assert lift({"ndcg_at_10": 0.164, "popularity_ndcg_at_10": 0.012}) == 0.164 / 0.012
    assert lift({"ndcg_at_10": 0.2, "popularity_ndcg_at_10": 0.0}) > 1e6


def test_the_journey_trains_over_its_own_catalog_snapshot_and_retraining_over_the_merged_catalog():
    assert catalog_upload({"upload_to_minio": {"uploads": {"items": "up-1", "users": "up-2"}}}) == "up-1"
    assert catalog_upload({"seed_data": {"tenant_id": "t"}}) is None  # tenant_model_training's validation


def test_ratios_compare_the_model_with_both_baselines_and_skip_a_small_cold_start_slice():
    metrics = {
        "ndcg_at_10": 0.30,
        "popularity_ndcg_at_10": 0.10,
        "knn_ndcg_at_10": 0.40,
        "coverage_at_10": 0.2,
        "knn_coverage_at_10": 0.4,
        "popularity_bias": 3.0,
        "knn_popularity_bias": 2.0,
        "exposure_gini": 0.9,
        "knn_exposure_gini": 0.7,
        "cold_start_users": 19,
        "cold_start_ndcg_at_10": 0.1,
        "popularity_cold_start_ndcg_at_10": 0.2,
    }
    assert ratios(metrics) == pytest.approx(
        {
            "ndcg_lift": 3.0,
            "knn_ratio": 0.75,
            "knn_ratio_ci_high": 0.75,  # no interval measured (an older version): the point ratio stands in
            "coverage_ratio_over_knn": 0.5,
            "popularity_bias_ratio_over_knn": 1.5,
            "exposure_gini_over_knn": 0.2,
            "cold_start_lift": None,
        }
    )
    assert ratios({**metrics, "cold_start_users": 20})["cold_start_lift"] == pytest.approx(0.5)
    assert ratios({**metrics, "knn_ratio_ci_high": 0.9})["knn_ratio_ci_high"] == 0.9
