"""The onboarding journey under CeleryExecutor: three tenants' map indexes spread over the stack's two Celery
workers, and one worker SIGKILLed mid-task loses nothing and duplicates nothing.

The fixture runs Airflow's api-server, scheduler and dag-processor with the celery executor and the two
workers of `make airflow EXECUTOR=celery` (include/stack/components.py), each reporting its own name as its
task instances' hostname. Airflow services already running are stopped first and restarted as they were
afterwards (their executor recorded back), so the rest of the suite keeps LocalExecutor. The scheduler's own
schedule is off: unpausing the DAG must not also start the daily canary run at the platform's scale.

One run serves every assertion (one journey through a scheduler takes minutes on these machines): once both
workers have run tasks, the worker running a stage's ``run`` task (retried on failure) is killed with its
whole process group, and the run must still end successfully. A worker runs two tasks at once, and a
validate task has no retries by design (README, CeleryExecutor): the kill waits for a moment when every task
the worker holds has a try left, since a killed validate fails its tenant's run as documented, which is not
what this module proves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dags.airflow_api import AirflowApi, quoted, wait_for
from tests.dags.journeys import SMALL, tenant_id_of

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack_env"), pytest.mark.timeout(900)]

DAG_ID = "onboarding_journey"
SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor")
WORKERS = {"worker1": "airflow-celery-worker1", "worker2": "airflow-celery-worker2"}
# Fresh tenants each session, so every row the checks count was written by this one run.
SUFFIX = datetime.now(UTC).strftime("%m%d%H%M%S")
TENANTS = [f"it-celery-{name}-{SUFFIX}" for name in ("a", "b", "c")]
LOGICAL_DATE = "2026-11-10T00:00:00Z"
# Each wait of a small journey through a scheduler: the whole run took 2.5 min on a quiet machine and 6 min at
# load ~5 (measured), the scheduler's 60 s heartbeat timeout before the killed worker's task is retried included.
RUN_TIMEOUT_S = 600
QUEUED_TIMEOUT_S = 90
# Celery control replies come from a worker's main process, not its busy pool: a few seconds even under load.
CONTROL_S = 5.0


class Workers:
    """The stack's two Celery workers: their process groups, and what each holds, through Celery's control."""

    def __init__(self, broker_url: str, pids: dict[str, int]) -> None:
        from airflow.configuration import conf
        from celery import Celery

        self.app = Celery(broker=broker_url)
        self.pids = pids
        self.queue = conf.get("operators", "default_queue")

    def pause(self, name: str) -> None:
        """The worker takes no more tasks from the queue; what it already received it still runs."""
        from include.stack.components import celery_node

        self.app.control.cancel_consumer(self.queue, destination=[celery_node(name)], reply=True, timeout=CONTROL_S)

    def resume(self, name: str) -> None:
        from include.stack.components import celery_node

        self.app.control.add_consumer(self.queue, destination=[celery_node(name)], reply=True, timeout=CONTROL_S)

    def held(self, name: str) -> set[str] | None:
        """The task instance ids the worker runs or has reserved; None if it did not answer."""
        from include.stack.components import celery_node

        node = celery_node(name)
        inspect = self.app.control.inspect(destination=[node], timeout=CONTROL_S)
        active, reserved = inspect.active(), inspect.reserved()
        if not active or not reserved or node not in active or node not in reserved:
            return None
        # Each Celery task is one Airflow workload: its only argument, the workload as JSON, names the try.
        return {json.loads(task["args"][0])["ti"]["id"] for task in [*active[node], *reserved[node]]}

    def kill(self, name: str) -> None:
        # The worker, its pool and the task processes it forked: a machine that dies, not a warm shutdown.
        os.killpg(self.pids[name], signal.SIGKILL)

    def close(self) -> None:
        self.app.close()


def task_instances(api: AirflowApi, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        page = api.call(
            "GET", f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances", params={"limit": 100, "offset": len(found)}
        )
        found.extend(page["task_instances"])
        if not page["task_instances"] or len(found) >= page["total_entries"]:
            return found


@pytest.fixture(scope="module")
def celery_airflow():
    """The stack's Airflow under CeleryExecutor with both workers, for this module only."""
    from include.stack import credentials, lifecycle, process
    from include.stack.env import celery_broker_url
    from include.stack.settings import StackSettings

    settings = StackSettings.from_env()
    names = (*SERVICES, "airflow-triggerer", *WORKERS.values())
    before = [s.name for s in lifecycle.status(settings) if s.name in names and s.pid is not None]
    celery = dataclasses.replace(settings, executor="celery")
    broker = celery_broker_url(settings, credentials.load_or_create(settings.secrets_file))
    lifecycle.down(settings, only=before)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")
        # A task the killed worker had received but not started stays queued until task_queued_timeout (600 s
        # by default, checked every 120 s), which was most of this module's time. Here a queued task waits at
        # most one task's run for a slot (parallelism 4 = the two workers' 4 slots), so 90 s still never
        # requeues a healthy one; it is also the queued workload token's lifetime, hence not lower.
        patch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT", str(QUEUED_TIMEOUT_S))
        patch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL", "10")
        lifecycle.up(celery, only=[*SERVICES, *WORKERS.values()])
    try:
        pids = {name: process.running_pid(settings.pid_file(component)) for name, component in WORKERS.items()}
        with contextlib.closing(Workers(broker, pids)) as workers:
            yield workers
    finally:
        lifecycle.down(celery, only=[*SERVICES, *WORKERS.values()])
        # The recorded executor and the env file back to what they were, then what ran before runs again.
        lifecycle.up(settings, only=before)


