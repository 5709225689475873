"""data_quality_check: the platform's tables, every tenant, proven daily with Great Expectations.

``measure`` (retried on errors) runs the checks in SQL through the ``postgres_app`` connection and
returns small per-tenant tables; ``validate`` (never retried: bad data stays bad) runs the suite
expectations/data_quality_check/<batch>.json over them:

- interactions reference items of the same tenant's catalog, no duplicate event_id, no future timestamps;
- API keys are stored as 64-hex digests and no column holds anything that looks like a raw key;
- the audit log refuses an UPDATE and a DELETE (tried in a rolled-back transaction) and has a
  model.deployed row for every deployment;
- row counts per tenant never drop and grow at most ``max_growth_factor`` since the previous run.

Every tenant is checked unless the ``tenants`` param names some. The logic is in
plugins/ops/data_quality.py; failures are alerted by plugins/alerts.py.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from plugins.dag_defaults import default_args

DEFAULT_ARGS = default_args(
    retries=2,
    retry_delay=timedelta(seconds=30),
    max_retry_delay=timedelta(minutes=10),
    execution_timeout=timedelta(hours=1),
)

PARAMS = {
    "max_clock_skew_s": Param(
        300, type="integer", minimum=0, maximum=86_400, description="How far past the DB clock an event time may be."
    ),
    "max_growth_factor": Param(
        5.0, type="number", minimum=1, description="Largest allowed day-over-day row count ratio per tenant and table."
    ),
    "tenants": Param(
        [],
        type="array",
        items={"type": "string", "minLength": 1},
        uniqueItems=True,
        description="Check only these tenant slugs (every tenant if empty).",
    ),
    "raw_key_pattern": Param(
        r"rk_[A-Za-z0-9_-]{20,}",
        type="string",
        minLength=4,
        description="POSIX regex of a raw API key (the platform issues rk_ + 43 url-safe characters).",
    ),
}


@task
def measure() -> dict:
    from plugins.ops import previous_result
    from plugins.ops.data_quality import measure as measure_tables

    context = get_current_context()
    params = context["params"]
    return measure_tables(
        max_clock_skew_s=int(params["max_clock_skew_s"]),
        raw_key_pattern=params["raw_key_pattern"],
        tenants=list(params["tenants"]),
        previous=previous_result(context["ti"], task_id="measure"),
    )


@task(retries=0)
def validate(measured: dict) -> dict:
    from plugins.ops import results_dir
    from plugins.ops.data_quality import validate as validate_tables
    from plugins.validation import raise_for_validation

    context = get_current_context()
    ti = context["ti"]
    result = validate_tables(
        measured,
        max_growth_factor=float(context["params"]["max_growth_factor"]),
        results_dir=results_dir(dag_id=ti.dag_id, run_id=ti.run_id),
        run_name=ti.run_id,
    )
    return raise_for_validation(result, ti=ti)


@dag(
    dag_id="data_quality_check",
    schedule="@daily",
    # No start_date, so no logical date is an empty run marked success (see onboarding_journey).
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ops", "data-quality", "great-expectations"],
    doc_md=__doc__,
)
def data_quality_check():
    validate(measure())


data_quality_check()
