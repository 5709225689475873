"""onboarding_journey: a tenant's onboarding, run for real and proven stage by stage with Great Expectations.

seed_data -> upload_to_minio -> feed_kafka -> train_model -> deploy_model -> query_recommendations -> audit,
each a task group of ``run`` (retried on transient errors, with exponential backoff) and ``validate`` (its GX
suite, never retried), then ``cleanup`` (revokes the run's API keys, ends its candidate deployment, deletes its
isolation-probe tenant) and ``report`` (report.json and the run's Data Docs), which both run whatever happened
upstream. The stages' code is in ``plugins/journey/{stage}.py``, their suites in ``expectations/{stage}/<batch>.json``.

One run validates one day for one or more tenants: the stages and the report form a task group mapped over
``tenants`` (default: include.config.CANARY_TENANTS, the daily canaries; the ``tenant`` param, set from the UI
form, narrows a run to that one tenant). Why a mapped group rather than a separate daily DAG: the schedule,
backfills and manual triggers then all run the very same DAG, one run per logical date, and each tenant's
journey is its own chain of map indexes, so tenants run in parallel on any executor, fail independently
(one tenant's failure skips only its own stages) and each gets its own report.

Deploys respect time: a day older than the tenant's live model (or a live model with no logical date, which
did not come from a pipeline run) is validated as a candidate at 0% traffic, and the live model keeps serving
(plugins/journey/deploy_model.py). Backfill one day at a time all the same: ``airflow backfill create --dag-id
onboarding_journey --from-date D1 --to-date D2 --max-active-runs 1``; a backfill, unlike scheduled runs, ignores
the DAG's max_active_runs (its own default is 10), and days of one tenant share its catalog and keys.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TaskGroup, TriggerRule, dag, get_current_context, task, task_group

from include.config import CANARY_TENANTS
from include.recsys.contract.schema import INTERACTION_COLUMNS, INTERACTION_TYPES, ITEM_COLUMNS
from plugins.dag_defaults import default_args
from plugins.journey import ALL_STAGES, OPTIONAL_STAGES, TENANT_PATTERN
from plugins.journey.timetable import ValidatedDayTimetable
from plugins.journey.train_model import gate_params

# Transient errors are retried after 10 s, 20 s, 40 s.
DEFAULT_ARGS = default_args(retries=3, retry_delay=timedelta(seconds=10), max_retry_delay=timedelta(minutes=5))

PARAMS = {
    "tenants": Param(
        list(CANARY_TENANTS),
        type="array",
        items={"type": "string", "pattern": TENANT_PATTERN},
        minItems=1,
        uniqueItems=True,
        description="Tenant slugs, each validated in parallel; default: the daily canaries.",
    ),
    "tenant": Param(
        None,
        type=["null", "string"],
        pattern=TENANT_PATTERN,
        description="One tenant slug; when set, overrides tenants.",
    ),
    "tenant_name": Param(
        None,
        type=["null", "string"],
        maxLength=200,
        description="Display name of a tenant this run creates; default: its slug.",
    ),
    "n_users": Param(10_000, type="integer", minimum=10, maximum=1_000_000, description="Users of the generated data."),
    "n_items": Param(5_000, type="integer", minimum=10, maximum=200_000, description="Items of the generated catalog."),
    "n_interactions": Param(
        100_000, type="integer", minimum=100, maximum=10_000_000, description="Interactions of the generated log."
    ),
    "seed": Param(
        42, type="integer", minimum=0, description="With the tenant and the logical date, fixes the generated data."
    ),
    "ndcg_threshold": Param(
        None,
        type=["null", "number"],
        minimum=0,
        maximum=1,
        description="Minimum NDCG@10 to pass; empty: 0.30 (the platform's target) for generated data, none for a real sample.",
    ),
    **gate_params(),
    "sample_users": Param(
        20, type="integer", minimum=1, maximum=500, description="Users to query (x2: with and without a filter)."
    ),
    "agreement_users": Param(
        50,
        type="integer",
        minimum=1,
        maximum=1000,
        description="Users whose served top 10 deploy_model compares with the exact top 10 of the registered embeddings.",
    ),
    "min_serving_agreement": Param(
        0.99,
        type="number",
        minimum=0,
        maximum=1,
        description="Minimum mean overlap of the served and the exact top 10 (a wrong or stale index fails it).",
    ),
    "rec_count": Param(
        10, type="integer", minimum=1, maximum=100, description="Recommendations asked for per request."
    ),
    "max_p95_ms": Param(200.0, type="number", minimum=1, description="Latency budget of the recommendation sample."),
    "max_error_rate": Param(
        0.0, type="number", minimum=0, maximum=1, description="Share of sampled requests that may fail (0: none)."
    ),
    "max_bad_share": Param(
        0.0, type="number", minimum=0, maximum=1, description="Share of input rows that may be quarantined."
    ),
    "feed_timeout_s": Param(
        300, type="integer", minimum=1, maximum=7200, description="Wait for ingestion at most this long."
    ),
    "interactions_uri": Param(
        None,
        type=["null", "string"],
        minLength=1,
        maxLength=1024,
        description="Bring your own data: a .csv, .tsv, .csv.gz, .tsv.gz or .parquet file in the inbox, or s3://bucket/key.",
    ),
    "fault_drills": Param(
        False,
        type="boolean",
        description="Then break S3, the broker, the worker, the app DB and the API one at a time and prove nothing was lost (local stack only; one tenant).",
    ),
    "load_test": Param(
        False,
        type=["boolean", "string"],
        enum=[False, True, "load", "stress", "soak"],
        description="Then load the API with k6 as the integration guide does: true/load (its ramp profile), stress (step VUs up to the knee) or soak (constant load, RSS sampled).",
    ),
    "load_stages_s": Param(
        [30, 60, 30, 60, 30],
        type="array",
        items={"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        minItems=5,
        maxItems=5,
        description="Load profile durations (s): ramp to load_vus[0], hold, ramp to load_vus[1], hold, ramp down.",
    ),
    "load_vus": Param(
        [20, 50],
        type="array",
        items={"type": "integer", "minimum": 1, "maximum": 2000},
        minItems=2,
        maxItems=2,
        description="The load profile's two plateaus of virtual users (the guide: 20, then 50).",
    ),
    "load_think_s": Param(
        0.25,
        type="number",
        minimum=0,
        maximum=60,
        description="Each VU's pause between page views (the guide's script: 1 s, which caps 50 VUs at ~100 req/s).",
    ),
    "load_users": Param(
        1000,
        type="integer",
        minimum=1,
        maximum=1_000_000,
        description="The tenant's most active users the load draws from.",
    ),
    "load_max_p95_ms": Param(
        100.0, type="number", exclusiveMinimum=0, description="Load test: p95 budget (guide: 100 ms)."
    ),
    "load_max_error_rate": Param(
        0.01,
        type="number",
        minimum=0,
        maximum=1,
        description="Load test: share of failed requests allowed (guide: 1%).",
    ),
    "load_min_rps": Param(
        100.0, type="number", minimum=0, description="Load test: minimum throughput (guide: 100 req/s)."
    ),
    "load_min_cache_hit_rate": Param(
        0.8, type="number", minimum=0, maximum=1, description="Load test: minimum response-cache hit rate (guide: 80%)."
    ),
    "stress_step_vus": Param(25, type="integer", minimum=1, maximum=1000, description="Stress: VUs added per step."),
    "stress_max_vus": Param(400, type="integer", minimum=1, maximum=5000, description="Stress: the ceiling of VUs."),
    "stress_step_s": Param(15, type="number", minimum=1, maximum=600, description="Stress: seconds per step."),
    "soak_s": Param(
        600, type="number", minimum=5, maximum=86_400, description="Soak: seconds of constant load (default 10 min)."
    ),
    "soak_vus": Param(20, type="integer", minimum=1, maximum=2000, description="Soak: constant VUs."),
    "soak_max_rss_growth": Param(
        2.0, type="number", exclusiveMinimum=0, description="Soak: the API's RSS may grow at most this factor."
    ),
    "items_uri": Param(
        None,
        type=["null", "string"],
        minLength=1,
        maxLength=1024,
        description="The catalog file that goes with interactions_uri.",
    ),
    "columns": Param(
        {},
        type="object",
        properties={
            table: {
                "type": "object",
                "propertyNames": {"enum": list(names)},
                "additionalProperties": {"type": "string", "minLength": 1},
            }
            for table, names in (("interactions", INTERACTION_COLUMNS), ("items", ITEM_COLUMNS))
        },
        additionalProperties=False,
        description='Contract column -> the file\'s column, e.g. {"interactions": {"user_id": "userId"}, "items": {"category": "genre"}}.',
    ),
    "interaction_type_map": Param(
        None,
        type=["null", "object"],
        additionalProperties={"enum": list(INTERACTION_TYPES)},
        description='The file\'s interaction values (as strings) -> the contract\'s, e.g. {"5": "purchase", "1": "view"}.',
    ),
    "default_interaction_type": Param(
        "view",
        type=["null", "string"],
        enum=[None, *INTERACTION_TYPES],
        description="The interaction type of every event when the file has no interaction_type column.",
    ),
    "train_epochs": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=1000,
        description="LightGCN's epoch cap; empty: the default (include/recsys/ml/lightgcn.py), early stopping decides below it. Fewer trains a weaker model.",
    ),
    # Run history (plugins/journey/history.py): every figure against the median of the tenant's last successful days.
    "baseline_runs": Param(
        7,
        type="integer",
        minimum=1,
        maximum=90,
        description="Successful days the trailing baseline takes the median of.",
    ),
    "baseline_min_runs": Param(
        3, type="integer", minimum=1, maximum=90, description="Successful days needed before any comparison."
    ),
    "regression_threshold": Param(
        0.2,
        type="number",
        exclusiveMinimum=0,
        description="A figure this much worse than its baseline (0.2 = 20%) is a regression.",
    ),
    "regression_policy": Param(
        "warn",
        type="string",
        enum=["warn", "fail"],
        description="warn: a regression alerts; fail: it also fails the run.",
    ),
    # Upload drift against the tenant's previous upload (plugins/journey/drift.py), in upload_to_minio's suite.
    "drift_min_row_ratio": Param(
        0.5, type="number", minimum=0, description="Least rows per table, as a share of the previous upload's."
    ),
    "drift_max_row_ratio": Param(
        2.0, type="number", minimum=0, description="Most rows per table, as a multiple of the previous upload's."
    ),
    "drift_max_new_share": Param(
        0.2, type="number", minimum=0, maximum=1, description="Most users / items never seen in the previous upload."
    ),
    "drift_max_kl": Param(
        0.1,
        type="number",
        exclusiveMinimum=0,
        description="Largest KL divergence of the interaction-type mix and the item-popularity deciles from the previous upload's.",
    ),
    "timezone": Param(
        None,
        type=["null", "string"],
        minLength=1,
        maxLength=64,
        description="IANA zone of timestamps written without a UTC offset, e.g. Europe/Berlin.",
    ),
}


# Map indexes show as the tenant's name in the UI (not 0, 1, ...): each task puts its tenant in its context.
BY_TENANT = "{{ tenant }}"


def _context(tenant: str):
    context = get_current_context()
    context["tenant"] = tenant
    return context


@task(retries=1)
def tenants() -> list[str]:
    from airflow.sdk.exceptions import AirflowFailException

    from plugins.journey.tasks import UnknownConfKeys, check_conf

    context = get_current_context()
    try:
        # A typo (n_user) would otherwise run a full-scale journey with the default it meant to override.
        check_conf(context["dag_run"].conf, valid=PARAMS)
    except UnknownConfKeys as exc:
        raise AirflowFailException(str(exc)) from None
    params = context["params"]
    return [params["tenant"]] if params.get("tenant") else list(params["tenants"])


@task(retries=3, map_index_template=BY_TENANT)
def run(stage: str, tenant: str) -> dict:
    from plugins.journey.tasks import run_stage

    return run_stage(stage, _context(tenant), tenant=tenant)


# A failed expectation raises AirflowFailException, which Airflow never retries: the one retry is for the
# machine (a Celery worker lost mid-validation, a dropped connection), so a validation is never re-judged.
@task(retries=1, map_index_template=BY_TENANT)
def validate(stage: str, tenant: str) -> dict:
    from plugins.journey.tasks import validate_stage

    return validate_stage(stage, _context(tenant), tenant=tenant)


@task(trigger_rule=TriggerRule.ALL_DONE, retries=2, map_index_template=BY_TENANT)
def cleanup(tenant: str) -> dict:
    from plugins.journey.cleanup import run_for_context

    return run_for_context(_context(tenant), tenant=tenant)


@task(trigger_rule=TriggerRule.ALL_DONE, retries=1, map_index_template=BY_TENANT)
def report(tenant: str) -> str:
    from plugins.journey.report import write_for_context

    return write_for_context(_context(tenant), tenant=tenant)


# prefix_group_id=False keeps the task ids "<stage>.run", "<stage>.validate", "cleanup" and "report": the map
# index, not the task id, tells tenants apart.
@task_group(group_id="journey", prefix_group_id=False)
def journey(tenant: str) -> None:
    previous = None
    for stage in ALL_STAGES:
        with TaskGroup(group_id=stage) as group:
            # An optional stage runs after one that skipped itself (not asked for), never after a failure.
            rule = TriggerRule.NONE_FAILED if stage in OPTIONAL_STAGES else TriggerRule.ALL_SUCCESS
            stage_run = run.override(task_id="run", trigger_rule=rule)(stage, tenant)
            stage_run >> validate.override(task_id="validate")(stage, tenant)
        if previous is not None:
            previous >> group
        previous = group
    previous >> cleanup(tenant) >> report(tenant)


@dag(
    dag_id="onboarding_journey",
    # Daily at midnight UTC for the day that just ended: the run at 00:00 on the 28th has logical date (and data
    # interval start) the 27th, and a backfill's --from-date/--to-date name the days validated. Airflow 3's plain
    # "@daily" would give that run logical date the 28th, a day whose interactions lie in the future. The data
    # follows the logical date's day (JourneyRun), so manual runs, reruns and backfills of a date agree; the
    # timetable gives a manual run that day as its data interval too (Airflow's own would show the day before).
    schedule=ValidatedDayTimetable("0 0 * * *", timezone="UTC"),
    # No start_date: Airflow creates no task at all for a logical date before it and then calls the empty run a
    # success, so a backfill or `dags test` of an earlier day would "pass" having validated nothing. Without one,
    # every date runs; catchup=False keeps the scheduler to the latest interval.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["onboarding", "validation", "great-expectations"],
    doc_md=__doc__,
)
def onboarding_journey():
    journey.expand(tenant=tenants())


onboarding_journey()