@pytest.fixture(scope="module")
def killed_run(celery_airflow: Workers) -> dict[str, Any]:
    """One run of three tenants; the worker of a running stage task is SIGKILLed once both workers worked."""
    api = AirflowApi()
    wait_for(lambda: api.dag_parsed(DAG_ID), "the DAG to be parsed", 180)
    api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    try:
        # The module run again on the same stack: a DAG has one run per logical date.
        window = {"logical_date_gte": LOGICAL_DATE, "logical_date_lte": LOGICAL_DATE}
        for earlier in api.call("GET", f"/dags/{DAG_ID}/dagRuns", params=window)["dag_runs"]:
            api.call("DELETE", f"/dags/{DAG_ID}/dagRuns/{quoted(earlier['dag_run_id'])}")
        conf = {"tenants": TENANTS, **SMALL}
        run = api.call("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": LOGICAL_DATE, "conf": conf})
        run_id = run["dag_run_id"]

        def victim() -> dict[str, Any] | None:
            tis = [ti for ti in task_instances(api, run_id) if ti["map_index"] >= 0]
            # Not before each worker has finished a map index's task: those stay its in the end state.
            if not set(WORKERS) <= {ti["hostname"] for ti in tis if ti["state"] == "success"}:
                return None
            running = [
                ti
                for ti in tis
                if ti["state"] == "running" and ti["task_id"].endswith(".run") and ti["hostname"] in WORKERS
            ]
            if not running:
                return None
            name = running[0]["hostname"]
            # Paused, the worker holds a fixed set of tasks until the kill, so the check below cannot go stale.
            celery_airflow.pause(name)
            held = celery_airflow.held(name)
            now = {ti["id"]: ti for ti in task_instances(api, run_id)}
            # A try that ended meanwhile and was retried has a new id.
            target = now.get(running[0]["id"])
            if (
                target is not None
                and held is not None
                and target["id"] in held
                and target["state"] == "running"
                and all(i in now and now[i]["try_number"] <= now[i]["max_tries"] for i in held)
            ):
                return target
            celery_airflow.resume(name)
            return None

        target = wait_for(
            victim,
            "a stage task running, every task its worker holds with a try left, once both workers finished "
            "map indexes' tasks",
            RUN_TIMEOUT_S,
            every_s=1.0,
        )
        killed = target["hostname"]
        celery_airflow.kill(killed)
        done = wait_for(
            lambda: (
                (r := api.call("GET", f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}"))["state"] in ("success", "failed")
                and r
            ),
            "the run to finish",
            RUN_TIMEOUT_S,
            every_s=5.0,
        )
        tries = api.call(
            "GET",
            f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{target['task_id']}/{target['map_index']}/tries",
        )["task_instances"]
        return {"run": done, "tis": task_instances(api, run_id), "target": target, "killed": killed, "tries": tries}
    finally:
        api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})


