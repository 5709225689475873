"""deploy_model: deploy the registered version, live or as a candidate, and prove the platform serves it.

Deploys respect time. The run's version takes the tenant's traffic (100%) unless the tenant's live model is
newer than the day this run validates, or has no logical date at all (it did not come from a pipeline run,
so nobody can tell how old it is). Then the version is deployed as a candidate instead: loaded, answering
only requests that pin it (query_recommendations pins it), taking no traffic, and the live model keeps
serving. The platform makes the comparison under its tenant lock (``protect_newer_live``), so runs finishing
in any order never downgrade production; a backfill of last week validates last week's models as candidates.

The suite proves that the version under test is served with every catalog item in its FAISS index, at the
traffic its role gives it, and that the live model is the one it should be: this version, or the one left in
place.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload

# The platform's refusals that mean "a newer (or undated) live model stays": validate as a candidate instead.
LIVE_LEFT_IN_PLACE = ("live_model_newer", "live_model_undated")
LIVE_TRAFFIC_PERCENT = 100


def candidate_reason(refusal: dict[str, Any], *, logical_date: str) -> str:
    """Why a version was validated as a candidate, from the platform's 409 (code, live_version, live_logical_date)."""
    why = (
        "it has no logical date: it was not deployed by a pipeline run"
        if refusal["code"] == "live_model_undated"
        else f"its logical date {refusal['live_logical_date']} is newer than this model's {logical_date}"
    )
    return f"validated as candidate; live model {refusal['live_version']} left in place ({why})"


def live_reason(deployed: dict[str, Any]) -> str:
    if deployed["reused"]:
        return f"deployed live at {deployed['traffic_percent']}% ({deployed['version']} was live already)"
    if deployed["replaced"]:
        return f"deployed live at {deployed['traffic_percent']}%, replacing {deployed['replaced']}"
    return f"deployed live at {deployed['traffic_percent']}% (no model was live)"


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed, trained = done["seed_data"], done["train_model"]
    from plugins.hooks.recsys_api import RecsysApiError, RecsysApiHook

    api = RecsysApiHook(run_key=run.run_key)
    tenant_id, version = seed["tenant_id"], trained["version"]
    try:
        deployed = api.deploy(tenant_id, version, traffic_percent=LIVE_TRAFFIC_PERCENT, protect_newer_live=True)
    except RecsysApiError as exc:
        if exc.status != 409 or exc.code not in LIVE_LEFT_IN_PLACE:
            raise
        live_version = exc.details["live_version"]
        deployed = api.deploy(tenant_id, version, traffic_percent=0)
        reason = candidate_reason(exc.details, logical_date=run.window_start.isoformat())
    else:
        live_version, reason = version, live_reason(deployed)
    return {
        "version": version,
        "role": deployed["role"],
        "deployment_id": deployed["deployment_id"],
        "traffic_percent": deployed["traffic_percent"],
        "index_size": deployed["index_size"],
        "live_version": live_version,
        "reason": reason,
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, trained, deployed = done["seed_data"], done["train_model"], done["deploy_model"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.validation import validate_stage

    api = RecsysApiHook(run_key=run.run_key)
    tenant_id = seed["tenant_id"]
    entry = next(
        (d for d in api.deployments(tenant_id) if d["version"] == trained["version"] and d["role"] == deployed["role"]),
        {},
    )
    live = api.live_deployment(tenant_id) or {}
    _, health = api.health()
    row = {
        "registered_version": trained["version"],
        "served_version": entry.get("version") if entry.get("served") else None,
        "index_size": entry.get("index_size"),
        "catalog_size": len(AppDbHook().catalog(tenant_id=tenant_id, upload_id=catalog_upload(done))),
        "traffic_percent": entry.get("traffic_percent"),
        "expected_traffic_percent": LIVE_TRAFFIC_PERCENT if deployed["role"] == "live" else 0,
        "live_version": live.get("version"),
        "expected_live_version": deployed["live_version"],
        "health_status": health.get("status"),
    }
    return validate_stage(
        "deploy_model", {"deployment": pd.DataFrame([row])}, parameters={}, results_dir=run.gx_dir, run_name=run.run_id
    )
