"""weekly_fault_drills: once a week, the canary's onboarding journey with its load test and fault drills on.

The load test runs the integration guide's k6 profile against the canary (plugins/journey/load_test.py).
The daily run validates the journey with the platform healthy; this one also breaks S3, the broker, the
ingestion worker, the app database and the API, one at a time, and proves nothing was lost (the
``resilience`` stage of onboarding_journey, plugins/journey/resilience.py). It triggers a run of
onboarding_journey rather than copying it, so the two can never drift apart, and waits for its outcome so a
failed drill fails this DAG too. Drills break shared components: one tenant, and onboarding_journey's
max_active_runs=1 keeps them from overlapping a daily run.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag

from include.config import CANARY_TENANTS
from plugins.dag_defaults import default_args


@dag(
    dag_id="weekly_fault_drills",
    schedule="0 3 * * 0",  # Sundays 03:00 UTC, clear of the daily midnight run
    # No start_date, so no logical date is an empty run marked success (see onboarding_journey).
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, retry_delay=timedelta(minutes=5), max_retry_delay=timedelta(minutes=20)),
    tags=["onboarding", "resilience", "validation"],
    doc_md=__doc__,
)
def weekly_fault_drills():
    TriggerDagRunOperator(
        task_id="journey_with_fault_drills",
        trigger_dag_id="onboarding_journey",
        trigger_run_id="fault_drills__{{ ts_nodash }}",
        conf={"tenant": CANARY_TENANTS[0], "fault_drills": True, "load_test": True},
        wait_for_completion=True,
        poke_interval=30,
        allowed_states=["success"],
        failed_states=["failed"],
        # A retry of this task clears and re-runs the journey run it already triggered, instead of failing
        # on the existing run id.
        reset_dag_run=True,
    )


weekly_fault_drills()
