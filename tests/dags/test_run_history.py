"""Run history end to end (issue 12): days of one tenant at a small scale through dag.test on the real stack.

Two days seed the history (baseline_min_runs=2 keeps the module short; the default is 3 of the last 7). The
third day trains a deliberately weaker model (train_epochs=1): under regression_policy=warn it is flagged with
both numbers and alerts; run again under regression_policy=fail the run fails naming the figure, and its row is
replaced, not added. The fourth day uploads a catalog twice the size, half of it items never seen before: the
upload's drift expectations catch it. Needs the stack (``make up``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from tests.dags.journeys import SMALL, run_journey

pytestmark = [pytest.mark.usefixtures("stack_env"), pytest.mark.timeout(1800)]

TENANT = "it-history"
CONF = {"tenant": TENANT, **SMALL, "baseline_min_runs": 2}
D1, D2, D3, D4 = (datetime(2026, 10, day, tzinfo=UTC) for day in (5, 6, 7, 8))
# A weaker model that still passes the model gates, so only the trend can say it got worse.
# The model gates are opened so the weak model reaches the history, whose trend is what is under test.
WEAK = {
    "train_epochs": 1,
    "ndcg_threshold": 0.0,
    "min_lift": 0.0,
    "min_ratio_over_knn": 0.0,
    "min_coverage_ratio_over_knn": 0.0,
    "max_popularity_bias_ratio_over_knn": 100.0,
    "max_exposure_gini_over_knn": 1.0,
    "min_cold_start_lift": 0.0,
}


def history_rows(day: datetime) -> list[dict]:
    from plugins.hooks.history import HistoryHook

    return HistoryHook()._rows(
        "SELECT run_id, run_type, success, failed_stage, trend, written_at FROM runs WHERE dag_id = %s AND tenant = %s AND logical_date = %s",
        ("onboarding_journey", TENANT, day.date()),
    )


def alert(dag_run, name: str) -> dict:
    from include.config import local_dir, safe_name

    with open(os.path.join(local_dir(), "alerts", "onboarding_journey", safe_name(dag_run.run_id), name)) as fh:
        return json.load(fh)


def stage(report: dict, name: str) -> dict:
    return next(s for s in report["stages"] if s["name"] == name)


@pytest.fixture(scope="module")
def seeded():
    """Two good days: the baseline."""
    from plugins.hooks.history import HistoryHook

    HistoryHook().run("DELETE FROM runs WHERE tenant = %s", parameters=(TENANT,))
    return [run_journey(logical_date=day, **CONF) for day in (D1, D2)]


@pytest.fixture(scope="module")
def weak(seeded):
    """Day 3 with a weaker model, warned, then the same day again under regression_policy=fail."""
    warned = run_journey(logical_date=D3, **CONF, **WEAK)
    rows_after_warn = history_rows(D3)
    failed = run_journey(logical_date=D3, **CONF, **WEAK, regression_policy="fail")
    return warned, rows_after_warn, failed


def test_every_day_leaves_one_row_and_the_first_upload_has_no_baseline(seeded):
    (run1, first), (run2, second) = seeded
    assert run1.state == run2.state == "success", [first["failed_stage"], second["failed_stage"]]
    assert first["drift"]["baseline"] is None and "first upload" in first["drift"]["note"]
    assert "no baseline yet: 0 successful run(s)" in first["trend"]["note"]
    rows = history_rows(D1)
    assert len(rows) == 1 and rows[0]["success"] is True and rows[0]["run_id"] == run1.run_id
    assert rows[0]["run_type"] == "manual"  # dag.test; the scheduler's and backfills' runs say scheduled, backfill
    # The plots are drawn from the history, today included.
    assert second["plots"]["days"] == 2
    assert all(os.path.getsize(path) > 0 for path in second["plots"]["files"].values())


def test_an_unchanged_upload_does_not_drift(seeded):
    (_, _), (_, second) = seeded
    drift = second["drift"]
    assert drift["baseline"]["logical_date"] == str(D1.date()) and drift["success"] is True
    assert drift["tables"]["items"]["new_share"] == 0.0 and drift["tables"]["users"]["new_share"] == 0.0
    assert drift["tables"]["interactions"]["row_ratio"] == 1.0
    assert set(drift["divergence"]) == {"interaction_type", "popularity_decile"}
    assert all(kl < drift["thresholds"]["drift_max_kl"] for kl in drift["divergence"].values()), drift["divergence"]


def test_a_weaker_model_is_flagged_with_both_numbers_and_alerts_under_warn(weak):
    (dag_run, report), _, _ = weak
    assert dag_run.state == "success", report["failed_stage"]
    ndcg = report["trend"]["figures"]["ndcg_at_10"]
    assert ndcg["regression"] is True and ndcg["n_baseline"] == 2, ndcg
    assert ndcg["value"] < 0.8 * ndcg["baseline"]
    assert report["trend"]["window"]["days"] == [str(D1.date()), str(D2.date())]
    warning = alert(dag_run, "report.0.regression.json")
    assert warning["kind"] == "regression"
    assert f"ndcg_at_10 {ndcg['value']:g} vs baseline {ndcg['baseline']:g}" in warning["error"]


def test_under_regression_policy_fail_the_run_fails_naming_the_figure_and_replaces_the_days_row(weak):
    _, rows_after_warn, (dag_run, report) = weak
    assert dag_run.state == "failed"
    assert report["success"] is False and report["failed_stage"] == "trend"
    assert all(s["status"] == "success" for s in report["stages"])  # every stage passed: only the trend failed
    failure = alert(dag_run, "report.0.json")["error"]
    ndcg = report["trend"]["figures"]["ndcg_at_10"]
    assert f"ndcg_at_10 {ndcg['value']:g} vs baseline {ndcg['baseline']:g}" in failure
    assert f"median of 2 successful runs {D1.date()}..{D2.date()}" in failure
    rows = history_rows(D3)
    assert len(rows) == 1 and len(rows_after_warn) == 1
    assert rows_after_warn[0]["success"] is True and rows[0]["success"] is False and rows[0]["failed_stage"] == "trend"
    assert rows[0]["written_at"] > rows_after_warn[0]["written_at"]


def test_half_the_catalog_new_is_caught_as_drift(weak):
    dag_run, report = run_journey(logical_date=D4, **{**CONF, "n_items": 2 * SMALL["n_items"]})
    assert dag_run.state == "failed"
    assert report["failed_stage"] == "upload_to_minio"
    drift = report["drift"]
    # The previous upload is day 3's, whatever its verdict: what was uploaded is what the next upload meets.
    assert drift["baseline"]["logical_date"] == str(D3.date()) and drift["success"] is False
    assert drift["tables"]["items"]["new_share"] == 0.5 and drift["tables"]["items"]["row_ratio"] == 2.0
    failed = stage(report, "upload_to_minio")["validation"]["failed_expectations"]
    assert {(f["batch"], f["column"]) for f in failed} == {("drift", "new_share")}, failed
    assert history_rows(D4)[0]["failed_stage"] == "upload_to_minio"
