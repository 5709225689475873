"""Each stage's GX suite: a valid frame set passes, and each kind of breakage fails exactly the
expectation written for it, with the offending value in the failure message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from plugins.journey import ALL_STAGES
from plugins.journey.seed_data import with_references
from plugins.validation import SUITES_DIR, ValidationFailed, load_suite, validate_stage
from tests.unit.stage_inputs import INPUTS, Frames, Params

Breakage = Callable[[Frames, Params], None]

BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
UNIQUE = "expect_column_values_to_be_unique"
NOT_NULL = "expect_column_values_to_not_be_null"
NULL = "expect_column_values_to_be_null"
LENGTHS_BETWEEN = "expect_column_value_lengths_to_be_between"
PAIR_EQUAL = "expect_column_pair_values_to_be_equal"
A_AT_LEAST_B = "expect_column_pair_values_a_to_be_greater_than_b"
MIN_BETWEEN = "expect_column_min_to_be_between"
MAX_BETWEEN = "expect_column_max_to_be_between"
ROWS_BETWEEN = "expect_table_row_count_to_be_between"
ROWS_EQUAL = "expect_table_row_count_to_equal"
COLUMNS = "expect_table_columns_to_match_set"
CONTAINS = "expect_column_distinct_values_to_contain_set"
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
KL = "expect_column_kl_divergence_to_be_less_than"


def put(batch: str, row: int, column: str, value: Any) -> Breakage:
    def breakage(frames: Frames, params: Params) -> None:
        frames[batch].loc[row, column] = value

    return breakage


def transform(batch: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Breakage:
    def breakage(frames: Frames, params: Params) -> None:
        frames[batch] = change(frames[batch])

    return breakage


def put_reference(column: str, value: str) -> Breakage:
    """Row 2 of the interactions refers to ``value`` in ``column``, and the referential columns say so as
    seed_data computes them."""

    def breakage(frames: Frames, params: Params) -> None:
        interactions = frames["interactions"].copy()
        interactions.loc[2, column] = value
        frames["interactions"] = with_references(
            interactions, user_ids=frames["users"]["user_id"], item_ids=frames["items"]["item_id"]
        )

    return breakage


def set_params(**changes: Any) -> Breakage:
    def breakage(frames: Frames, params: Params) -> None:
        params.update(changes)

    return breakage


def broken(stage: str, breakage: Breakage, *failures: tuple[str, str, str | None], shows: str) -> Any:
    """A case: ``breakage`` makes exactly ``failures`` (batch, expectation type, column) fail, showing ``shows``."""
    batch, expectation_type, column = failures[0]
    return pytest.param(stage, breakage, list(failures), shows, id=f"{stage}-{batch}-{column or expectation_type}")


BREAKAGES = [
    broken("seed_data", put("items", 1, "price", -3.5), ("items", BETWEEN, "price"), shows="-3.5"),
    broken("seed_data", put("items", 1, "price", 0.0), ("items", BETWEEN, "price"), shows="[0.0]"),
    broken("seed_data", put("items", 2, "item_id", None), ("items", NOT_NULL, "item_id"), shows="1 unexpected"),
    broken("seed_data", put("items", 0, "category", "toasters"), ("items", IN_SET, "category"), shows="toasters"),
    broken(
        "seed_data",
        put("items", 0, "category", "x" * 129),
        ("items", IN_SET, "category"),
        ("items", LENGTHS_BETWEEN, "category"),
        shows="1 unexpected",
    ),
    broken("seed_data", put("users", 2, "user_id", "u1"), ("users", UNIQUE, "user_id"), shows="['u1', 'u1']"),
    broken("seed_data", put("interactions", 3, "event_id", "e0"), ("interactions", UNIQUE, "event_id"), shows="e0"),
    broken(
        "seed_data",
        put_reference("item_id", "ghost"),
        ("interactions", NULL, "unknown_item_id"),
        shows="1 unexpected (16.7%), e.g. ['ghost']",
    ),
    broken(
        "seed_data",
        put_reference("user_id", "ghost"),
        ("interactions", NULL, "unknown_user_id"),
        shows="1 unexpected (16.7%), e.g. ['ghost']",
    ),
    broken(
        "seed_data",
        put("interactions", 0, "interaction_type", "like"),
        ("interactions", IN_SET, "interaction_type"),
        shows="['like']",
    ),
    broken(
        "seed_data",
        put("interactions", 4, "ts", pd.Timestamp("2024-03-02T00:00:01Z")),
        ("interactions", BETWEEN, "ts"),
        shows="2024-03-02T00:00:01",
    ),
    broken("seed_data", set_params(min_interactions=100), ("interactions", ROWS_BETWEEN, None), shows="observed 6"),
    broken(
        "seed_data",
        transform("users", lambda df: df.assign(email="x@example.com")),
        ("users", COLUMNS, None),
        shows="email",
    ),
    broken(
        "upload_to_minio",
        put("objects", 2, "rows_read_back", 5),
        ("objects", PAIR_EQUAL, "rows_local, rows_read_back"),
        shows="1 unexpected",
    ),
    broken(
        "upload_to_minio",
        put("objects", 0, "sha256_read_back", "f" * 64),
        ("objects", PAIR_EQUAL, "sha256_local, sha256_read_back"),
        shows="f" * 64,
    ),
    broken(
        "upload_to_minio",
        put("objects", 1, "sha256_metadata", "0" * 64),
        ("objects", PAIR_EQUAL, "sha256_local, sha256_metadata"),
        shows="0" * 64,
    ),
    broken(
        "upload_to_minio",
        put("objects", 1, "name", "catalog"),
        ("objects", CONTAINS, "name"),
        shows="missing ['users']",
    ),
    broken(
        "upload_to_minio",
        put("rows_accounting", 0, "rows_quarantined", 0),
        ("rows_accounting", ROWS_EQUAL, None),
        shows="row_condition=rows_good + rows_quarantined != rows_total): observed 1",
    ),
    broken(
        "upload_to_minio",
        put("rows_accounting", 0, "bad_share", 0.3),
        ("rows_accounting", A_AT_LEAST_B, "max_bad_share, bad_share"),
        shows="1 unexpected",
    ),
    broken("upload_to_minio", put("read_back", 5, "event_id", "e1"), ("read_back", UNIQUE, "event_id"), shows="e1"),
    broken("upload_to_minio", put("drift", 1, "new_share", 0.5), ("drift", BETWEEN, "new_share"), shows="0.5"),
    broken("upload_to_minio", put("drift", 0, "row_ratio", 2.5), ("drift", BETWEEN, "row_ratio"), shows="2.5"),
    broken(
        "upload_to_minio",
        transform("drift_interactions", lambda f: f.assign(interaction_type="purchase")),
        ("drift_interactions", KL, "interaction_type"),
        shows="drift_interactions[interaction_type]",
    ),
    broken("feed_kafka", put("counts", 0, "landed", 5), ("counts", PAIR_EQUAL, "acked, landed"), shows="1 unexpected"),
    broken(
        "feed_kafka",
        put("counts", 0, "acked", 5),
        ("counts", PAIR_EQUAL, "produced, acked"),
        ("counts", PAIR_EQUAL, "acked, landed"),
        shows="1 unexpected",
    ),
    broken(
        "feed_kafka",
        put("counts", 0, "dead_lettered", 2),
        ("counts", MAX_BETWEEN, "dead_lettered"),
        shows="observed 2",
    ),
    broken("feed_kafka", put("landed", 1, "event_id", "e0"), ("landed", UNIQUE, "event_id"), shows="e0"),
    broken("feed_kafka", put("user_order", 1, "in_order", False), ("user_order", IN_SET, "in_order"), shows="[False]"),
    broken(
        "feed_kafka",
        set_params(n_users_expected=4),
        ("user_order", ROWS_EQUAL, None),
        shows="$n_users_expected=4): observed 3",
    ),
    broken(
        "train_model",
        put("metrics", 0, "ndcg_at_10", 0.21),
        ("metrics", MIN_BETWEEN, "ndcg_at_10"),
        shows="min_value=$ndcg_threshold=0.3): observed 0.21",
    ),
    broken(
        "train_model",
        put("metrics", 0, "ndcg_lift", 1.2),
        ("metrics", MIN_BETWEEN, "ndcg_lift"),
        shows="min_value=$min_lift=1.5): observed 1.2",
    ),
    broken(
        "train_model",
        put("metrics", 0, "knn_ratio_ci_high", 0.8),
        ("metrics", MIN_BETWEEN, "knn_ratio_ci_high"),
        shows="min_value=$min_ratio_over_knn=0.95): observed 0.8",
    ),
    broken(
        "train_model",
        put("metrics", 0, "coverage_ratio_over_knn", 0.2),
        ("metrics", MIN_BETWEEN, "coverage_ratio_over_knn"),
        shows="min_value=$min_coverage_ratio_over_knn=0.25): observed 0.2",
    ),
    broken(
        "train_model",
        put("metrics", 0, "popularity_bias_ratio_over_knn", 4.0),
        ("metrics", "expect_column_max_to_be_between", "popularity_bias_ratio_over_knn"),
        shows="max_value=$max_popularity_bias_ratio_over_knn=3.0): observed 4.0",
    ),
    broken(
        "train_model",
        put("metrics", 0, "exposure_gini_over_knn", 0.3),
        ("metrics", "expect_column_max_to_be_between", "exposure_gini_over_knn"),
        shows="max_value=$max_exposure_gini_over_knn=0.25): observed 0.3",
    ),
    broken(
        "train_model",
        put("metrics", 0, "cold_start_lift", 0.3),
        ("metrics", "expect_column_values_to_be_between", "cold_start_lift"),
        shows="e.g. [0.3]",
    ),
    broken(
        "train_model",
        put("metrics", 0, "nonfinite_values", 3),
        ("metrics", IN_SET, "nonfinite_values"),
        shows="e.g. [3]",
    ),
    broken(
        "train_model",
        put("metrics", 0, "n_items_embedded", 4990),
        ("metrics", PAIR_EQUAL, "n_items_embedded, n_items_catalog"),
        shows="1 unexpected",
    ),
    broken("train_model", put("metrics", 0, "recall_at_10", 1.5), ("metrics", BETWEEN, "recall_at_10"), shows="[1.5]"),
    broken(
        "deploy_model",
        put("deployment", 0, "served_version", "v2"),
        ("deployment", PAIR_EQUAL, "served_version, registered_version"),
        shows="1 unexpected",
    ),
    broken(
        "deploy_model",
        put("deployment", 0, "index_size", 4999),
        ("deployment", PAIR_EQUAL, "index_size, catalog_size"),
        shows="1 unexpected",
    ),
    broken(
        "deploy_model",
        put("deployment", 0, "traffic_percent", 100),
        ("deployment", PAIR_EQUAL, "traffic_percent, expected_traffic_percent"),
        shows="1 unexpected",
    ),
    broken(
        "deploy_model",
        put("deployment", 0, "live_version", "v3"),
        ("deployment", PAIR_EQUAL, "live_version, expected_live_version"),
        shows="1 unexpected",
    ),
    broken(
        "deploy_model",
        put("deployment", 0, "health_status", "degraded"),
        ("deployment", IN_SET, "health_status"),
        shows="['degraded']",
    ),
    broken(
        "deploy_model",
        put("deployment", 0, "serving_agreement", 0.42),
        ("deployment", MIN_BETWEEN, "serving_agreement"),
        shows="min_value=$min_serving_agreement=0.99): observed 0.42",
    ),
    broken(
        "query_recommendations",
        put("recommendations", 1, "item_id", "i999"),
        ("recommendations", IN_SET, "item_id"),
        shows="['i999']",
    ),
    broken(
        "query_recommendations",
        put("recommendations", 2, "item_id", "i1"),
        ("recommendations", COMPOUND_UNIQUE, "request_id, item_id"),
        shows="i1",
    ),
    broken(
        "query_recommendations",
        put("recommendations", 2, "score", 0.85),
        ("recommendations", A_AT_LEAST_B, "prev_score, score"),
        shows="1 unexpected",
    ),
    broken(
        "query_recommendations",
        put("recommendations", 4, "category", "tv"),
        ("recommendations", PAIR_EQUAL, "category, filter_category"),
        shows="tv",
    ),
    broken("query_recommendations", put("requests", 0, "status", 500), ("requests", IN_SET, "status"), shows="[500]"),
    broken(
        "query_recommendations",
        put("requests", 1, "model_version", "v4"),
        ("requests", IN_SET, "model_version"),
        shows="['v4']",
    ),
    broken(
        "query_recommendations",
        put("requests", 0, "count_returned", 2),
        ("requests", PAIR_EQUAL, "count_returned, count_expected"),
        shows="1 unexpected",
    ),
    broken(
        "query_recommendations",
        put("requests", 1, "count_returned", 0),
        ("requests", PAIR_EQUAL, "count_returned, count_expected"),
        shows="1 unexpected",
    ),
    broken(
        "query_recommendations",
        put("probes", 2, "actual_status", 200),
        ("probes", PAIR_EQUAL, "actual_status, expected_status"),
        shows="1 unexpected",
    ),
    broken(
        "query_recommendations",
        put("latency", 0, "p95_ms", 900.0),
        ("latency", MAX_BETWEEN, "p95_ms"),
        shows="max_value=$max_p95_ms=250.0): observed 900.0",
    ),
    broken(
        "query_recommendations",
        put("latency", 0, "error_rate", 0.2),
        ("latency", MAX_BETWEEN, "error_rate"),
        shows="observed 0.2",
    ),
    broken("audit", put("actions", 4, "found", 0), ("actions", BETWEEN, "found"), shows="e.g. [0]"),
    broken(
        "audit",
        transform("audit_rows", lambda df: df[df["action"] != "model.deployed"]),
        ("audit_rows", CONTAINS, "action"),
        shows="missing ['model.deployed']",
    ),
    broken("audit", put("audit_rows", 3, "tenant_id", "globex"), ("audit_rows", IN_SET, "tenant_id"), shows="globex"),
    broken(
        "load_test",
        put("summary", 0, "error_rate", 0.805),
        ("summary", MAX_BETWEEN, "error_rate"),
        shows="observed 0.805",
    ),
    broken("load_test", put("summary", 0, "p95_ms", 140.0), ("summary", MAX_BETWEEN, "p95_ms"), shows="observed 140.0"),
    broken("load_test", put("summary", 0, "rps", 61.0), ("summary", MIN_BETWEEN, "rps"), shows="observed 61.0"),
    broken(
        "load_test",
        put("summary", 0, "cache_hit_rate", 0.4),
        ("summary", MIN_BETWEEN, "cache_hit_rate"),
        shows="observed 0.4",
    ),
    broken("resilience", put("drills", 1, "missing", 12), ("drills", IN_SET, "missing"), shows="e.g. [12]"),
    broken("resilience", put("drills", 2, "duplicates", 3), ("drills", IN_SET, "duplicates"), shows="e.g. [3]"),
    broken(
        "resilience",
        put("drills", 1, "landed", 9_998),
        ("drills", PAIR_EQUAL, "landed, expected"),
        shows="1 unexpected",
    ),
    broken("resilience", put("drills", 0, "outage_s", 0.0), ("drills", BETWEEN, "outage_s"), shows="e.g. [0.0]"),
    broken(
        "resilience",
        put("checks", 1, "outcome", "broker_down_during_feed.every_send_acked: FAILED 3 sends unacked"),
        ("checks", "expect_column_values_to_match_regex", "outcome"),
        shows="FAILED 3 sends unacked",
    ),
]


def test_every_stage_has_a_suite_and_an_input_here() -> None:
    # expectations/ also holds the ops DAGs' suites (data_quality_check/), tested beside their DAG.
    assert set(ALL_STAGES) <= {p.parent.name for p in SUITES_DIR.glob("*/*.json")}
    assert sorted(ALL_STAGES) == sorted(INPUTS)


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_suite_file_is_a_valid_gx_suite(stage: str) -> None:
    from great_expectations.core.expectation_suite import ExpectationSuite

    for batch, suite in load_suite(stage).items():
        assert suite["name"] == f"{stage}.{batch}"
        assert len(ExpectationSuite(**suite).expectations) == len(suite["expectations"]) > 0


@pytest.mark.parametrize("stage", ALL_STAGES)
def test_valid_input_passes(stage: str, tmp_path) -> None:
    frames, params = INPUTS[stage]()
    result = validate_stage(stage, frames, parameters=params, results_dir=tmp_path, run_name="run")
    assert result.failed_expectations == []
    assert result.success and result.unsuccessful == 0
    assert result.evaluated == sum(len(suite["expectations"]) for suite in load_suite(stage).values())
    result.raise_for_failure()


@pytest.mark.parametrize(("stage", "breakage", "expected", "shows"), BREAKAGES)
def test_broken_input_fails_the_expectation_written_for_it(
    stage: str, breakage: Breakage, expected: list[tuple[str, str, str | None]], shows: str, tmp_path
) -> None:
    frames, params = INPUTS[stage]()
    frames = {name: frame.copy() for name, frame in frames.items()}
    breakage(frames, params)

    result = validate_stage(stage, frames, parameters=params, results_dir=tmp_path, run_name="run")

    failed = [(f["batch"], f["expectation_type"], f["column"]) for f in result.failed_expectations]
    assert failed == expected
    assert not result.success and result.unsuccessful == len(expected)
    with pytest.raises(ValidationFailed) as raised:
        result.raise_for_failure()
    message = str(raised.value)
    assert f"GX suite {stage!r} failed" in message
    assert shows in message
