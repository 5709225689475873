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
