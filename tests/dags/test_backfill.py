"""`airflow backfill create` on onboarding_journey with a real scheduler: one run per day, each reproducing its
day's data; a backfill of days older than the tenant's live model validates them as candidates and leaves the
newer model serving; a failed day re-run alone with ``--reprocess-behavior failed``; and a run cleared and run
again leaves every count, key, deployment and tenant as it was, with no error line in its task logs.

In Airflow 3 the scheduler runs backfill runs and LocalExecutor's task runners report to the api-server's
execution API, so this test needs Airflow's api-server, scheduler and dag-processor: the stack components
`make airflow` starts. Those not running already are started here (and stopped afterwards) with the
scheduler's own schedule switched off: backfill runs only execute for an unpaused DAG, and unpausing must not
also start the daily canary run at the platform's scale. Because it starts a scheduler, point it at an
isolated stack (RECSYS_LOCAL_DIR / RECSYS_PORT_OFFSET) when others share the default one.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dags.airflow_api import AirflowApi, quoted, wait_for
from tests.dags.journeys import SMALL, object_checksums, platform_state, stable_counts, tenant_id_of

# The suite-wide 600 s is a hang guard for one test; each test here runs two journeys through the scheduler
# (the first also one in this process), which takes 3 min on a quiet machine and three times that under load.
pytestmark = [pytest.mark.usefixtures("stack_env"), pytest.mark.timeout(1800)]

DAG_ID = "onboarding_journey"
SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor")
TENANT = "it-backfill"
CONF = {"tenant": TENANT, **SMALL}
# The days validated: a backfill's dates, like any run's logical date, name the day whose data the run makes.
# NEWEST runs first (in this process) and takes the tenant's traffic; D1 and D2 are backfilled behind it.
D1, D2, NEWEST = "2026-11-05", "2026-11-06", "2026-11-07"
# How long one day's run may take before the test gives up: a journey through the scheduler spends ~10 s per
# task starting its process, and these machines are shared (measured 4 min for one small journey under load 4).
RUN_TIMEOUT_S = 600


def backfill_runs(api: AirflowApi) -> dict[str, dict[str, Any]]:
    """The DAG's runs for D1 to NEWEST, by logical day (at most one run per logical date)."""
    found = api.call(
        "GET",
        f"/dags/{DAG_ID}/dagRuns",
        params={"logical_date_gte": f"{D1}T00:00:00Z", "logical_date_lte": f"{NEWEST}T00:00:00Z"},
    )
    return {run["logical_date"][:10]: run for run in found["dag_runs"]}


@pytest.fixture(scope="module")
def newest() -> dict[str, Any]:
    """The tenant's newest day, run with dag.test before the scheduler gets the DAG unpaused (dag.test and a
    scheduler both driving one run of an unpaused DAG deadlock in the metadata DB): it takes the traffic."""
    from tests.dags.journeys import run_journey

    _, newest = run_journey(logical_date=datetime.fromisoformat(f"{NEWEST}T00:00:00+00:00"), **CONF)
    assert newest["success"] and newest["deployment"]["role"] == "live", newest["deployment"]
    return newest


@pytest.fixture(scope="module")
def airflow_api(newest):
    from include.stack import lifecycle

    started = [s.name for s in lifecycle.status() if s.name in SERVICES and s.pid is None]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")
        lifecycle.up(only=started)
    api = AirflowApi()
    try:
        wait_for(lambda: api.dag_parsed(DAG_ID), "the DAG to be parsed", 120)
        # A run an interrupted session left running would be skipped by every backfill: fail it, to reprocess.
        for run in backfill_runs(api).values():
            if run["state"] in ("queued", "running"):
                api.call("PATCH", f"/dags/{DAG_ID}/dagRuns/{quoted(run['dag_run_id'])}", json={"state": "failed"})
        api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        yield api
    finally:
        api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
        for active in api.active_backfills(DAG_ID):
            api.call("PUT", f"/backfills/{active['id']}/cancel")
        lifecycle.down(only=started)


