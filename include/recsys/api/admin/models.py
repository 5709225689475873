"""Models: registering a version, deploying it, listing them.

The deploy is the platform service's (``Platform.deploy``; the rows it changes and its refusals are in
api/deploys.py): ``traffic_percent`` 0 deploys a candidate, and ``protect_newer_live`` refuses (409) to put
a model in front of a live one that is newer or undated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from include.recsys import audit
from include.recsys.api.admin.common import ACTOR, NO_NUL, VERSION_PATTERN, Source, iso
from include.recsys.api.admin.tenants import find_tenant
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source

router = APIRouter()


class ModelIn(BaseModel):
    version: str = Field(pattern=VERSION_PATTERN)
    metrics: dict[str, Any] = Field(default_factory=dict)
    artifact_uri: str = Field(pattern=r"^s3://[^/]+/.+", max_length=1024)
    # The catalog upload (an items upload of this tenant) the model was trained on; serving takes categories from it.
    catalog_upload_id: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    # How recent the model is: the point in time its training data runs up to (a pipeline's logical date).
    logical_date: AwareDatetime | None = None
    source: Source


class DeployIn(BaseModel):
    # 0 deploys a candidate: loaded and answering requests that pin its version, taking no traffic.
    traffic_percent: int = Field(default=100, ge=0, le=100)
    # Refuse (409) to replace a live model that is newer than this one or has no logical date to compare.
    protect_newer_live: bool = False
    source: Source


@router.post("/tenants/{tenant}/models", status_code=201)
def register_model(tenant: str, body: ModelIn, request: Request) -> dict:
    source = run_source(request, body.source)
    with platform(request).db.transaction() as cur:
        row = find_tenant(cur, tenant)
        if body.catalog_upload_id is not None:
            cur.execute(
                "SELECT 1 FROM data_uploads WHERE id = %s AND tenant_id = %s AND kind = 'items'",
                (body.catalog_upload_id, row["id"]),
            )
            if cur.fetchone() is None:
                raise ApiError(
                    422,
                    "validation_error",
                    f"catalog_upload_id must name an items upload of tenant {row['slug']!r},"
                    f" got {body.catalog_upload_id[:100]!r}",
                )
        cur.execute(
            "INSERT INTO model_versions (tenant_id, version, metrics, artifact_uri, source, catalog_upload_id,"
            " logical_date) VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, version) DO UPDATE SET metrics = EXCLUDED.metrics,"
            " artifact_uri = EXCLUDED.artifact_uri, source = EXCLUDED.source,"
            " catalog_upload_id = EXCLUDED.catalog_upload_id, logical_date = EXCLUDED.logical_date RETURNING status",
            (
                row["id"],
                body.version,
                json.dumps(body.metrics),
                body.artifact_uri,
                source,
                body.catalog_upload_id,
                body.logical_date,
            ),
        )
        status = cur.fetchone()["status"]
        audit.record(
            cur,
            actor=ACTOR,
            action="model.registered",
            tenant_id=row["id"],
            object_ref=f"model:{body.version}",
            details={
                "source": source,
                "version": body.version,
                "artifact_uri": body.artifact_uri,
                "metrics": body.metrics,
                "logical_date": body.logical_date,
            },
            request_id=request_id(request),
        )
    return {
        "tenant_id": row["id"],
        "version": body.version,
        "status": status,
        "metrics": body.metrics,
        "artifact_uri": body.artifact_uri,
        "catalog_upload_id": body.catalog_upload_id,
        "logical_date": iso(body.logical_date),
        "source": source,
    }


@router.post("/tenants/{tenant}/models/{version}/deploy")
def deploy_model(tenant: str, version: str, request: Request, body: DeployIn | None = None) -> dict:
    body = body or DeployIn()
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant)
    done = state.deploy(
        tenant=tenant_row,
        version=version,
        traffic_percent=body.traffic_percent,
        protect_newer_live=body.protect_newer_live,
        actor=ACTOR,
        source=source,
        request_id=request_id(request),
    )
    return {
        "tenant_id": done.tenant_id,
        "version": done.version,
        "role": done.role,
        "deployment_id": done.deployment_id,
        "reused": done.reused,
        "replaced": done.replaced,
        "logical_date": iso(done.logical_date),
        "index_size": done.model.index_size,
        "dim": done.model.index.d,
        "users": len(done.model.user_rows),
        "traffic_percent": done.traffic_percent,
        "loaded_at": datetime.fromtimestamp(done.model.loaded_at, UTC).isoformat(),
        "cache_entries_dropped": done.cache_dropped,
    }


@router.get("/tenants/{tenant}/models")
def list_models(tenant: str, request: Request) -> dict:
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant)
        cur.execute(
            "SELECT m.version, m.status, m.metrics, m.artifact_uri, m.source, m.logical_date, m.created_at,"
            " d.version IS NOT NULL AS deployed FROM model_versions m"
            " LEFT JOIN deployments d ON d.tenant_id = m.tenant_id AND d.version = m.version AND d.active"
            " AND d.role = 'live' WHERE m.tenant_id = %s ORDER BY m.created_at DESC",
            (tenant_row["id"],),
        )
        rows = cur.fetchall()
    served = state.registry.get(tenant_row["id"])
    return {
        "tenant_id": tenant_row["id"],
        "serving_version": served.version if served else None,
        "models": [
            {**r, "created_at": r["created_at"].isoformat(), "logical_date": iso(r["logical_date"])} for r in rows
        ],
    }
