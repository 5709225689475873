"""file_retention end to end with dag.test on the real stack: a tenant's reports, work directories and
quarantine objects written before the window go, locally and in the buckets; newer ones stay; another tenant
(even one whose slug starts with this one's) is not touched.

Ages are when a file was written, so the test writes its "old" files, then its "new" ones a little later, and
runs the DAG for a logical date ``retention_days`` after the moment in between. It scopes the run to its own
tenants (the ``tenants`` param), so a developer's long-lived stack keeps everything else.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from include.config import QUARANTINE_BUCKET, REPORTS_BUCKET
from tests.dags.dag_runs import run_dag, task_states, xcom

pytestmark = pytest.mark.usefixtures("stack_env")

TENANT = f"it-retention-{uuid.uuid4().hex[:8]}"
BYSTANDER = f"{TENANT}-eu"  # shares the prefix: the trailing slash of "<tenant>/" must keep it out
DAYS = 30
# SeaweedFS's Last-Modified has one-second resolution.
GAP_S = 2.1


def _write(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("{}")
    return path


def _files(age: str) -> dict[str, str]:
    from include.config import reports_root, work_root

    return {
        "report": os.path.join(reports_root(), f"manual__retention-{age}", TENANT, "report.json"),
        "data_docs": os.path.join(reports_root(), f"manual__retention-{age}", TENANT, "data_docs", "index.html"),
        "work": os.path.join(work_root(), TENANT, f"2026-10-01-{age}", "items.csv"),
        "bystander": os.path.join(reports_root(), f"manual__retention-{age}", BYSTANDER, "report.json"),
    }


def _objects(age: str) -> list[tuple[str, str]]:
    return [
        (REPORTS_BUCKET, f"{TENANT}/2026-10-01-{age}/manual__x/report.json"),
        (QUARANTINE_BUCKET, f"{TENANT}/2026-10-01-{age}/interactions.quarantine.csv"),
        (REPORTS_BUCKET, f"{BYSTANDER}/2026-10-01-{age}/manual__x/report.json"),
    ]


def _exists(minio, bucket: str, key: str) -> bool:
    return any(o.object_name == key for o in minio.client.list_objects(bucket, prefix=key))


@pytest.fixture()
def written():
    from include.config import reports_root, work_root
    from plugins.hooks.minio import MinioHook
    from plugins.journey.report import LATEST_DIR, replace_link

    minio = MinioHook()
    for age in ("old", "new"):
        for path in _files(age).values():
            _write(path)
        for bucket, key in _objects(age):
            minio.put_bytes(bucket=bucket, key=key, data=b"{}", content_type="application/json")
        if age == "old":
            os.makedirs(os.path.join(reports_root(), LATEST_DIR), exist_ok=True)
            replace_link(os.path.join(reports_root(), LATEST_DIR, TENANT), os.path.dirname(_files("old")["report"]))
            time.sleep(GAP_S)
            boundary = datetime.now(UTC)
            time.sleep(GAP_S)
    yield boundary
    for tenant in (TENANT, BYSTANDER):
        for bucket in (REPORTS_BUCKET, QUARANTINE_BUCKET):
            minio.delete_prefix(bucket=bucket, prefix=f"{tenant}/")
    for age in ("old", "new"):
        shutil.rmtree(os.path.join(reports_root(), f"manual__retention-{age}"), ignore_errors=True)
    shutil.rmtree(os.path.join(work_root(), TENANT), ignore_errors=True)
    if os.path.lexists(link := os.path.join(reports_root(), LATEST_DIR, TENANT)):
        os.remove(link)


def _delete_run(dag_run) -> None:
    """The run's logical date lies in the future: left in place, it would hold back the DAG's schedule."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == dag_run.dag_id, DagRun.run_id == dag_run.run_id))


def test_files_and_objects_older_than_the_window_go_and_newer_ones_stay(written):
    from include.config import reports_root
    from plugins.hooks.minio import MinioHook
    from plugins.journey.report import LATEST_DIR

    dag_run = run_dag(
        "file_retention",
        logical_date=written + timedelta(days=DAYS),
        run_conf={"retention_days": DAYS, "tenants": [TENANT]},
    )
    try:
        assert dag_run.state == "success", task_states(dag_run)
        results = {task: xcom(dag_run, task) for task in ("reports", "work_dirs", "quarantine", "alerts")}
    finally:
        _delete_run(dag_run)
    assert datetime.fromisoformat(results["reports"]["before"]) == written  # logical date - retention_days
    assert results["reports"]["local"]["files"] == 2 and results["reports"]["bucket"]["objects"] == 1
    assert results["reports"]["local"]["links"] == 1  # latest/<tenant> pointed at the old report
    assert results["work_dirs"]["local"]["files"] == 1
    assert results["quarantine"]["bucket"]["objects"] == 1
    assert "skipped" in results["alerts"]  # alerts belong to no tenant

    old, new = _files("old"), _files("new")
    assert not any(os.path.exists(old[name]) for name in ("report", "data_docs", "work"))
    assert not os.path.exists(os.path.dirname(old["report"])) and not os.path.exists(os.path.dirname(old["work"]))
    assert all(os.path.exists(path) for path in new.values())
    assert os.path.exists(old["bystander"])
    assert not os.path.lexists(os.path.join(reports_root(), LATEST_DIR, TENANT))
    minio = MinioHook()
    (gone_report, gone_quarantine, kept_bystander) = _objects("old")
    assert not _exists(minio, *gone_report) and not _exists(minio, *gone_quarantine)
    assert _exists(minio, *kept_bystander)
    assert all(_exists(minio, bucket, key) for bucket, key in _objects("new"))
