"""Airflow's REST API as an operator uses it, for the DAG tests that drive a real scheduler (backfills, Celery)."""

from __future__ import annotations

import json
import time
from typing import Any

import requests


class AirflowApi:
    """A JWT from /auth/token with the stack's admin login, then /api/v2."""

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

    def dag_parsed(self, dag_id: str) -> bool:
        return self.session.get(f"{self.base}/api/v2/dags/{dag_id}", timeout=10).ok

    def active_backfills(self, dag_id: str) -> list[dict[str, Any]]:
        found = self.call("GET", "/backfills", params={"dag_id": dag_id})["backfills"]
        return [b for b in found if b["completed_at"] is None]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        found = self.call("GET", f"/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances")
        return {f"{t['task_id']}[{t['map_index']}]": t["state"] for t in found["task_instances"]}


def quoted(run_id: str) -> str:
    """A run id as one path segment (manual run ids hold ':' and '+')."""
    return requests.utils.quote(run_id, safe="")


def wait_for(check, what: str, timeout_s: float, *, every_s: float = 3.0) -> Any:
    """``check()``'s first truthy value, polled every ``every_s``; an AssertionError naming ``what`` after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting {timeout_s:g} s for {what}")
        time.sleep(every_s)
