"""The GX validation helper: inputs checked with clear errors, results stored per stage, merged
failures readable in task logs and JSON-safe for XCom, Data Docs built for a whole run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

import plugins.validation as validation
from include.recsys.contract.schema import CATEGORIES, INTERACTION_TYPES
from plugins.journey.seed_data import with_references
from plugins.validation import StageValidation, ValidationFailed, build_data_docs, load_suite, validate_stage
from tests.unit.stage_inputs import seed_data_input, train_model_input

REPO_ROOT = Path(__file__).resolve().parents[2]
# A real Airflow run id: the ':' and '+' end up in Data Docs paths and links.
RUN_ID = "scheduled__2024-03-01T00:00:00+00:00"


def _validate_seed(frames, params, results_dir) -> StageValidation:
    return validate_stage("seed_data", frames, parameters=params, results_dir=results_dir, run_name=RUN_ID)


def test_importing_the_module_does_not_import_great_expectations() -> None:
    code = "import sys, plugins.validation; assert 'great_expectations' not in sys.modules, 'GX imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_load_suite_of_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"no GX suite for stage 'seeding'.*known stages: audit, data_quality_check, deploy_model",
    ):
        load_suite("seeding")


def test_load_suite_reads_one_suite_per_batch_file() -> None:
    suites = load_suite("seed_data")
    assert sorted(suites) == sorted(p.stem for p in (validation.SUITES_DIR / "seed_data").glob("*.json"))
    assert sorted(suites) == ["interactions", "items", "users"]
    assert {name: suite["name"] for name, suite in suites.items()} == {
        "interactions": "seed_data.interactions",
        "items": "seed_data.items",
        "users": "seed_data.users",
    }
    assert all(suite["expectations"] for suite in suites.values())


def test_load_suite_rejects_a_suite_not_named_after_its_stage_and_batch(tmp_path, monkeypatch) -> None:
    (tmp_path / "demo").mkdir()
    suite = {"name": "demo", "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {}}]}
    (tmp_path / "demo" / "rows.json").write_text(json.dumps(suite))
    monkeypatch.setattr(validation, "SUITES_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"demo/rows.json must be named 'demo.rows', found name 'demo'"):
        load_suite("demo")


def test_missing_batch_is_named(tmp_path) -> None:
    frames, params = seed_data_input()
    del frames["users"]
    with pytest.raises(
        ValueError, match=r"validates batches interactions, items, users; missing: users \(given: items, interactions\)"
    ):
        _validate_seed(frames, params, tmp_path)


def test_unknown_batch_is_named(tmp_path) -> None:
    frames, params = seed_data_input()
    frames["interaction"] = frames.pop("interactions")
    with pytest.raises(ValueError, match=r"missing: interactions; unknown: interaction"):
        _validate_seed(frames, params, tmp_path)


def test_batch_must_be_a_dataframe(tmp_path) -> None:
    frames, params = seed_data_input()
    frames["users"] = frames["users"].to_dict("records")
    with pytest.raises(TypeError, match="batch 'users' must be a pandas DataFrame, got list"):
        _validate_seed(frames, params, tmp_path)


def test_missing_parameter_is_named(tmp_path) -> None:
    frames, params = seed_data_input()
    del params["window_end"]
    with pytest.raises(ValueError, match=r"needs parameters .*window_end.*; missing: window_end"):
        _validate_seed(frames, params, tmp_path)


def test_missing_column_fails_the_stage_naming_the_column(tmp_path) -> None:
    frames, params = seed_data_input()
    frames["items"] = frames["items"].drop(columns=["price"])

    result = _validate_seed(frames, params, tmp_path)

    failed = {(f["batch"], f["expectation_type"], f["column"]) for f in result.failed_expectations}
    assert failed == {
        ("items", "expect_table_columns_to_match_set", None),
        ("items", "expect_column_values_to_be_between", "price"),
    }
    with pytest.raises(ValidationFailed) as raised:
        result.raise_for_failure()
    assert 'error: The column "price" in BatchData does not exist.' in str(raised.value)


def test_failure_message_has_one_line_per_failed_expectation_without_huge_value_sets(tmp_path) -> None:
    frames, params = seed_data_input()
    params["categories"] = [*params["categories"], *(f"extra{i}" for i in range(5000))]
    frames["items"].loc[0, "price"] = -3.5
    frames["items"].loc[1, "category"] = "ghost-category"

    result = _validate_seed(frames, params, tmp_path)

    with pytest.raises(ValidationFailed) as raised:
        result.raise_for_failure()
    lines = str(raised.value).splitlines()
    assert lines[0] == (
        f"GX suite 'seed_data' failed: 2 of {result.evaluated} expectations unsuccessful"
        f" (results: {tmp_path.resolve() / 'validations' / 'seed_data'})"
    )
    assert lines[1:] == [
        "  - items[category]: expect_column_values_to_be_in_set(value_set=$categories (5010 values)):"
        " 1 unexpected (25%), e.g. ['ghost-category']",
        "  - items[price]: expect_column_values_to_be_between(min_value=0, strict_min=True):"
        " 1 unexpected (25%), e.g. [-3.5]",
    ]


def test_to_dict_is_plain_json_with_every_failure_field(tmp_path) -> None:
    frames, params = train_model_input()
    frames["metrics"]["nonfinite_values"] = np.int64(7)
    frames["metrics"]["ndcg_at_10"] = np.float64(0.1)

    result = validate_stage("train_model", frames, parameters=params, results_dir=tmp_path, run_name=RUN_ID)
    as_dict = result.to_dict()

    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert {k: as_dict[k] for k in ("suite", "success", "evaluated", "unsuccessful")} == {
        "suite": "train_model",
        "success": False,
        "evaluated": 14,
        "unsuccessful": 2,
    }
    ndcg, nonfinite = as_dict["failed_expectations"]
    assert ndcg["observed_value"] == 0.1 and type(ndcg["observed_value"]) is float
    assert ndcg["kwargs"] == {"min_value": "$ndcg_threshold=0.3"}
    assert nonfinite["partial_unexpected_list"] == [7] and type(nonfinite["partial_unexpected_list"][0]) is int
    assert set(nonfinite) >= {
        "batch",
        "expectation_type",
        "column",
        "kwargs",
        "observed_value",
        "unexpected_count",
        "partial_unexpected_list",
    }


def test_partial_unexpected_list_is_truncated(tmp_path) -> None:
    frames, params = seed_data_input()
    frames["interactions"] = pd.concat([frames["interactions"]] * 10, ignore_index=True)
    frames["interactions"]["event_id"] = [f"e{i}" for i in range(len(frames["interactions"]))]
    frames["interactions"]["interaction_type"] = "like"

    result = _validate_seed(frames, params, tmp_path)

    (failure,) = result.failed_expectations
    assert failure["unexpected_count"] == 60
    assert failure["partial_unexpected_list"] == ["like"] * 10 + ["... 10 more"]


def test_results_land_in_the_run_directorys_gx_store_and_a_retry_replaces_them(tmp_path) -> None:
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    frames, params = seed_data_input()
    frames["items"].loc[0, "price"] = -1.0
    first = _validate_seed(frames, params, tmp_path)
    frames["items"].loc[0, "price"] = 10.0
    retry = _validate_seed(frames, params, tmp_path)

    assert (first.success, retry.success) == (False, True)
    assert sorted(os.listdir(tmp_path)) == ["expectations", "validations"]
    # A fresh context over the run directory's stores (not the one that validated) finds GX's own results.
    store = validation._context.__wrapped__(str(tmp_path.resolve())).validation_results_store
    keys = store.list_keys()
    assert all(isinstance(key, ValidationResultIdentifier) for key in keys)
    assert sorted(key.expectation_suite_identifier.name for key in keys) == [
        "seed_data.interactions",
        "seed_data.items",
        "seed_data.users",
    ]
    assert {key.run_id.run_name for key in keys} == {RUN_ID}
    stored = [store.get(key) for key in keys]
    assert all(result.success for result in stored)
    assert sum(len(result.results) for result in stored) == retry.evaluated
    assert Path(retry.result_path) == tmp_path.resolve() / "validations" / "seed_data"
    assert len(list(Path(retry.result_path).rglob("*.json"))) == 3
    assert "results" not in retry.to_dict()


def test_data_docs_link_every_stage_of_the_run(tmp_path) -> None:
    results_dir = tmp_path / "gx"
    frames, params = seed_data_input()
    _validate_seed(frames, params, results_dir)
    frames, params = train_model_input()
    frames["metrics"]["ndcg_at_10"] = 0.1
    validate_stage("train_model", frames, parameters=params, results_dir=results_dir, run_name=RUN_ID)

    index = Path(build_data_docs(results_dir, tmp_path / "docs"))

    assert index == (tmp_path / "docs" / "index.html").resolve()
    # Links are URL-encoded (the run id's ':' and '+'); a browser decodes them back to the file names.
    links = [unquote(link) for link in re.findall(r"'_table_row_link_path': '(validations/[^']+)'", index.read_text())]
    assert sorted(link.split("/")[1:3] for link in links) == [
        ["seed_data", "interactions"],
        ["seed_data", "items"],
        ["seed_data", "users"],
        ["train_model", "metrics"],
    ]
    for link in links:
        assert (index.parent / link).is_file(), link
        assert RUN_ID in link
    metrics_page = next(index.parent / link for link in links if "train_model" in link).read_text()
    assert "ndcg_at_10" in metrics_page


def test_data_docs_need_stored_results(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no stage results"):
        build_data_docs(tmp_path, tmp_path / "docs")


@pytest.mark.slow
def test_seed_data_at_platform_scale(tmp_path) -> None:
    """10K users, 5K items, 100K interactions: the default scale of a run."""
    rng = np.random.default_rng(7)
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(5_000)],
            "title": "item",
            "category": rng.choice(CATEGORIES, 5_000),
            "price": rng.uniform(1, 500, 5_000),
            "image_url": "https://img.example/x.jpg",
        }
    )
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(10_000)], "country": "DE", "signup_date": "2023-01-01"})
    n = 100_000
    ts = pd.Timestamp("2024-03-01T00:00:00Z") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    interactions = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": rng.choice(users["user_id"].to_numpy(), n),
            "item_id": rng.choice(items["item_id"].to_numpy(), n),
            "interaction_type": rng.choice(INTERACTION_TYPES, n),
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ts": ts,
        }
    )
    interactions = with_references(interactions, user_ids=users["user_id"], item_ids=items["item_id"])
    params = {
        "categories": CATEGORIES,
        "max_category_length": 128,
        "interaction_types": INTERACTION_TYPES,
        "window_start": "2024-03-01T00:00:00+00:00",
        "window_end": "2024-03-02T00:00:00+00:00",
        "min_interactions": n,
    }

    result = _validate_seed({"items": items, "users": users, "interactions": interactions}, params, tmp_path)

    assert result.success, result.failed_expectations


def test_data_docs_render_parameterised_distributions_without_errors(tmp_path, caplog) -> None:
    """GX charts a KL divergence's partition_object on the suite page: it must get the evaluated value, not the
    ``$PARAMETER`` reference of the suite file (a KeyError 'weights' logged at error level otherwise)."""
    import logging

    from tests.unit.stage_inputs import upload_to_minio_input

    frames, params = upload_to_minio_input()
    result = validate_stage("upload_to_minio", frames, parameters=params, results_dir=tmp_path / "gx", run_name=RUN_ID)
    assert result.success, result.failed_expectations
    with caplog.at_level(logging.ERROR):
        build_data_docs(tmp_path / "gx", tmp_path / "docs")
    errors = [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_validated_frames_are_not_kept_alive_by_gx(tmp_path) -> None:
    # The GX context is cached for the process; under `airflow dags test` a 100x seed_data's frames had stayed
    # alive through every later task. Validating again on the same context must work as before.
    import gc
    import weakref

    frames, params = seed_data_input()
    alive = {name: weakref.ref(frame) for name, frame in frames.items()}
    assert _validate_seed(frames, params, tmp_path).success
    del frames
    gc.collect()
    assert [name for name, ref in alive.items() if ref() is not None] == []
    again, params = seed_data_input()
    assert _validate_seed(again, params, tmp_path).success
