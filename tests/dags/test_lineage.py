"""OpenLineage events of a real journey run (dag.test on the stack, the stack's file transport): every stage's
run task names the datasets it read and wrote with their real namespaces, every validate task carries its GX
results as data-quality facets, and a failed expectation shows as an unsuccessful assertion on a FAIL event.

The run asks the load_test stage for an impossible throughput, so every core stage passes and the last one fails
its suite (the stage itself, k6 against the tenant's API, really runs).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from tests.dags.journeys import SMALL

pytestmark = pytest.mark.usefixtures("stack_env")

DAY = datetime(2026, 11, 14, tzinfo=UTC)
TENANT = "it-lineage"
# The model's gates are opened (its item-kNN ratio varies by tenant seed and is tested elsewhere): this run must
# reach load_test.
IMPOSSIBLE_RPS = {
    "min_ratio_over_knn": 0,
    "min_lift": 0,
    "load_test": True,
    "load_stages_s": [2, 3, 2, 3, 2],
    "load_max_p95_ms": 60_000,
    "load_min_rps": 10**9,
    "load_min_cache_hit_rate": 0,
}


def _events(stack_env, *, since: float, run_id: str) -> list[dict]:
    found = []
    for path in glob.glob(os.path.join(stack_env["RECSYS_LOCAL_DIR"], "lineage", "event-*.json")):
        if os.path.getmtime(path) < since:
            continue
        with open(path) as fh:
            text = fh.read()
        if run_id in text:
            found.append(json.loads(text))
    return found


def _by_job(events: list[dict]) -> dict[str, dict[str, dict]]:
    jobs: dict[str, dict[str, dict]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"].removeprefix("onboarding_journey."), {})[event["eventType"]] = event
    return jobs


# The provider decides once per process whether it is on (its conf is cached and its listener registered when
# plugins load), and the stack runs with lineage off, so the journey runs in a process of its own with it on.
_RUN = """
import json, sys
from datetime import datetime
from tests.dags.journeys import run_journey
day, conf = sys.argv[1], json.loads(sys.argv[2])
dag_run, report = run_journey(logical_date=datetime.fromisoformat(day), **conf)
print("RESULT " + json.dumps({"state": dag_run.state, "run_id": dag_run.run_id, "failed_stage": report["failed_stage"]}))
"""


@pytest.fixture(scope="module")
def lineage(stack_env):
    from include.stack.env import openlineage_env
    from include.stack.settings import StackSettings

    since = time.time() - 1
    env = {**os.environ, **openlineage_env(StackSettings.from_env(), mode="file")}
    conf = json.dumps({"tenant": TENANT, **SMALL, **IMPOSSIBLE_RPS})
    done = subprocess.run(
        [sys.executable, "-c", _RUN, DAY.isoformat(), conf], env=env, capture_output=True, text=True, timeout=900
    )
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert found, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(found[-1].removeprefix("RESULT "))
    assert result["state"] == "failed" and result["failed_stage"] == "load_test", result
    return _by_job(_events(stack_env, since=since, run_id=result["run_id"])), stack_env


def _names(datasets: list[dict]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_every_stage_task_starts_and_ends_with_an_event(lineage) -> None:
    jobs, _ = lineage
    for stage in ("seed_data", "upload_to_minio", "feed_kafka", "train_model", "deploy_model", "audit"):
        for task in ("run", "validate"):
            assert {"START", "COMPLETE"} <= set(jobs.get(f"{stage}.{task}", {})), (stage, task, sorted(jobs))
    assert {"START", "FAIL"} <= set(jobs["load_test.validate"]), jobs["load_test.validate"].keys()


def test_each_stage_names_its_datasets_with_real_namespaces(lineage) -> None:
    jobs, env = lineage
    kafka = json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]["bootstrap_servers"].split(",")[0]
    pg = json.loads(env["AIRFLOW_CONN_POSTGRES_APP"])
    postgres = f"postgres://{pg['host']}:{pg['port']}"

    seed = jobs["seed_data.run"]["COMPLETE"]
    assert {name.rsplit("/", 1)[-1] for _, name in _names(seed["outputs"])} >= {
        "users.csv",
        "items.csv",
        "interactions.csv",
    }
    uploaded = _names(jobs["upload_to_minio.run"]["COMPLETE"]["outputs"])
    assert {ns for ns, _ in uploaded} == {"s3://recsys-raw"} and len(uploaded) == 3
    assert all(name.startswith(f"{TENANT}/") for _, name in uploaded)
    fed = jobs["feed_kafka.run"]["COMPLETE"]
    assert _names(fed["inputs"]) <= uploaded and len(fed["inputs"]) == 1
    assert _names(fed["outputs"]) == {
        (f"kafka://{kafka}", "user_interactions"),
        (postgres, f"{pg['schema']}.public.interactions"),
    }
    trained = _names(jobs["train_model.run"]["COMPLETE"]["outputs"])
    assert any(ns == "s3://recsys-models" and name.startswith(f"{TENANT}/") for ns, name in trained), trained
    deployed = jobs["deploy_model.run"]["COMPLETE"]
    assert _names(deployed["inputs"]) <= trained and _names(deployed["outputs"]) == {
        (postgres, f"{pg['schema']}.public.deployments")
    }


def test_validations_carry_data_quality_facets_on_the_dataset_they_checked(lineage) -> None:
    jobs, _ = lineage
    fed = _names(jobs["feed_kafka.run"]["COMPLETE"]["outputs"])
    checked = jobs["feed_kafka.validate"]["COMPLETE"]["inputs"]
    assert checked and _names(checked) <= fed
    for dataset in checked:
        assertions = dataset["facets"]["dataQualityAssertions"]["assertions"]
        assert assertions and all(a["success"] for a in assertions)
    seed = jobs["seed_data.validate"]["COMPLETE"]["inputs"]
    items = next(d for d in seed if d["name"].endswith("/items.csv"))
    assert items["facets"]["dataQualityMetrics"]["rowCount"] == SMALL["n_items"]
    assert items["facets"]["dataQualityMetrics"]["columnMetrics"]["item_id"]["nullCount"] == 0


def test_the_failed_expectation_is_an_unsuccessful_assertion_on_the_fail_event(lineage) -> None:
    jobs, _ = lineage
    (checked,) = jobs["load_test.validate"]["FAIL"]["inputs"]
    assertions = checked["facets"]["dataQualityAssertions"]["assertions"]
    failed = [a for a in assertions if not a["success"]]
    assert [(a["assertion"], a["column"]) for a in failed] == [("expect_column_min_to_be_between", "rps")], failed
    assert float(failed[0]["actual"]) < 10**9
    assert any(a["success"] and a.get("column") == "error_rate" for a in assertions)
