"""Running any DAG with dag.test and reading back what it left: task states, XComs and alerts."""

from __future__ import annotations

import json
import os
from typing import Any


def run_dag(dag_id: str, **test_kwargs: Any):
    """dag.test on a freshly parsed DAG: dag.test keeps one run's conf in the DAG object's params, and a
    later run of the same object would inherit it (a worker parses the DAG anew for every task)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.config import project_root

    bag = DagBag(dag_folder=os.path.join(project_root(), "dags"))
    assert bag.import_errors == {}
    return bag.dags[dag_id].test(**test_kwargs)


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def xcom(dag_run, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, key=key, dag_ids=dag_run.dag_id, task_ids=task_id)
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


def alert(dag_run, task_id: str) -> dict[str, Any]:
    """The alert the failure callback wrote, read back from the exports bucket; the local copy must match."""
    from include.config import EXPORTS_BUCKET
    from plugins.alerts import alert_path, alerts_dir
    from plugins.hooks.minio import MinioHook

    where = alert_path({"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id})
    stored = json.loads(MinioHook().read_back(bucket=EXPORTS_BUCKET, key=f"alerts/{where}").data)
    with open(os.path.join(alerts_dir(), where)) as fh:
        assert json.load(fh) == stored
    return stored