def backfill(api: AirflowApi, *args: str) -> None:
    # One backfill per DAG at a time, and the scheduler marks one complete a little after its last run ends.
    wait_for(lambda: not api.active_backfills(DAG_ID), "the previous backfill to complete", 60)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    # One day at a time, as the DAG's doc says: days of one tenant would deploy over each other.
    command = [
        airflow,
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--max-active-runs",
        "1",
        "--dag-run-conf",
        json.dumps(CONF),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def wait_for_runs(api: AirflowApi, days: tuple[str, ...], *, finished_after: str = "") -> dict[str, dict[str, Any]]:
    """Wait until each day's run has finished (after ``finished_after``, an ISO end date); fail on a failed run."""

    def finished() -> bool:
        runs = backfill_runs(api)
        for day in days:
            run = runs.get(day)
            if run and run["state"] == "failed":
                raise AssertionError(f"backfill run of {day} failed: {api.task_states(DAG_ID, run['dag_run_id'])}")
        return all(
            day in runs and runs[day]["state"] == "success" and runs[day]["end_date"] > finished_after for day in days
        )

    wait_for(finished, f"successful runs of {', '.join(days)}", RUN_TIMEOUT_S * len(days))  # one day after the other
    return backfill_runs(api)


def report(run: dict[str, Any]) -> dict[str, Any]:
    from include.config import reports_root, safe_name

    with open(os.path.join(reports_root(), safe_name(run["dag_run_id"]), TENANT, "report.json")) as fh:
        return json.load(fh)


def live_version() -> str:
    from plugins.hooks.recsys_api import RecsysApiHook

    return RecsysApiHook().deployment(tenant_id_of(TENANT))["version"]


def error_lines(run_id: str) -> list[str]:
    """Error-level lines of every task log of one run (the scheduler's task logs: one JSON object a line)."""
    root = os.path.join(os.environ["AIRFLOW_HOME"], "logs", f"dag_id={DAG_ID}", f"run_id={run_id}")
    paths = glob.glob(os.path.join(glob.escape(root), "**", "*.log"), recursive=True)
    assert paths, f"no task logs under {root}"
    found = []
    for path in paths:
        with open(path) as fh:
            for line in fh:
                try:
                    level = json.loads(line).get("level")
                except ValueError:
                    level = "error" if "[error" in line else None
                if level in ("error", "critical"):
                    found.append(f"{os.path.relpath(path, root)}: {line.strip()[:300]}")
    return found


def test_older_days_are_validated_as_candidates_behind_the_newer_live_model(airflow_api, newest):
    assert live_version() == newest["model"]["version"]
    # "completed" re-runs days an earlier session of this test already backfilled, instead of skipping them.
    since = _now()
    backfill(airflow_api, "--from-date", D1, "--to-date", D2, "--reprocess-behavior", "completed")
    runs = wait_for_runs(airflow_api, (D1, D2), finished_after=since)
    assert {day: runs[day]["run_type"] for day in (D1, D2)} == {D1: "backfill", D2: "backfill"}
    reports = {day: report(runs[day]) for day in (D1, D2)}
    assert all(r["success"] for r in reports.values()), reports
    # One run per day, each with that day's own data.
    assert reports[D1]["data_interval"] == [f"{D1}T00:00:00+00:00", f"{D2}T00:00:00+00:00"]
    assert reports[D1]["run_key"] != reports[D2]["run_key"]
    assert object_checksums(reports[D1]["run_key"], TENANT) != object_checksums(reports[D2]["run_key"], TENANT)
    # Both older days passed every stage against their own model, pinned, while the newer one kept serving.
    for day, r in reports.items():
        assert r["deployment"] == {
            "role": "candidate",
            "version": r["model"]["version"],
            "live_version": newest["model"]["version"],
            "reason": f"validated as candidate; live model {newest['model']['version']} left in place (its logical"
            f" date {NEWEST}T00:00:00+00:00 is newer than this model's {day}T00:00:00+00:00)",
        }, day
        # The candidate, pinned, serves its own registered embeddings (not the live model's), and the report
        # sets its figures beyond accuracy beside the tenant's previous model version's.
        assert r["model"]["serving_agreement"] >= 0.99, r["model"]["agreement_disagreeing"]
        assert r["model"]["previous_version"]["coverage_at_10"] is not None
        # The 429 probe revokes its own key; cleanup revokes the journey key.
        assert r["cleanup"] == {"api_keys_revoked": 1, "candidates_ended": 1, "probe_tenant_deleted": True}
    assert live_version() == newest["model"]["version"]
    deployments = platform_state(TENANT, reports[D2]["run_key"])["deployments"]
    assert [(d[1], d[2]) for d in deployments if d[4]] == [(newest["model"]["version"], "live")]


def test_a_failed_day_cleared_and_rerun_alone_leaves_every_count_key_deployment_and_tenant_as_it_was(
    airflow_api, newest
):
    """Reprocessing a failed run clears it (Airflow's dag.clear, as an operator's Clear does) and runs it again."""
    from plugins.hooks.app_db import AppDbHook

    runs = backfill_runs(airflow_api)
    assert all(runs[day]["state"] == "success" for day in (D1, D2, NEWEST)), "the previous test backfilled them"
    first = report(runs[D2])
    before = platform_state(TENANT, first["run_key"])
    assert before["run_keys_active"] == 0 and before["probe_tenant"] == 0

    # An operator marks D2 failed; reprocessing failed runs re-runs D2 alone, with the same data.
    airflow_api.call("PATCH", f"/dags/{DAG_ID}/dagRuns/{quoted(runs[D2]['dag_run_id'])}", json={"state": "failed"})
    backfill(airflow_api, "--from-date", D1, "--to-date", NEWEST, "--reprocess-behavior", "failed")
    rerun = wait_for_runs(airflow_api, (D2,), finished_after=runs[D2]["end_date"])
    assert {day: rerun[day]["end_date"] for day in (D1, NEWEST)} == {day: runs[day]["end_date"] for day in (D1, NEWEST)}
    assert rerun[D2]["dag_run_id"] == runs[D2]["dag_run_id"]
    again = report(rerun[D2])
    assert again["success"] and again["run_key"] == first["run_key"]
    assert object_checksums(again["run_key"], TENANT) == object_checksums(first["run_key"], TENANT)
    landed = AppDbHook().landed(tenant_id=tenant_id_of(TENANT), source=again["run_key"])
    assert len(landed) == SMALL["n_interactions"] and landed["event_id"].is_unique
    # No residue: the same counts (the audit counts the latest attempt), no key left active, the candidate's
    # deployment row reused, no tenant added; the newer model still live.
    assert stable_counts(again) == stable_counts(first)
    assert again["deployment"] == first["deployment"] and again["cleanup"] == first["cleanup"]
    assert platform_state(TENANT, again["run_key"]) == before
    assert live_version() == newest["model"]["version"]
    # Neither attempt's task logs (attempt=1 and attempt=2 of every task) carry an error line.
    assert error_lines(rerun[D2]["dag_run_id"]) == []


def _now() -> str:
    """An ISO end date to wait past: runs of an earlier session of this test have finished before it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
