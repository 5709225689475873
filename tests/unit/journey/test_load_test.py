"""load_test: k6's summary export read into figures, the knee and RSS growth, and the suite on them."""

from __future__ import annotations

import pandas as pd
import pytest

from plugins.journey import k6, load_test
from plugins.validation import validate_stage

PARAMS = {
    "load_max_p95_ms": 100.0,
    "load_max_error_rate": 0.01,
    "load_min_rps": 100.0,
    "load_min_cache_hit_rate": 0.8,
    "soak_max_rss_growth": 2.0,
}


def exported(*, ok: int, limited: int = 0, hits: int = 0, misses: int = 0, rate: float = 250.0) -> dict:
    """A k6 --summary-export document, shaped as k6 1.1 writes it (the script's own counters included)."""
    trend = {"p(50)": 2.1, "p(90)": 9.5, "p(95)": 15.7, "p(99)": 49.3, "max": 79.5, "avg": 5.0, "min": 0.6, "med": 2.1}
    metrics = {
        "http_reqs": {"count": ok + limited, "rate": rate},
        "http_req_duration": trend,
        "http_req_duration{filtered:yes}": {**trend, "p(95)": 14.0},
        "http_req_duration{filtered:no}": {**trend, "p(95)": 16.0},
        "status_200": {"count": ok, "rate": 1.0},
        "cache_hits": {"count": hits, "rate": 1.0},
        "cache_misses": {"count": misses, "rate": 1.0},
        "vus_max": {"value": 50, "min": 50, "max": 50},
    }
    if limited:
        metrics["status_429"] = {"count": limited, "rate": 1.0}
    return {"metrics": metrics}


def test_the_summary_counts_errors_by_status_and_the_hit_rate_from_x_cache():
    summary = k6.summarize(exported(ok=318, limited=1312, hits=300, misses=18), seconds=45)
    assert summary["requests"] == 1630 and summary["errors"] == 1312
    assert summary["errors_by_status"] == {"429": 1312}
    assert summary["error_rate"] == pytest.approx(1312 / 1630, abs=1e-6)
    assert (
        summary["p95_ms"] == 15.7 and summary["filtered"]["p95_ms"] == 14.0 and summary["unfiltered"]["p95_ms"] == 16.0
    )
    assert summary["cache_hit_rate"] == pytest.approx(300 / 318, abs=1e-4)


def test_the_guide_s_profile_ramps_holds_and_ramps_down():
    profile = k6.Profile.ramping(durations_s=[30, 60, 30, 60, 30], plateaus=[20, 50])
    assert [s["target"] for s in profile.stages] == [20, 20, 50, 50, 0] and profile.seconds == 210
    with pytest.raises(ValueError, match="5 durations and 2 plateaus"):
        k6.Profile.ramping(durations_s=[30, 60], plateaus=[20, 50])


def _validate(tmp_path, summary: dict, mode: str = "load"):
    frames = load_test.frames({"mode": mode, "validated": summary})
    return validate_stage(
        "load_test", frames, parameters=load_test.parameters(PARAMS, mode_=mode), results_dir=tmp_path, run_name="t"
    )


def test_a_run_within_the_guide_s_budgets_passes(tmp_path):
    result = _validate(tmp_path, k6.summarize(exported(ok=5000, hits=4500, misses=500), seconds=30))
    assert result.success, result.failed_expectations


def test_the_gateway_plan_s_429s_fail_the_error_rate_expectation_naming_the_observed_rate(tmp_path):
    result = _validate(tmp_path, k6.summarize(exported(ok=318, limited=1312, hits=300, misses=18), seconds=45))
    assert not result.success
    assert "error_rate" in str(result.failed_expectations)
    assert "0.80" in str(result.failed_expectations)  # the observed rate, 1312/1630 = 0.8049


def test_a_soak_fails_on_rss_growth_beyond_the_budget_and_on_any_error(tmp_path):
    grown = {**k6.summarize(exported(ok=5000, hits=4500, misses=500, rate=40), seconds=600), "rss_growth": 2.4}
    result = _validate(tmp_path, grown, mode="soak")
    assert not result.success and "rss_growth" in str(result.failed_expectations)
    steady = {**grown, "rss_growth": 1.1}
    assert _validate(tmp_path, steady, mode="soak").success  # a soak need not reach the throughput target
    one_error = {
        **k6.summarize(exported(ok=4999, limited=1, hits=4500, misses=499, rate=40), seconds=600),
        "rss_growth": 1.0,
    }
    assert not _validate(tmp_path, one_error, mode="soak").success


def test_the_knee_is_the_last_step_within_both_budgets():
    steps = [
        {"vus": 25, "p95_ms": 8.0, "error_rate": 0.0, "rps": 190},
        {"vus": 50, "p95_ms": 30.0, "error_rate": 0.0, "rps": 370},
        {"vus": 75, "p95_ms": 140.0, "error_rate": 0.0, "rps": 410},
    ]
    assert load_test.knee(steps, max_p95_ms=100, max_error_rate=0.01)["vus"] == 50
    assert load_test.knee(steps[2:], max_p95_ms=100, max_error_rate=0.01) is None
    errors = [{**steps[0]}, {**steps[1], "error_rate": 0.02}]
    assert load_test.knee(errors, max_p95_ms=100, max_error_rate=0.01)["vus"] == 25


def test_rss_growth_is_measured_after_warm_up():
    assert load_test.rss_growth([100.0, 200.0, 210.0, 400.0]) == pytest.approx(2.0)
    assert load_test.rss_growth([100.0, 200.0]) is None


def test_the_load_draws_on_the_most_active_users():
    landed = pd.DataFrame({"user_id": ["a", "b", "b", "c", "c", "c", "d", "d"]})
    assert load_test.load_users(landed, size=2) == ["c", "b"]
    assert load_test.load_users(landed, size=3) == ["c", "b", "d"]  # b and d have 2 each: ties by id


def test_the_stage_is_off_unless_asked_for():
    assert load_test.mode({}) is None and load_test.mode({"load_test": False}) is None
    assert load_test.mode({"load_test": True}) == "load" and load_test.mode({"load_test": "soak"}) == "soak"


def test_a_stress_knee_is_held_to_latency_errors_and_throughput_but_not_the_hit_rate(tmp_path):
    cold = k6.summarize(exported(ok=5000, hits=2000, misses=3000), seconds=15)
    assert not _validate(tmp_path, cold, mode="load").success
    assert _validate(tmp_path, cold, mode="stress").success
