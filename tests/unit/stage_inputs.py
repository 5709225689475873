"""For every journey stage, one frame set and params that its GX suite passes: the suite tests break them one
expectation at a time, and the validation tests reuse them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from include.recsys.contract.schema import CATEGORIES, INTERACTION_COLUMNS, INTERACTION_TYPES
from plugins.journey import drift
from plugins.journey.seed_data import with_references

WINDOW_START = pd.Timestamp("2024-03-01T00:00:00Z")
WINDOW_END = pd.Timestamp("2024-03-02T00:00:00Z")

Frames = dict[str, pd.DataFrame]
Params = dict[str, Any]


def seed_data_input() -> tuple[Frames, Params]:
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "title": ["Phone", "Laptop", "Tablet", "Earbuds"],
            "category": ["smartphones", "laptops", "tablets", "audio"],
            "price": [499.0, 1299.0, 329.0, 0.5],
            "image_url": [f"https://img.example/i{i}.jpg" for i in range(1, 5)],
        }
    )
    users = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3"], "country": ["DE", "FR", "US"], "signup_date": ["2023-01-01"] * 3}
    )
    timestamps = [
        "2024-03-01T00:00:00Z",
        "2024-03-01T01:00:00Z",
        "2024-03-01T09:30:00Z",
        "2024-03-01T12:00:00Z",
        "2024-03-01T18:45:00Z",
        "2024-03-02T00:00:00Z",
    ]
    interactions = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(6)],
            "user_id": ["u1", "u1", "u2", "u3", "u3", "u2"],
            "item_id": ["i1", "i2", "i3", "i4", "i1", "i2"],
            "interaction_type": ["view", "click", "add_to_cart", "purchase", "view", "view"],
            "timestamp": timestamps,
        }
    )
    interactions["ts"] = pd.to_datetime(interactions["timestamp"], utc=True)
    interactions = with_references(interactions, user_ids=users["user_id"], item_ids=items["item_id"])
    params = {
        "categories": CATEGORIES,
        "max_category_length": 128,
        "interaction_types": INTERACTION_TYPES,
        # Both forms the DAG may hold: a Timestamp and an ISO string from XCom.
        "window_start": WINDOW_START,
        "window_end": WINDOW_END.isoformat(),
        "min_interactions": 5,
    }
    return {"items": items, "users": users, "interactions": interactions}, params


def upload_to_minio_input() -> tuple[Frames, Params]:
    names = ["items", "users", "interactions"]
    objects = pd.DataFrame(
        {
            "name": names,
            "key": [f"acme/2024-03-01/{n}.csv" for n in names],
            "rows_local": [4, 3, 6],
            "rows_read_back": [4, 3, 6],
            "sha256_local": ["a" * 64, "b" * 64, "c" * 64],
            "sha256_metadata": ["a" * 64, "b" * 64, "c" * 64],
            "sha256_read_back": ["a" * 64, "b" * 64, "c" * 64],
            "bytes": [310, 120, 540],
        }
    )
    rows_accounting = pd.DataFrame(
        {
            "name": names,
            "rows_total": [5, 3, 6],
            "rows_good": [4, 3, 6],
            "rows_quarantined": [1, 0, 0],
            "bad_share": [0.2, 0.0, 0.0],
            "max_bad_share": [0.25, 0.25, 0.25],
        }
    )
    seeded = seed_data_input()[0]
    read_back = seeded["interactions"][list(INTERACTION_COLUMNS)]
    # The previous upload: the same tables (a day whose upload did not drift).
    drift_batches, params, _ = drift.batches(
        seeded, seeded, previous_profile=drift.profile(seeded), params=DRIFT_PARAMS
    )
    return {"objects": objects, "rows_accounting": rows_accounting, "read_back": read_back, **drift_batches}, params


DRIFT_PARAMS = {"drift_min_row_ratio": 0.5, "drift_max_row_ratio": 2.0, "drift_max_new_share": 0.2, "drift_max_kl": 0.1}


def feed_kafka_input() -> tuple[Frames, Params]:
    counts = pd.DataFrame({"generated": [6], "produced": [6], "acked": [6], "landed": [6], "dead_lettered": [0]})
    landed = seed_data_input()[0]["interactions"].drop(columns=["timestamp", "unknown_user_id", "unknown_item_id"])
    landed["kafka_partition"] = [0, 0, 1, 2, 2, 1]
    landed["kafka_offset"] = [0, 1, 0, 0, 1, 1]
    user_order = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "in_order": [True, True, True]})
    params = {"max_dead_lettered": 0, "n_users_expected": 3}
    return {"counts": counts, "landed": landed, "user_order": user_order}, params


def train_model_input() -> tuple[Frames, Params]:
    metrics = pd.DataFrame(
        {
            "ndcg_at_10": [0.41],
            "recall_at_10": [0.55],
            "popularity_ndcg_at_10": [0.12],
            "ndcg_lift": [3.417],  # 0.41 / 0.12, as train_model computes it
            "knn_ndcg_at_10": [0.38],
            "knn_ratio": [0.41 / 0.38],
            "knn_ratio_ci_high": [1.16],
            "coverage_at_10": [0.43],
            "popularity_bias": [11.1],
            "exposure_gini": [0.88],
            "cold_start_ndcg_at_10": [None],
            "coverage_ratio_over_knn": [0.9],
            "popularity_bias_ratio_over_knn": [1.2],
            "exposure_gini_over_knn": [0.05],
            "cold_start_lift": [None],  # too few cold-start users: not gated
            "train_seconds": [12.5],
            "n_items_catalog": [5000],
            "n_items_embedded": [5000],
            "n_users_embedded": [10000],
            "nonfinite_values": [0],
            "embedding_dim": [64],
        }
    )
    params = {
        "ndcg_threshold": 0.30,
        "min_lift": 1.5,
        "min_ratio_over_knn": 0.95,
        "min_coverage_ratio_over_knn": 0.25,
        "max_popularity_bias_ratio_over_knn": 3.0,
        "max_exposure_gini_over_knn": 0.25,
        "min_cold_start_lift": 0.5,
    }
    return {"metrics": metrics}, params


def deploy_model_input() -> tuple[Frames, Params]:
    # v3 validated as a candidate (0% traffic) while the newer v4 stays live.
    deployment = pd.DataFrame(
        {
            "registered_version": ["v3"],
            "served_version": ["v3"],
            "index_size": [5000],
            "catalog_size": [5000],
            "traffic_percent": [0],
            "expected_traffic_percent": [0],
            "live_version": ["v4"],
            "expected_live_version": ["v4"],
            "health_status": ["healthy"],
            "agreement_users": [50],
            "serving_agreement": [1.0],
        }
    )
    return {"deployment": deployment}, {"min_serving_agreement": 0.99}


def query_recommendations_input() -> tuple[Frames, Params]:
    # r1: unfiltered, 3 of 3 returned; r2: filtered to "audio", only 2 audio items exist.
    recommendations = pd.DataFrame(
        {
            "request_id": ["r1", "r1", "r1", "r2", "r2"],
            "user_id": ["u1", "u1", "u1", "u2", "u2"],
            "rank": [1, 2, 3, 1, 2],
            "item_id": ["i1", "i2", "i3", "i4", "i5"],
            "score": [0.9, 0.8, 0.8, 0.7, 0.4],
            "category": ["smartphones", "laptops", "tablets", "audio", "audio"],
            "filter_category": [None, None, None, "audio", "audio"],
            "in_catalog": [True] * 5,
        }
    )
    recommendations["prev_score"] = recommendations.groupby("request_id")["score"].shift(1)
    requests = pd.DataFrame(
        {
            "request_id": ["r1", "r2"],
            "user_id": ["u1", "u2"],
            "status": [200, 200],
            "count_requested": [3, 3],
            "count_expected": [3, 2],
            "count_returned": [3, 2],
            "model_version": ["v3", "v3"],
            "fallback": [False, False],
            "latency_ms": [12.0, 15.5],
            "filtered": [False, True],
        }
    )
    probes = pd.DataFrame(
        {
            "probe": ["no_key", "bad_key", "other_tenant", "burst", "bad_body"],
            "expected_status": [401, 401, 403, 429, 422],
            "actual_status": [401, 401, 403, 429, 422],
        }
    )
    latency = pd.DataFrame({"p50_ms": [10.0], "p95_ms": [40.0], "p99_ms": [80.0], "error_rate": [0.0]})
    params = {
        "catalog_item_ids": [f"i{i}" for i in range(1, 21)],
        "max_p95_ms": 250.0,
        "max_error_rate": 0.01,
        "model_version": "v3",
    }
    return {"recommendations": recommendations, "requests": requests, "probes": probes, "latency": latency}, params


def audit_input() -> tuple[Frames, Params]:
    # The actions the platform really writes (include/recsys/api/admin/, include/recsys/ingest/worker.py) for one journey.
    required = [
        "tenant.created",
        "upload.registered",
        "interactions.ingested",
        "model.registered",
        "model.deployed",
        "apikey.created",
    ]
    actions = pd.DataFrame({"action": required, "found": [1, 3, 1, 1, 1, 1]})
    audit_rows = pd.DataFrame(
        {
            "action": [*required, "upload.registered", "upload.registered"],
            "tenant_id": ["acme"] * 8,
            "source": ["api"] * 8,
        }
    )
    return {"actions": actions, "audit_rows": audit_rows}, {"tenant_id": "acme", "required_actions": required}


def load_test_input() -> tuple[Frames, Params]:
    # What plugins/journey/load_test.frames makes of a k6 summary of the guide's profile.
    summary = pd.DataFrame(
        {
            "mode": ["load"],
            "requests": [4_210],
            "p95_ms": [7.9],
            "error_rate": [0.0],
            "rps": [152.3],
            "cache_hit_rate": [0.93],
            "rss_growth": [float("nan")],
        }
    )
    params = {
        "max_p95_ms": 100.0,
        "max_error_rate": 0.01,
        "min_rps": 100.0,
        "min_cache_hit_rate": 0.8,
        "max_rss_growth": 2.0,
    }
    return {"summary": summary}, params


def resilience_input() -> tuple[Frames, Params]:
    drills = pd.DataFrame(
        {
            "drill": ["object_store_down_during_upload", "broker_down_during_feed", "worker_killed_mid_batch"],
            "broken": ["seaweedfs", "kafka", "recsys-ingest"],
            "outage_s": [10.2, 3.3, 0.4],
            "expected": [1, 10_000, 10_000],
            "landed": [1, 10_000, 10_000],
            "missing": [0, 0, 0],
            "duplicates": [0, 0, 0],
        }
    )
    checks = pd.DataFrame(
        {
            "drill": ["object_store_down_during_upload", "broker_down_during_feed"],
            "check": ["same_checksum_after", "every_send_acked"],
            "outcome": [
                "object_store_down_during_upload.same_checksum_after: ok",
                "broker_down_during_feed.every_send_acked: ok",
            ],
        }
    )
    return {"drills": drills, "checks": checks}, {}


INPUTS: dict[str, Callable[[], tuple[Frames, Params]]] = {
    "seed_data": seed_data_input,
    "upload_to_minio": upload_to_minio_input,
    "feed_kafka": feed_kafka_input,
    "train_model": train_model_input,
    "deploy_model": deploy_model_input,
    "query_recommendations": query_recommendations_input,
    "audit": audit_input,
    "load_test": load_test_input,
    "resilience": resilience_input,
}
