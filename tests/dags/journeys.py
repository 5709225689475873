"""Running onboarding_journey with dag.test and reading its report: shared by the DAG tests of the journey."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from typing import Any

from include.config import RAW_BUCKET

# Small enough for a test, big enough for the planted taste structure to be learnable.
SMALL = {"n_users": 400, "n_items": 200, "n_interactions": 8000, "sample_users": 10}


def load_journey():
    """A freshly parsed DAG: dag.test on a DAG object that already ran carries the last run's conf."""
    from airflow.dag_processing.dagbag import DagBag

    from include.config import project_root

    bag = DagBag(dag_folder=os.path.join(project_root(), "dags", "onboarding_journey.py"))
    assert bag.import_errors == {}
    return bag.dags["onboarding_journey"]


def run_journey(*, logical_date: datetime, **conf):
    """(dag_run, the tenant's report.json) of one run of the journey for ``conf["tenant"]``."""
    from include.config import reports_root, safe_name

    dag_run = load_journey().test(logical_date=logical_date, run_conf=conf)
    with open(os.path.join(reports_root(), safe_name(dag_run.run_id), conf["tenant"], "report.json")) as fh:
        return dag_run, json.load(fh)


# Figures that depend on timing or batching, not on what the run did.
VOLATILE = re.compile(r"(_s|_ms|_seconds|_per_s)$")


def stable_counts(report: dict[str, Any]) -> dict[str, Any]:
    """Every stage's counts in the report but timings, training metrics (floats of a CPU run) and the number
    of ingestion audit entries (one per worker batch; the rows they account for are kept)."""
    counts = {}
    for stage in report["stages"]:
        kept = {k: v for k, v in stage["counts"].items() if not VOLATILE.search(k) and k != "metrics"}
        if "found" in kept:
            kept["found"] = {a: n for a, n in kept["found"].items() if a != "interactions.ingested"}
        counts[stage["name"]] = kept
    return counts


def platform_state(slug: str, run_key: str) -> dict[str, Any]:
    """What a run must leave as it found it: the tenant's keys and deployments, and the platform's tenants."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.journey.query_recommendations import probe_tenant_slug

    db, tenant_id = AppDbHook(), tenant_id_of(slug)
    probe = probe_tenant_slug(tenant=slug, run_key=run_key)
    return {
        "active_keys": db.get_records(
            "SELECT id FROM api_keys WHERE tenant_id = %s AND revoked_at IS NULL ORDER BY id", (tenant_id,)
        ),
        "run_keys_active": db.get_first(
            "SELECT count(*) FROM api_keys WHERE tenant_id = %s AND source = %s AND revoked_at IS NULL",
            (tenant_id, run_key),
        )[0],
        "deployments": db.get_records(
            "SELECT id, version, role, traffic_percent, active FROM deployments WHERE tenant_id = %s ORDER BY id",
            (tenant_id,),
        ),
        "tenants": db.get_first("SELECT count(*) FROM tenants")[0],
        "probe_tenant": db.get_first("SELECT count(*) FROM tenants WHERE slug = %s", (probe,))[0],
    }


def tenant_id_of(slug: str) -> str:
    from plugins.hooks.recsys_api import RecsysApiHook

    return RecsysApiHook().ensure_tenant(slug=slug, name=slug, email=f"admin@{slug}.example.com")["tenant_id"]


def object_checksums(run_key: str, tenant: str) -> dict[str, str]:
    from plugins.hooks.minio import MinioHook

    minio = MinioHook()
    return {
        name: minio.read_back(bucket=RAW_BUCKET, key=f"{tenant}/{run_key}/{name}.csv").sha256
        for name in ("items", "users", "interactions")
    }
