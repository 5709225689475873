"""GX results of a real validation (GX's own result objects) mapped onto OpenLineage's data-quality facets, and the lineage transport's
one switch (off by default, files with RECSYS_LINEAGE=file, HTTP with OPENLINEAGE_URL)."""

from __future__ import annotations

import json

import pytest
from openlineage.client.serde import Serde

from include.stack.env import openlineage_env
from include.stack.settings import StackSettings
from plugins.quality_facets import batch_quality
from plugins.validation import validate_stage
from tests.unit.stage_inputs import seed_data_input


def _facets(tmp_path, frames, params):
    result = validate_stage("seed_data", frames, parameters=params, results_dir=tmp_path, run_name="manual__t")
    quality = batch_quality(result)
    dataset = quality["items"].dataset(namespace="file://host", name="/work/items.csv")
    return result, json.loads(Serde.to_json(dataset))["facets"]


def test_a_passing_suite_gives_one_successful_assertion_per_expectation_and_the_row_count(tmp_path) -> None:
    frames, params = seed_data_input()
    result, facets = _facets(tmp_path, frames, params)
    assertions = facets["dataQualityAssertions"]["assertions"]
    assert result.success and assertions and all(a["success"] for a in assertions)
    assert {"expect_column_values_to_not_be_null"} <= {a["assertion"] for a in assertions}
    assert any(a.get("column") == "item_id" for a in assertions)
    assert facets["dataQualityMetrics"]["rowCount"] == len(frames["items"])
    assert facets["dataQualityMetrics"]["columnMetrics"]["item_id"]["nullCount"] == 0


def test_a_failed_expectation_is_an_unsuccessful_assertion_with_its_failure_count(tmp_path) -> None:
    frames, params = seed_data_input()
    frames["items"].loc[1, "item_id"] = None
    result, facets = _facets(tmp_path, frames, params)
    failed = [a for a in facets["dataQualityAssertions"]["assertions"] if not a["success"]]
    assert not result.success
    not_null = next(a for a in failed if a["assertion"] == "expect_column_values_to_not_be_null")
    assert not_null["column"] == "item_id" and not_null["params"]["failures"] == 1
    assert facets["dataQualityMetrics"]["columnMetrics"]["item_id"]["nullCount"] == 1


def test_lineage_is_off_unless_asked_then_files_under_the_stack_or_http_to_openlineage_url(tmp_path, monkeypatch):
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), "RECSYS_PORT_OFFSET": "0"})
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    monkeypatch.delenv("RECSYS_LINEAGE", raising=False)
    assert openlineage_env(settings) == {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    with pytest.raises(ValueError, match="RECSYS_LINEAGE must be file or off"):
        openlineage_env(settings, mode="kafka")
    monkeypatch.setenv("RECSYS_LINEAGE", "file")
    local = json.loads(openlineage_env(settings)["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert local["type"] == "file" and local["log_file_path"].startswith(str(tmp_path / "lineage"))
    assert (tmp_path / "lineage").is_dir()
    monkeypatch.setenv("OPENLINEAGE_URL", "http://marquez:5000")
    remote = json.loads(openlineage_env(settings)["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert remote == {"type": "http", "url": "http://marquez:5000", "endpoint": "api/v1/lineage"}
