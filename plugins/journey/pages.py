"""Where an operator finds a run's report: the Journey UI plugin's URLs (plugins/ui/), built from Airflow's
``[api] base_url`` so a task log, an alert and the demo print the same link the UI serves.

Kept free of FastAPI and Airflow imports: tasks, alerts and the demo import it.
"""

from __future__ import annotations

import os
from urllib.parse import quote

URL_PREFIX = "/journey"
# Where Airflow mounts the Prometheus metrics app (plugins/ui/metrics.py): a scrape target of its own, with a
# token instead of a login.
METRICS_URL_PREFIX = "/journey-metrics"
# Used when Airflow has no [api] base_url (AIRFLOW__API__BASE_URL): the address a default api-server listens on.
DEFAULT_BASE_URL = "http://localhost:8080"


def base_url() -> str:
    configured = os.environ.get("AIRFLOW__API__BASE_URL")
    if configured is None:
        try:
            from airflow.configuration import conf

            configured = conf.get("api", "base_url", fallback="")
        except Exception:  # Airflow not importable (a plain script): the default below is the best guess
            configured = ""
    return (configured or DEFAULT_BASE_URL).rstrip("/")


def run_path(run_id: str, tenant: str | None = None) -> str:
    """The path of a run's page (every tenant of the run) or of one tenant's report in it."""
    path = f"{URL_PREFIX}/runs/{quote(run_id, safe='')}"
    return f"{path}/{quote(tenant, safe='')}" if tenant else path


def report_url(run_id: str, tenant: str | None = None) -> str:
    return base_url() + run_path(run_id, tenant)
