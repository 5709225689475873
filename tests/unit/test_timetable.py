"""One run, one data interval: a manual run's is its logical date's day (what its report validates), scheduled
runs keep the cron's (the day that just ended). Its serialization is in tests/dags/test_dag_integrity.py."""

from __future__ import annotations

import pendulum

from plugins.journey.timetable import ValidatedDayTimetable

TIMETABLE = ValidatedDayTimetable("0 0 * * *", timezone="UTC")


def test_a_manual_run_validates_its_logical_day():
    for run_after in (pendulum.datetime(2026, 11, 20), pendulum.datetime(2026, 11, 20, 15, 3, tz="Europe/Berlin")):
        interval = TIMETABLE.infer_manual_data_interval(run_after=run_after)
        assert (interval.start, interval.end) == (pendulum.datetime(2026, 11, 20), pendulum.datetime(2026, 11, 21))


def test_scheduled_runs_keep_the_day_that_just_ended():
    from airflow.timetables.base import DataInterval, TimeRestriction

    info = TIMETABLE.next_dagrun_info(
        last_automated_data_interval=DataInterval(pendulum.datetime(2026, 11, 26), pendulum.datetime(2026, 11, 27)),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert (info.data_interval.start, info.data_interval.end) == (
        pendulum.datetime(2026, 11, 27),
        pendulum.datetime(2026, 11, 28),
    )
