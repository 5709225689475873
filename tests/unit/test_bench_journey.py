"""The bench's guard names the stage a stopped journey was in, from `airflow dags test`'s own log."""

from __future__ import annotations

from bench.journey import running_stage

LINE = (
    "2026-12-02T19:55:43.357482Z [info     ] [DAG TEST] starting task_id={} map_index=-1 [airflow.sdk] loc=dag.py:1501"
)


def test_the_running_stage_is_the_task_started_last(tmp_path):
    log = tmp_path / "journey.log"
    log.write_text("\n".join([LINE.format("tenants"), "noise", LINE.format("feed_kafka"), "landed 10 of 20 rows"]))
    assert running_stage(str(log)) == "feed_kafka"


def test_before_any_task_the_stage_says_so(tmp_path):
    log = tmp_path / "journey.log"
    log.write_text("creating dag run\n")
    assert running_stage(str(log)) == "(before the first task)"


def test_a_journey_failed_before_training_keeps_its_stage_figures(monkeypatch, tmp_path):
    # 2026-12-08: a 100x feed failed (the broker's store was full) and the bench crashed on the missing NDCG.
    import bench.__main__ as bench_main
    from bench.journey import JourneyRun

    report = {
        "success": False,
        "failed_stage": "feed_kafka",
        "stages": [
            {"name": "seed_data", "duration_s": 134.2, "validation": {"duration_s": 20.0}},
            {"name": "feed_kafka", "duration_s": None, "validation": None},
        ],
        "model": {"ndcg_at_10": None, "popularity_ndcg_at_10": None},
        "recommendations": {},
    }
    run = JourneyRun(tenant="t", returncode=1, wall_s=1024.0, peak_rss_bytes=2**30, peak_total_pss_bytes=2**31)
    run.report = report
    monkeypatch.setattr(bench_main.journey, "run_journey", lambda **_: run)
    monkeypatch.setattr(bench_main.journey, "dags_parse_seconds", lambda: 0.1)
    figures, details = bench_main.run_journeys(scale="100x", reps=1, stamp="s", work_dir=str(tmp_path))
    names = [f.name for f in figures]
    assert "stage seed_data (100x)" in names and "journey wall (100x)" in names
    assert not any("NDCG" in name for name in names)
    assert details["failures"] and "failed at feed_kafka" in details["failures"][0]
