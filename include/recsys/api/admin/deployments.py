"""Deployments: the live model this process serves, a tenant's deployments, ending a candidate."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from include.recsys.api.admin.common import ACTOR, iso
from include.recsys.api.admin.tenants import find_tenant
from include.recsys.api.deploys import DEPLOYMENT_SQL, live_deployment
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source

router = APIRouter()


@router.get("/tenants/{tenant}/deployment")
def get_deployment(tenant: str, request: Request) -> dict:
    """The live model this API process serves for the tenant (404 if none)."""
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_id = find_tenant(cur, tenant)["id"]
        live = live_deployment(cur, tenant_id)
    model = state.registry.get(tenant_id)
    if model is None:
        raise ApiError(404, "no_deployment", f"this API process serves no model for tenant {tenant[:100]!r}")
    recorded = live if live is not None and live["version"] == model.version else None
    return {
        "tenant_id": tenant_id,
        "version": model.version,
        "role": "live",
        "deployment_id": recorded["id"] if recorded else None,
        "traffic_percent": recorded["traffic_percent"] if recorded else None,
        "logical_date": iso(recorded["logical_date"]) if recorded else None,
        "index_size": model.index_size,
        "loaded_at": datetime.fromtimestamp(model.loaded_at, UTC).isoformat(),
    }


def _deployment_json(state, row: dict) -> dict:
    registry, tenant_id = state.registry, row["tenant_id"]
    model = registry.get(tenant_id) if row["role"] == "live" else registry.get_version(tenant_id, row["version"])
    served = row["active"] and model is not None and model.version == row["version"]
    return {
        "deployment_id": row["id"],
        "tenant_id": row["tenant_id"],
        "version": row["version"],
        "role": row["role"],
        "traffic_percent": row["traffic_percent"],
        "logical_date": iso(row["logical_date"]),
        "active": row["active"],
        "deployed_at": row["deployed_at"].isoformat(),
        "ended_at": iso(row["ended_at"]),
        # Whether this API process has the model loaded, and how many items its index holds.
        "served": served,
        "index_size": model.index_size if served else None,
    }


@router.get("/tenants/{tenant}/deployments")
def list_deployments(tenant: str, request: Request, include_ended: bool = False) -> dict:
    """Active deployments (the live one first, then candidates), or every one with include_ended."""
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_id = find_tenant(cur, tenant)["id"]
        where = "" if include_ended else " AND d.active"
        cur.execute(f"{DEPLOYMENT_SQL}{where} ORDER BY d.active DESC, d.role DESC, d.deployed_at DESC", (tenant_id,))
        rows = cur.fetchall()
    deployments = [_deployment_json(state, row) for row in rows]
    return {"tenant_id": tenant_id, "count": len(deployments), "deployments": deployments}


@router.delete("/tenants/{tenant}/deployments/{deployment_id}")
def end_deployment(tenant: str, deployment_id: str, request: Request) -> dict:
    """End a candidate deployment (unload it). The live one is replaced by deploying another version."""
    source = run_source(request)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant)
    row = state.end_deployment(
        tenant=tenant_row, deployment_id=deployment_id, actor=ACTOR, source=source, request_id=request_id(request)
    )
    return _deployment_json(state, row)
