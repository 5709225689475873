"""onboarding_journey: a tenant's onboarding, run for real and proven stage by stage with Great Expectations.

seed_data -> upload_to_minio -> feed_kafka -> train_model -> deploy_model -> query_recommendations -> audit,
each a task group of ``run`` (retried on transient errors, with exponential backoff) and ``validate`` (its GX
suite, never retried), then ``report``, which runs whatever happened upstream and writes report.json and the
run's Data Docs. The stages' code is in plugins/journey/<stage>.py, their suites in expectations/<stage>.json.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, TaskGroup, TriggerRule, dag, get_current_context, task

from plugins.alerts import on_failure
from plugins.journey import STAGES

DEFAULT_ARGS = {
    "owner": "recsys-platform",
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    # A multiplier in Airflow 3.3 (True means 1.0, no growth): 10 s, 20 s, 40 s.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
    "on_failure_callback": on_failure,
}

PARAMS = {
    "tenant": Param("canary", type="string", pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="Tenant slug."),
    "n_users": Param(10_000, type="integer", minimum=10, maximum=1_000_000),
    "n_items": Param(5_000, type="integer", minimum=10, maximum=200_000),
    "n_interactions": Param(100_000, type="integer", minimum=100, maximum=10_000_000),
    "seed": Param(42, type="integer", minimum=0),
    "ndcg_threshold": Param(0.30, type="number", minimum=0, maximum=1, description="Minimum NDCG@10 to pass."),
    "min_lift": Param(1.5, type="number", minimum=0, description="Minimum NDCG@10 ratio over popularity."),
    "sample_users": Param(20, type="integer", minimum=1, maximum=500, description="Users to query (x2: with and without a filter)."),
    "rec_count": Param(10, type="integer", minimum=1, maximum=100),
    "max_p95_ms": Param(200.0, type="number", minimum=1, description="Latency budget of the recommendation sample."),
    "max_error_rate": Param(0.0, type="number", minimum=0, maximum=1),
    "max_bad_share": Param(0.0, type="number", minimum=0, maximum=1, description="Share of input rows that may be quarantined."),
    "feed_timeout_s": Param(300, type="integer", minimum=1, maximum=7200, description="Wait for ingestion at most this long."),
    "interactions_uri": Param(None, type=["null", "string"], description="Bring your own data: a CSV path or s3:// URI."),
    "items_uri": Param(None, type=["null", "string"], description="The catalog CSV that goes with interactions_uri."),
}


@task(retries=3)
def run(stage: str) -> dict:
    from plugins.journey.tasks import run_stage

    return run_stage(stage, get_current_context())


@task(retries=0)
def validate(stage: str) -> dict:
    from plugins.journey.tasks import validate_stage

    return validate_stage(stage, get_current_context())


@task(trigger_rule=TriggerRule.ALL_DONE, retries=1)
def report() -> str:
    from plugins.journey.report import write_for_context

    return write_for_context(get_current_context())


@dag(
    dag_id="onboarding_journey",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["onboarding", "validation", "great-expectations"],
    doc_md=__doc__,
)
def onboarding_journey():
    previous = None
    for stage in STAGES:
        with TaskGroup(group_id=stage) as group:
            run.override(task_id="run")(stage) >> validate.override(task_id="validate")(stage)
        if previous is not None:
            previous >> group
        previous = group
    previous >> report()


onboarding_journey()
