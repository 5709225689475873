"""The only module in plugins/ that Airflow's plugin manager imports (see .airflowignore): the Journey UI.

- ``fastapi_apps``: the Journey app at ``/journey`` (plugins/ui/app.py), behind Airflow's login, and the
  journey's Prometheus metrics at ``/journey-metrics/metrics`` (plugins/ui/metrics.py), behind a scrape token;
- ``external_views``: "Validation report" on every DAG-run and task-instance page, which opens the run's report
  inside the Airflow UI, and "Journeys" in the navigation.

Hrefs have no leading slash: the UI resolves them against its own base URL, so they follow ``[api] base_url``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.journey.pages import METRICS_URL_PREFIX, URL_PREFIX
from plugins.journey.timetable import ValidatedDayTimetable


def _app():
    from plugins.ui.app import create_app

    return create_app()


def _metrics_app():
    from plugins.ui.metrics import create_app

    return create_app()


class JourneyUiPlugin(AirflowPlugin):
    name = "journey_ui"
    # The journey's schedule (dags/onboarding_journey.py): a custom timetable serializes only once registered.
    timetables = [ValidatedDayTimetable]
    fastapi_apps = [
        {"name": "journey", "app": _app(), "url_prefix": URL_PREFIX},
        {"name": "journey_metrics", "app": _metrics_app(), "url_prefix": METRICS_URL_PREFIX},
    ]
    external_views = [
        {
            "name": "Validation report",
            "href": f"{URL_PREFIX.lstrip('/')}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "validation-report",
        },
        {
            "name": "Validation report",
            "href": f"{URL_PREFIX.lstrip('/')}/runs/{{RUN_ID}}",
            "destination": "task_instance",
            "url_route": "validation-report-task",
        },
        {
            "name": "Journeys",
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "destination": "nav",
            "url_route": "journeys",
            "category": "browse",
        },
    ]
