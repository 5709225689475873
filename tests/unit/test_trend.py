"""The trailing baseline: median of the last successful days, each figure in its own direction, a noise floor,
no comparison before min_runs, and a regression named with both numbers and the window."""

from __future__ import annotations

import pytest

from plugins.journey import STAGES
from plugins.journey.trend import compare, describe, figures, trend_lines


def day(date: str, *, ndcg: float = 0.35, p95: float = 40.0, feed: float = 10.0, errors: int = 0) -> dict:
    return {
        "logical_date": date,
        "model": {"ndcg_at_10": ndcg, "recall_at_10": 0.2, "version": "v1", "gates": {"min_lift": 1.5}},
        "recommendations": {
            "p50_ms": 10.0,
            "p95_ms": p95,
            "p99_ms": 60.0,
            "requests": 100,
            "errors": errors,
            "error_rate": errors / 100,
        },
        "stages": {stage: {"duration_s": feed if stage == "feed_kafka" else 2.0} for stage in STAGES},
    }


BASELINE = [day("2026-11-07", ndcg=0.36), day("2026-11-06", ndcg=0.34), day("2026-11-05", ndcg=0.35)]


def test_figures_read_model_serving_and_stage_times_and_the_total_only_when_every_stage_ran():
    found = figures(day("2026-11-08"))
    assert found["ndcg_at_10"] == 0.35 and found["p95_ms"] == 40.0 and found["feed_kafka_s"] == 10.0
    assert found["total_s"] == 10.0 + 2.0 * (len(STAGES) - 1)
    partial = day("2026-11-08")
    partial["stages"]["audit"]["duration_s"] = None
    assert "total_s" not in figures(partial) and "audit_s" not in figures(partial)


def test_a_drop_of_more_than_the_threshold_is_a_regression_with_the_median_as_baseline():
    trend = compare(figures(day("2026-11-08", ndcg=0.25)), BASELINE, threshold=0.2, min_runs=3, window=7)
    ndcg = trend["figures"]["ndcg_at_10"]
    assert ndcg["baseline"] == 0.35 and ndcg["n_baseline"] == 3
    assert ndcg["relative_change"] == pytest.approx(-0.2857, abs=1e-4)
    assert ndcg["regression"] is True
    assert trend["regressions"] == ["ndcg_at_10"]
    assert trend["window"]["days"] == ["2026-11-05", "2026-11-06", "2026-11-07"]


def test_direction_matters_higher_latency_regresses_higher_ndcg_does_not():
    trend = compare(figures(day("2026-11-08", ndcg=0.50, p95=90.0)), BASELINE, threshold=0.2, min_runs=3, window=7)
    assert trend["figures"]["ndcg_at_10"]["regression"] is False
    assert trend["figures"]["p95_ms"]["regression"] is True
    assert trend["regressions"] == ["p95_ms"]


def test_within_threshold_or_below_the_noise_floor_is_not_a_regression():
    # +15% feed time: inside 20%. A 2 s stage at 2.9 s is +45% but under the 1 s noise floor.
    today = day("2026-11-08", feed=11.5)
    today["stages"]["audit"]["duration_s"] = 2.9
    trend = compare(figures(today), BASELINE, threshold=0.2, min_runs=3, window=7)
    assert trend["regressions"] == []
    assert trend["figures"]["audit_s"]["relative_change"] == pytest.approx(0.45)


def test_a_zero_baseline_regresses_on_the_absolute_change():
    trend = compare(figures(day("2026-11-08", errors=5)), BASELINE, threshold=0.2, min_runs=3, window=7)
    assert trend["figures"]["error_rate"]["relative_change"] is None
    assert trend["figures"]["error_rate"]["regression"] is True


def test_fewer_than_min_runs_compares_nothing_and_says_so():
    trend = compare(figures(day("2026-11-08", ndcg=0.1)), BASELINE[:2], threshold=0.2, min_runs=3, window=7)
    assert trend["regressions"] == []
    assert trend["figures"]["ndcg_at_10"]["baseline"] is None and trend["figures"]["ndcg_at_10"]["n_baseline"] == 2
    assert "2 successful run(s)" in trend["note"] and "3 needed" in trend["note"]
    assert trend_lines(trend) == []


def test_a_regression_is_described_with_both_numbers_and_the_window():
    trend = compare(figures(day("2026-11-08", ndcg=0.25)), BASELINE, threshold=0.2, min_runs=3, window=7)
    text = describe("ndcg_at_10", trend["figures"]["ndcg_at_10"], trend["window"])
    assert text.startswith("ndcg_at_10 0.25 vs baseline 0.35 (-28.6%")
    assert "median of 3 successful runs 2026-11-05..2026-11-07" in text and "threshold 20%" in text
    assert any("REGRESSION" in line and line.startswith("ndcg_at_10") for line in trend_lines(trend))
