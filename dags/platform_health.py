"""platform_health: is every part of the platform up and keeping up? Every 15 minutes.

One task per component, so the failed task's name is the broken part, and its error says what was
expected and what was found:

- ``postgres``: SELECT 1 on the app database (connection ``postgres_app``);
- ``object_store``: all 5 buckets of include/config.py exist (``minio_default``);
- ``kafka``: the broker answers, all 12 topics exist with their partitions, and the ingestion
  group's lag (counted by reading, compared with the previous successful check) is not growing
  (``kafka_default``);
- ``recsys_api``: GET /health answers 200 "healthy" (``recsys_api``).

A failed check is rechecked once after a short pause (a blip is not an outage); when it fails again,
plugins/alerts.py writes the alert. The checks' logic is in plugins/ops/health.py.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from plugins.dag_defaults import default_args

DEFAULT_ARGS = default_args(
    retries=1,
    retry_delay=timedelta(seconds=10),
    max_retry_delay=timedelta(minutes=2),
    # A check that hangs is a failed check; it must also end well before the next run starts.
    execution_timeout=timedelta(minutes=5),
)

PARAMS = {
    "lag_tolerance": Param(
        5000,
        type="integer",
        minimum=0,
        description="Messages the ingestion lag may grow by between two checks (about one worker batch in flight).",
    ),
}


@task
def postgres() -> dict:
    from plugins.ops.health import check_postgres

    return check_postgres()


@task
def object_store() -> dict:
    from plugins.ops.health import check_object_store

    return check_object_store()


@task
def kafka() -> dict:
    from plugins.ops import previous_result
    from plugins.ops.health import check_kafka

    context = get_current_context()
    previous = previous_result(context["ti"], task_id="kafka")
    return check_kafka(previous=previous, lag_tolerance=int(context["params"]["lag_tolerance"]))


@task
def recsys_api() -> dict:
    from plugins.ops.health import check_recsys_api

    return check_recsys_api()


@dag(
    dag_id="platform_health",
    schedule=timedelta(minutes=15),
    # No start_date, so no logical date is an empty run marked success (see onboarding_journey).
    catchup=False,
    max_active_runs=1,
    # A stale health check is noise: a run that is still going when the next is due has failed anyway.
    dagrun_timeout=timedelta(minutes=14),
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ops", "health", "platform"],
    doc_md=__doc__,
)
def platform_health():
    postgres()
    object_store()
    kafka()
    recsys_api()


platform_health()
