"""`airflow backfill create` on onboarding_journey with a real scheduler: one run per day, each reproducing its
day's data, and a failed day re-run alone with ``--reprocess-behavior failed``.

In Airflow 3 the scheduler runs backfill runs and LocalExecutor's task runners report to the api-server's
execution API, so this test needs Airflow's api-server, scheduler and dag-processor: the stack components
`make airflow` starts. Those not running already are started here (and stopped afterwards) with the
scheduler's own schedule switched off: backfill runs only execute for an unpaused DAG, and unpausing must not
also start the daily canary run at the platform's scale. Because it starts a scheduler, point it at an
isolated stack (RECSYS_LOCAL_DIR / RECSYS_PORT_OFFSET) when others share the default one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from tests.dags.test_onboarding_journey import SMALL, _object_checksums, _tenant_id

pytestmark = pytest.mark.usefixtures("stack_env")

DAG_ID = "onboarding_journey"
SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor")
TENANT = "it-backfill"
CONF = {"tenant": TENANT, **SMALL}
# The days validated: a backfill's dates, like any run's logical date, name the day whose data the run makes.
D1, D2 = "2026-11-05", "2026-11-06"
RUN_TIMEOUT_S = 240


class AirflowApi:
    """Airflow's REST API as an operator uses it: a JWT from /auth/token, then /api/v2."""

    def __init__(self) -> None:
        from include.stack.components import AIRFLOW_ADMIN, airflow_passwords_file
        from include.stack.settings import HOST, StackSettings

        settings = StackSettings.from_env()
        self.base = f"http://{HOST}:{settings.port('airflow')}"
        with open(airflow_passwords_file(settings)) as fh:
            password = json.load(fh)[AIRFLOW_ADMIN]
        token = requests.post(
            f"{self.base}/auth/token", json={"username": AIRFLOW_ADMIN, "password": password}, timeout=10
        )
        token.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def runs(self) -> dict[str, dict[str, Any]]:
        """The DAG's runs for D1 and D2, by logical day."""
        found = self.call(
            "GET", f"/dags/{DAG_ID}/dagRuns",
            params={"logical_date_gte": f"{D1}T00:00:00Z", "logical_date_lte": f"{D2}T00:00:00Z"},
        )  # fmt: skip
        return {run["logical_date"][:10]: run for run in found["dag_runs"]}

    def active_backfills(self) -> list[dict[str, Any]]:
        found = self.call("GET", "/backfills", params={"dag_id": DAG_ID})["backfills"]
        return [b for b in found if b["completed_at"] is None]

    def task_states(self, run_id: str) -> dict[str, str]:
        found = self.call("GET", f"/dags/{DAG_ID}/dagRuns/{requests.utils.quote(run_id, safe='')}/taskInstances")
        return {f"{t['task_id']}[{t['map_index']}]": t["state"] for t in found["task_instances"]}


@pytest.fixture(scope="module")
def airflow_api():
    from include.stack import lifecycle

    started = [s.name for s in lifecycle.status() if s.name in SERVICES and s.pid is None]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")
        lifecycle.up(only=started)
    api = AirflowApi()
    try:
        _wait(lambda: api.session.get(f"{api.base}/api/v2/dags/{DAG_ID}", timeout=10).ok, "the DAG to be parsed", 120)
        api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        yield api
    finally:
        api.call("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
        for active in api.active_backfills():
            api.call("PUT", f"/backfills/{active['id']}/cancel")
        lifecycle.down(only=started)


def backfill(api: AirflowApi, *args: str) -> None:
    # One backfill per DAG at a time, and the scheduler marks one complete a little after its last run ends.
    _wait(lambda: not api.active_backfills(), "the previous backfill to complete", 60)
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    # One day at a time, as the DAG's doc says: days of one tenant would deploy over each other.
    command = [
        airflow, "backfill", "create", "--dag-id", DAG_ID, "--max-active-runs", "1", "--dag-run-conf", json.dumps(CONF),
        *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def wait_for_runs(api: AirflowApi, days: tuple[str, ...], *, finished_after: str = "") -> dict[str, dict[str, Any]]:
    """Wait until each day's run has finished (after ``finished_after``, an ISO end date); fail on a failed run."""

    def finished() -> bool:
        runs = api.runs()
        for day in days:
            run = runs.get(day)
            if run and run["state"] == "failed":
                raise AssertionError(f"backfill run of {day} failed: {api.task_states(run['dag_run_id'])}")
        return all(day in runs and runs[day]["state"] == "success" and runs[day]["end_date"] > finished_after for day in days)

    _wait(finished, f"successful runs of {', '.join(days)}", RUN_TIMEOUT_S)
    return api.runs()


def report(run: dict[str, Any]) -> dict[str, Any]:
    from plugins.journey.run import reports_root, safe_name

    with open(os.path.join(reports_root(), safe_name(run["dag_run_id"]), TENANT, "report.json")) as fh:
        return json.load(fh)


def test_backfill_runs_each_day_reproducibly_and_reprocesses_a_failed_day_alone(airflow_api):
    from plugins.hooks.app_db import AppDbHook

    # "completed" re-runs days an earlier session of this test already backfilled, instead of skipping them.
    backfill(airflow_api, "--from-date", D1, "--to-date", D2, "--reprocess-behavior", "completed")
    runs = wait_for_runs(airflow_api, (D1, D2))
    assert {day: run["run_type"] for day, run in runs.items()} == {D1: "backfill", D2: "backfill"}
    reports = {day: report(run) for day, run in runs.items()}
    assert all(r["success"] for r in reports.values()), reports
    # One run per day, each with that day's own data.
    assert reports[D1]["data_interval"] == [f"{D1}T00:00:00+00:00", f"{D2}T00:00:00+00:00"]
    assert reports[D1]["run_key"] != reports[D2]["run_key"]
    checksums = {day: _object_checksums(r["run_key"], TENANT) for day, r in reports.items()}
    assert checksums[D1] != checksums[D2]

    # An operator marks D2 failed; reprocessing failed runs re-runs D2 alone, with the same data.
    airflow_api.call(
        "PATCH", f"/dags/{DAG_ID}/dagRuns/{requests.utils.quote(runs[D2]['dag_run_id'], safe='')}",
        json={"state": "failed"},
    )  # fmt: skip
    backfill(airflow_api, "--from-date", D1, "--to-date", D2, "--reprocess-behavior", "failed")
    rerun = wait_for_runs(airflow_api, (D2,), finished_after=runs[D2]["end_date"])
    assert rerun[D1]["end_date"] == runs[D1]["end_date"], "D1 had not failed and must not have run again"
    assert rerun[D2]["dag_run_id"] == runs[D2]["dag_run_id"]
    again = report(rerun[D2])
    assert again["success"] and again["run_key"] == reports[D2]["run_key"]
    assert _object_checksums(again["run_key"], TENANT) == checksums[D2]
    landed = AppDbHook().landed(tenant_id=_tenant_id(TENANT), source=again["run_key"])
    assert len(landed) == SMALL["n_interactions"] and landed["event_id"].is_unique


def _wait(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting {timeout_s:g} s for {what}")
        time.sleep(3)
