"""tenant_model_training: retrain one tenant's model on demand, as the platform's ops do.

Trigger with conf ``{"tenant_id": "<tenant id or slug>"}`` (optionally ``days``, ``ndcg_margin``, ...):

``train`` -> ``validate`` -> ``register`` -> ``deploy``

- ``train``: LightGCN on the interactions the platform landed for the tenant up to the run's start (all
  of them, or the last ``days`` days); artifacts go to the models bucket under a version derived from
  the tenant, the data and the config, so a retry never mints a new version;
- ``validate``: the journey's train_model GX suite (NDCG@10 threshold, lift over popularity, finite
  embeddings, every catalog item embedded), never retried;
- ``register``: the version and its metrics with the platform (an upsert);
- ``deploy``: only if its NDCG@10 >= the deployed version's + ``ndcg_margin``; otherwise the deployed
  version stays, and the task's log and XCom (``decision``, ``reason``) say why. Deploys respect time, as
  the journey's do: a model whose logical date (its snapshot's ``run_after``) is older than the live model's,
  or a live model with no logical date, leaves the live model serving; the new version is validated as a
  candidate at 0% traffic instead (``decision`` "candidate").

The logic is in plugins/ops/retraining.py; failures are alerted by plugins/alerts.py.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from plugins.dag_defaults import default_args
from plugins.journey.train_model import gate_params

DEFAULT_ARGS = default_args(
    retries=2,
    retry_delay=timedelta(seconds=30),
    max_retry_delay=timedelta(minutes=10),
    execution_timeout=timedelta(hours=2),
)

PARAMS = {
    "tenant_id": Param(
        type="string", minLength=1, maxLength=100, description="The tenant to retrain: its id or its slug."
    ),
    "days": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=3650,
        description="Train on the last N days only (all if empty).",
    ),
    "ndcg_margin": Param(
        0.0,
        type="number",
        minimum=-1,
        maximum=1,
        description="Deploy only if NDCG@10 >= the deployed version's + this (0 = at least equal).",
    ),
    "ndcg_threshold": Param(
        0.30, type="number", minimum=0, maximum=1, description="Minimum NDCG@10 to pass validation."
    ),
    **gate_params(),
    "seed": Param(42, type="integer", minimum=0, description="Training seed (part of the version's fingerprint)."),
}


@task
def train() -> dict:
    from plugins.ops.retraining import train as train_model

    return train_model(get_current_context())


@task(retries=0)
def validate(trained: dict) -> dict:
    from plugins.ops.retraining import validate as validate_model
    from plugins.validation import raise_for_validation

    context = get_current_context()
    return raise_for_validation(validate_model(context, trained), ti=context["ti"])


@task
def register(trained: dict) -> dict:
    from plugins.ops.retraining import register as register_model

    return register_model(get_current_context(), trained)


@task
def deploy(trained: dict) -> dict:
    from plugins.ops.retraining import deploy_if_better

    return deploy_if_better(get_current_context(), trained)


@dag(
    dag_id="tenant_model_training",
    schedule=None,
    # No start_date, so no logical date is an empty run marked success (see onboarding_journey).
    catchup=False,
    # Training is CPU-bound, and the deploy decision compares with the live deployment: one run at a time
    # keeps two runs for one tenant from both deciding against the same old version.
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ops", "training", "great-expectations"],
    doc_md=__doc__,
)
def tenant_model_training():
    trained = train()
    validate(trained) >> register(trained) >> deploy(trained)


tenant_model_training()
