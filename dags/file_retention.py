"""file_retention: every day, the pipeline's own output files older than ``retention_days`` go, locally and in
the buckets: run reports and Data Docs, work directories, quarantine objects, alerts.

One task per kind (``reports``, ``work_dirs``, ``quarantine``, ``alerts``), so a failure names the store;
each returns what it removed and kept. The cutoff is the run's logical date minus ``retention_days``. The
platform's data (raw uploads, models, the app database and its audit log) is never touched. The logic, and
why deletion rather than bucket lifecycle rules, is in plugins/ops/retention.py.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.config import RETENTION_DAYS
from plugins.dag_defaults import default_args
from plugins.ops.retention import PRUNERS

DEFAULT_ARGS = default_args(
    retries=2,
    retry_delay=timedelta(minutes=1),
    max_retry_delay=timedelta(minutes=10),
    execution_timeout=timedelta(hours=1),
)

PARAMS = {
    "retention_days": Param(
        RETENTION_DAYS, type="integer", minimum=1, maximum=3650, description="Keep files written in the last N days."
    ),
    "tenants": Param(
        [],
        type="array",
        items={"type": "string", "minLength": 1},
        uniqueItems=True,
        description="Only these tenants' reports, work directories and quarantine objects (everything if empty).",
    ),
}


@task
def prune(kind: str) -> dict:
    context = get_current_context()
    params = context["params"]
    # The run's logical date (a daily run's is the midnight it runs at); a trigger without one: its run_after.
    now = context.get("logical_date") or context["dag_run"].run_after
    before = now - timedelta(days=int(params["retention_days"]))
    result = PRUNERS[kind](before=before, tenants=list(params["tenants"]) or None)
    print(f"{kind}: files last written before {before.isoformat()}: {result}")
    return {"before": before.isoformat(), **result}


@dag(
    dag_id="file_retention",
    schedule="@daily",
    # No start_date, so no logical date is an empty run marked success (see onboarding_journey).
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ops", "retention"],
    doc_md=__doc__,
)
def file_retention():
    # One task per kind of file, so a failed task names the store.
    for kind in PRUNERS:
        prune.override(task_id=kind)(kind)


file_retention()
