"""tenant_model_training end to end with dag.test on a real stack: the first run trains, validates,
registers and deploys; a run whose model does not beat the deployed one by the margin keeps the deployed
version and says why; a rerun on the same data mints no new version; an empty window fails at once.

Each session onboards a fresh tenant (through the API, the object store and Kafka), so "the first time"
really is the tenant's first model.
"""

from __future__ import annotations

import uuid

import pytest

from tests.dags.dag_runs import alert, run_dag, task_states, xcom
from tests.dags.onboarding import onboard

pytestmark = pytest.mark.usefixtures("stack_env")


@pytest.fixture(scope="module")
def tenant():
    # The journey test's scale: big enough for the planted taste structure to clear NDCG@10 0.30.
    return onboard(f"ops-train-{uuid.uuid4().hex[:8]}", n_users=400, n_items=200, n_interactions=8000, seed=42)


def retrain(**conf):
    return run_dag("tenant_model_training", run_conf=conf)


@pytest.fixture(scope="module")
def first_run(tenant):
    return retrain(tenant_id=tenant["slug"])


def models(tenant) -> dict[str, dict]:
    from plugins.hooks.recsys_api import RecsysApiHook

    return {m["version"]: m for m in RecsysApiHook().list_models(tenant["tenant_id"])["models"]}


def serving(tenant) -> str:
    from plugins.hooks.recsys_api import RecsysApiHook

    return RecsysApiHook().deployment(tenant["tenant_id"])["version"]


def test_first_run_trains_registers_and_deploys(first_run, tenant):
    assert first_run.state == "success", task_states(first_run)
    trained = xcom(first_run, "train")
    assert trained["tenant_id"] == tenant["tenant_id"] and trained["tenant"] == tenant["slug"]
    assert trained["rows"] == 8000
    assert trained["version"].startswith("rt-")
    assert trained["artifact_uri"] == f"s3://recsys-models/{tenant['slug']}/{trained['version']}/"
    assert trained["metrics"]["ndcg_at_10"] >= 0.30

    validation = xcom(first_run, "validate", key="validation")
    assert validation["suite"] == "train_model" and validation["success"]

    decision = xcom(first_run, "deploy")
    assert decision["decision"] == "deployed"
    assert decision["previous_version"] is None
    assert decision["reason"].startswith("no version was deployed")
    assert serving(tenant) == trained["version"]
    assert models(tenant)[trained["version"]]["status"] == "deployed"


def test_a_model_short_of_the_margin_is_registered_but_not_deployed(first_run, tenant):
    deployed = xcom(first_run, "train")
    # Another seed is another config, hence another version; the margin makes it not good enough.
    dag_run = retrain(tenant_id=tenant["tenant_id"], seed=7, ndcg_margin=0.5)
    assert dag_run.state == "success", task_states(dag_run)
    candidate = xcom(dag_run, "train")
    assert candidate["version"] != deployed["version"]

    decision = xcom(dag_run, "deploy")
    assert decision["decision"] == "kept"
    assert decision["previous_version"] == decision["serving_version"] == deployed["version"]
    assert decision["previous_ndcg_at_10"] == pytest.approx(deployed["metrics"]["ndcg_at_10"])
    assert decision["reason"] == (
        f"{candidate['version']} NDCG@10 {candidate['metrics']['ndcg_at_10']:.4f} vs deployed {deployed['version']}"
        f" {deployed['metrics']['ndcg_at_10']:.4f} + margin 0.5: not good enough, keeping {deployed['version']}"
    )
    assert serving(tenant) == deployed["version"]
    registered = models(tenant)
    assert registered[candidate["version"]]["status"] == "registered"
    assert registered[deployed["version"]]["status"] == "deployed"


def test_rerun_on_the_same_data_mints_no_new_version(first_run, tenant):
    before = set(models(tenant))
    dag_run = retrain(tenant_id=tenant["slug"])
    assert dag_run.state == "success", task_states(dag_run)
    version = xcom(dag_run, "train")["version"]
    assert version == xcom(first_run, "train")["version"]
    assert set(models(tenant)) == before
    decision = xcom(dag_run, "deploy")
    assert decision["decision"] == "kept" and "already the deployed version" in decision["reason"]


def test_an_empty_window_fails_at_once_and_alerts(tenant):
    # The onboarded events are from 2026-11-03: none in the last day.
    dag_run = retrain(tenant_id=tenant["slug"], days=1)
    assert dag_run.state == "failed"
    assert task_states(dag_run)["train"] == "failed"
    raised = alert(dag_run, "train")
    assert raised["try_number"] == 1  # bad input is not retried
    assert raised["error"].startswith(f"tenant '{tenant['slug']}' has no landed interactions from ")


def _trigger_params(conf: dict):
    """What the trigger form (or the REST API) does with a conf: merge it into the DAG's params and validate."""
    import copy

    from airflow.sdk.definitions.param import ParamsDict

    from dags.tenant_model_training import PARAMS

    params = ParamsDict(copy.deepcopy(PARAMS))
    params.update(conf)
    return params.validate()


@pytest.mark.parametrize(
    "conf",
    [{}, {"tenant_id": ""}, {"tenant_id": "acme", "days": 0}, {"tenant_id": "acme", "ndcg_margin": 2}],
    ids=["no tenant", "empty tenant", "zero days", "margin above 1"],
)
def test_bad_conf_is_refused_before_anything_runs(conf):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        _trigger_params(conf)


def test_a_tenant_alone_is_enough():
    assert _trigger_params({"tenant_id": "acme"}) == {
        "tenant_id": "acme",
        "days": None,
        "ndcg_margin": 0.0,
        "ndcg_threshold": 0.30,
        "seed": 42,
        "train_time_budget_s": None,
        "min_lift": 1.5,
        "min_ratio_over_knn": 0.95,
        "min_coverage_ratio_over_knn": 0.25,
        "max_popularity_bias_ratio_over_knn": 3.0,
        "max_exposure_gini_over_knn": 0.25,
        "min_cold_start_lift": 0.5,
    }


def test_a_model_older_than_the_live_one_is_validated_as_a_candidate_and_the_live_one_stays(first_run, tenant):
    from plugins.hooks.recsys_api import RecsysApiHook

    api, trained = RecsysApiHook(), xcom(first_run, "train")
    # A live model of a later logical date (a journey for a later day, say): this retraining's snapshot is older.
    newer = f"{trained['version']}-later"
    api.register_model(
        tenant["tenant_id"],
        version=newer,
        metrics=trained["metrics"],
        artifact_uri=trained["artifact_uri"],
        logical_date="2099-01-01T00:00:00+00:00",
    )
    api.deploy(tenant["tenant_id"], newer)
    dag_run = retrain(tenant_id=tenant["slug"], seed=11, ndcg_margin=-1.0)  # better by NDCG, whatever it scores
    assert dag_run.state == "success", task_states(dag_run)
    candidate = xcom(dag_run, "train")
    decision = xcom(dag_run, "deploy")
    assert decision["decision"] == "candidate"
    assert decision["previous_version"] == decision["serving_version"] == newer
    assert decision["reason"].startswith(
        f"validated as candidate; live model {newer} left in place (its logical date 2099-01-01T00:00:00+00:00 is"
        f" newer than this model's {candidate['logical_date']}); by NDCG@10 alone: {candidate['version']} NDCG@10"
    )
    assert serving(tenant) == newer
    # Validated, then unloaded: nothing but the live model stays deployed.
    assert [(d["version"], d["role"]) for d in api.deployments(tenant["tenant_id"])] == [(newer, "live")]
    assert models(tenant)[candidate["version"]]["status"] == "registered"
