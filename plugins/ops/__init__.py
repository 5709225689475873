"""The logic of the platform's operational DAGs, one module per DAG: health (platform_health),
data_quality (data_quality_check) and retraining (tenant_model_training). The DAG files only call these.

Helpers the DAGs share live here; like the DAG files, this module imports nothing heavy.
"""

from __future__ import annotations

import os
from typing import Any

from include.config import reports_root, safe_name


def report_dir(*, dag_id: str, run_id: str) -> str:
    """One run's reports. Keyed by DAG too: a manual run id ("manual__<date>") is not unique across DAGs."""
    path = os.path.join(reports_root(), dag_id, safe_name(run_id))
    os.makedirs(path, exist_ok=True)
    return path


def results_dir(*, dag_id: str, run_id: str) -> str:
    """Where validate_stage stores one run's GX results (the journey's layout: <report dir>/gx)."""
    return os.path.join(report_dir(dag_id=dag_id, run_id=run_id), "gx")


def previous_result(ti: Any, *, task_id: str) -> Any:
    """The return value of ``task_id`` in the latest earlier run where it succeeded, or None.

    Used for day-over-day and run-over-run comparisons: Airflow's own metadata DB already keeps every
    run's XCom, so no extra state store is needed. Called from ``task_id`` itself. The previous successful
    task instance is looked up first because the task SDK logs an error for every XCom it is asked for and
    does not find, and a first run has none.
    """
    from airflow.sdk import TaskInstanceState

    if task_id != ti.task_id:
        raise ValueError(f"previous_result is called from the task itself ({ti.task_id!r}), not for {task_id!r}")
    previous = ti.get_previous_ti(state=TaskInstanceState.SUCCESS)
    if previous is None:
        return None
    return ti.xcom_pull(task_ids=task_id, run_id=previous.run_id, map_indexes=-1)
