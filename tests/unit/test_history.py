"""The history row a report leaves, the plots drawn from rows, and the hook's refusal of a malformed row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from plugins.journey import STAGES
from plugins.journey.history import row
from plugins.journey.plots import bands, render
from plugins.journey.run import JourneyRun

RUN = JourneyRun(
    dag_id="onboarding_journey",
    run_id="backfill__2026-11-05T00:00:00+00:00",
    tenant="acme",
    window_start=datetime(2026, 11, 5, tzinfo=UTC),
    window_end=datetime(2026, 11, 6, tzinfo=UTC),
    params={"n_users": 400, "n_items": 200, "n_interactions": 8000, "seed": 42},
)


def report(*, success: bool = True) -> dict:
    stages = [
        {
            "name": s,
            "status": "success",
            "duration_s": 1.5,
            "counts": {"rows": 3},
            "validation": {"evaluated": 4, "unsuccessful": 0},
        }
        for s in STAGES
    ]
    stages[-1]["drills"] = None
    return {
        "dag_id": RUN.dag_id,
        "run_id": RUN.run_id,
        "tenant": "acme",
        "run_key": RUN.run_key,
        "success": success,
        "failed_stage": None if success else "audit",
        "stages": stages,
        "model": {"version": "v1", "ndcg_at_10": 0.35, "coverage_at_10": 0.4},
        "recommendations": {"requests": 40, "errors": 2, "p95_ms": 30.0},
        "checksums": {"items": {"key": "acme/x/items.csv", "sha256": "a" * 64, "rows": 200}},
        "drift": {"profile": {"rows": {"items": 200}}, "baseline": None, "note": "first upload"},
        "trend": {"regressions": []},
    }


def test_row_flattens_stages_keeps_every_model_figure_and_derives_the_error_rate():
    found = row(report(), run=RUN, run_type="backfill")
    assert found["logical_date"] == date(2026, 11, 5) and found["run_type"] == "backfill"
    assert found["stages"]["feed_kafka"] == {
        "status": "success",
        "duration_s": 1.5,
        "counts": {"rows": 3},
        "evaluated": 4,
        "unsuccessful": 0,
    }
    assert found["model"]["coverage_at_10"] == 0.4  # a metric the report gains later flows into the history
    assert found["recommendations"]["error_rate"] == 0.05
    assert found["scale"] == {"n_users": 400, "n_items": 200, "n_interactions": 8000}
    assert found["upload"]["profile"] == {"rows": {"items": 200}} and found["upload"]["drift"]["note"] == "first upload"


def test_a_tenants_own_files_have_no_scale():
    byod = JourneyRun(**{**RUN.__dict__, "params": {"interactions_uri": "s3://inbox/log.csv"}})
    assert row(report(), run=byod, run_type="manual")["scale"] is None


def history(days: int) -> list[dict]:
    rows = []
    for i in range(days):
        found = row(report(success=i != 3), run=RUN, run_type="scheduled")
        found["logical_date"] = date(2026, 11, 1) + timedelta(days=i)
        found["model"] = {"ndcg_at_10": 0.30 + 0.01 * i}
        rows.append(found)
    return rows


def test_bands_take_only_successful_days_before_each_day():
    found = bands(history(6), "ndcg_at_10", window=2)
    assert found[0] is None
    # Day 5's window: days 4 and 2 (day 3 failed).
    assert found[5][1:] == pytest.approx((0.32, 0.33, 0.34))


def test_render_writes_three_pngs_and_an_index_naming_them(tmp_path):
    written = render(history(9), out_dir=str(tmp_path), tenant="acme <x>")
    for name in ("calendar", "ndcg_p95", "durations"):
        with open(written["files"][name], "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    index = (tmp_path / "index.html").read_text()
    assert "calendar.png" in index and "ndcg_p95.png" in index and "acme &lt;x&gt;" in index
    assert "failed at audit" in index and written["days"] == 9


def test_upsert_refuses_a_row_without_its_key():
    from plugins.hooks.history import HistoryHook

    with pytest.raises(ValueError, match="needs logical_date"):
        HistoryHook().upsert_run(
            row={
                "dag_id": "d",
                "tenant": "t",
                "run_id": "r",
                "run_type": "manual",
                "run_key": "k",
                "success": True,
                "stages": {},
            }
        )
