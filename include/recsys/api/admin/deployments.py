"""Deployments: the live model this process serves, a tenant's deployments, ending a candidate."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from include.recsys import audit
from include.recsys.api.admin.common import ACTOR, iso
from include.recsys.api.admin.models import live_deployment
from include.recsys.api.admin.tenants import find_tenant
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


DEPLOYMENT_SQL = (
    "SELECT d.*, m.logical_date FROM deployments d"
    " JOIN model_versions m ON m.tenant_id = d.tenant_id AND m.version = d.version WHERE d.tenant_id = %s"
)


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
    with state.deploy_lock, state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant, for_update=True)
        cur.execute(f"{DEPLOYMENT_SQL} AND d.id = %s", (tenant_row["id"], deployment_id))
        row = cur.fetchone()
        if row is None:
            raise ApiError(
                404, "deployment_not_found", f"tenant {tenant_row['slug']!r} has no deployment {deployment_id[:100]!r}"
            )
        if row["role"] == "live" and row["active"]:
            raise ApiError(
                409,
                "live_deployment",
                f"{row['version']} is tenant {tenant_row['slug']!r}'s live model; deploy another version to replace it",
            )
        if row["active"]:
            cur.execute(
                "UPDATE deployments SET active = false, ended_at = now() WHERE id = %s RETURNING ended_at", (row["id"],)
            )
            row = {**row, "active": False, "ended_at": cur.fetchone()["ended_at"]}
            cur.execute(
                "UPDATE model_versions SET status = 'registered' WHERE tenant_id = %s AND version = %s"
                " AND status = 'candidate'",
                (tenant_row["id"], row["version"]),
            )
            audit.record(
                cur,
                actor=ACTOR,
                action="model.undeployed",
                tenant_id=tenant_row["id"],
                object_ref=f"model:{row['version']}",
                details={"source": source, "version": row["version"], "role": row["role"], "deployment_id": row["id"]},
                request_id=request_id(request),
            )
        state.registry.drop_candidate(tenant_row["id"], row["version"])
    state.cache.invalidate(tenant_id=tenant_row["id"], version=row["version"])
    return _deployment_json(state, row)