def feed_counts(run_id: str, slug: str) -> dict[str, Any]:
    from include.config import reports_root, safe_name

    with open(os.path.join(reports_root(), safe_name(run_id), slug, "report.json")) as fh:
        report = json.load(fh)
    (stage,) = [s for s in report["stages"] if s["name"] == "feed_kafka"]
    return stage["counts"]


def test_three_tenants_map_indexes_ran_on_both_workers_and_all_passed(killed_run):
    tis = killed_run["tis"]
    from plugins.journey import OPTIONAL_STAGES

    # The optional stages (load_test, resilience) are skipped unless the run's params ask for them.
    optional = {f"{stage}.{step}" for stage in OPTIONAL_STAGES for step in ("run", "validate")}
    not_passed = {
        f"{ti['task_id']}[{ti['map_index']}]": ti["state"]
        for ti in tis
        if ti["state"] != "success" and not (ti["state"] == "skipped" and ti["task_id"] in optional)
    }
    assert killed_run["run"]["state"] == "success" and not_passed == {}, not_passed
    mapped = [ti for ti in tis if ti["map_index"] >= 0 and ti["state"] == "success"]
    assert len({ti["map_index"] for ti in mapped}) == len(TENANTS)
    assert {ti["hostname"] for ti in mapped} == set(WORKERS)
    # Each tenant's chain of tasks, not only the run as a whole, was shared out.
    per_worker = {name: {ti["map_index"] for ti in mapped if ti["hostname"] == name} for name in WORKERS}
    assert all(per_worker.values()), per_worker


def test_the_killed_workers_task_was_retried_on_the_other_worker(killed_run):
    target, killed = killed_run["target"], killed_run["killed"]
    (final,) = [
        ti for ti in killed_run["tis"] if (ti["task_id"], ti["map_index"]) == (target["task_id"], target["map_index"])
    ]
    (survivor,) = set(WORKERS) - {killed}
    assert final["state"] == "success"
    assert final["try_number"] > target["try_number"]
    assert final["hostname"] == survivor
    # The try that the kill interrupted is on record as the killed worker's, and failed.
    (interrupted,) = [t for t in killed_run["tries"] if t["try_number"] == target["try_number"]]
    assert (interrupted["hostname"], interrupted["state"]) == (killed, "failed")


@pytest.mark.parametrize("slug", TENANTS)
def test_nothing_the_killed_attempt_did_is_duplicated(killed_run, slug):
    from plugins.hooks.app_db import AppDbHook

    db, tenant_id = AppDbHook(), tenant_id_of(slug)

    def one(sql: str) -> Any:
        return db.get_first(sql, parameters=(tenant_id,))[0]

    # Event ids are the table's key; the same event twice under two ids would show as a repeated tuple.
    events = one("SELECT count(*) FROM interactions WHERE tenant_id = %s")
    distinct = one(
        "SELECT count(DISTINCT (user_id, item_id, interaction_type, ts)) FROM interactions WHERE tenant_id = %s"
    )
    assert events == distinct == feed_counts(killed_run["run"]["dag_run_id"], slug)["generated"]
    assert one("SELECT count(*) FROM model_versions WHERE tenant_id = %s") == 1
    assert one("SELECT count(*) FROM deployments WHERE tenant_id = %s") == 1
    actions = dict(
        db.get_records(
            "SELECT action, count(*) FROM audit_log WHERE tenant_id = %s GROUP BY action", parameters=(tenant_id,)
        )
    )
    assert {a: actions.get(a) for a in ("tenant.created", "model.registered", "model.deployed")} == {
        "tenant.created": 1,
        "model.registered": 1,
        "model.deployed": 1,
    }, actions
    repeated = "SELECT count(*) - count(DISTINCT object) FROM audit_log WHERE tenant_id = %s AND action = %s"
    assert db.get_first(repeated, parameters=(tenant_id, "upload.registered"))[0] == 0
