"""train_model's gates: the absolute NDCG@10 target holds for generated data only unless an operator sets one;
the lift over popularity gates every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload, gates, lift

DAY = datetime(2026, 11, 10, tzinfo=UTC)


def journey(**params) -> JourneyRun:
    return JourneyRun("onboarding_journey", "manual__x", "acme", DAY, DAY + timedelta(days=1),
                      {"ndcg_threshold": None, "min_lift": 1.5, **params})  # fmt: skip


def test_by_default_generated_data_meets_the_platform_target_and_a_real_sample_only_the_lift():
    assert gates(journey()) == {"ndcg_threshold": 0.30, "min_lift": 1.5}
    assert gates(journey(interactions_uri="log.tsv", items_uri="movies.tsv")) == {"ndcg_threshold": None, "min_lift": 1.5}


def test_an_operator_may_set_either_gate_for_either_kind_of_run():
    assert gates(journey(ndcg_threshold=0.1, min_lift=2.0, interactions_uri="log.tsv")) == {"ndcg_threshold": 0.1, "min_lift": 2.0}
    assert gates(journey(ndcg_threshold=0.0)) == {"ndcg_threshold": 0.0, "min_lift": 1.5}


def test_lift_is_the_ratio_over_popularity_even_when_popularity_scores_nothing():
    assert lift({"ndcg_at_10": 0.164, "popularity_ndcg_at_10": 0.012}) == 0.164 / 0.012
    assert lift({"ndcg_at_10": 0.2, "popularity_ndcg_at_10": 0.0}) > 1e6


def test_the_journey_trains_over_its_own_catalog_snapshot_and_retraining_over_the_merged_catalog():
    assert catalog_upload({"upload_to_minio": {"uploads": {"items": "up-1", "users": "up-2"}}}) == "up-1"
    assert catalog_upload({"seed_data": {"tenant_id": "t"}}) is None  # tenant_model_training's validation
