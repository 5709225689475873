"""The journey's schedule, with one data interval per run however it was started.

Daily at 00:00 UTC for the day that just ended: the run at 00:00 on the 28th has logical date and data interval
[27th, 28th), and a backfill's dates name the days validated. Airflow's CronDataIntervalTimetable gives a manual
run the interval *before* its logical date (a manual run for the 20th showed 19th-20th in the UI while its
report, which validates the logical date's day, said 20th-21st). Here a manual run's interval is its logical
date's day, as the report says, so one run has one interval everywhere.

A custom timetable must be registered by a plugin for DAGs to serialize: plugins/journey_ui_plugin.py does.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable


class ValidatedDayTimetable(CronDataIntervalTimetable):
    def infer_manual_data_interval(self, *, run_after):
        start = run_after.in_timezone("UTC").start_of("day") if hasattr(run_after, "in_timezone") else run_after
        return DataInterval(start=start, end=start + timedelta(days=1))
