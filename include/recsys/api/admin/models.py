"""Models and deploys. A tenant has at most one live deployment, which takes its traffic, and any number of
candidates (``traffic_percent`` 0), loaded and answering only requests that pin their version. A model
carries the logical date its training data runs up to; a deploy with ``protect_newer_live`` refuses (409)
to put a model in front of a live one that is newer or undated, so a backfill of old days never
downgrades production. ``DELETE .../deployments/{id}`` ends a candidate.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from include.recsys import audit, storage
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


def live_deployment(cur, tenant_id: str) -> dict | None:
    """The tenant's live deployment with its model's logical date, or None."""
    cur.execute(
        "SELECT d.id, d.version, d.traffic_percent, d.deployed_at, m.logical_date FROM deployments d"
        " JOIN model_versions m ON m.tenant_id = d.tenant_id AND m.version = d.version"
        " WHERE d.tenant_id = %s AND d.active AND d.role = 'live'",
        (tenant_id,),
    )
    return cur.fetchone()


def _refuse_older(live: dict | None, *, version: str, logical_date: datetime | None) -> None:
    """409 when ``version`` would replace a live model that is newer, or whose age nobody knows."""
    if live is None or live["version"] == version:
        return
    about = {"live_version": live["version"], "live_logical_date": iso(live["logical_date"])}
    if live["logical_date"] is None:
        raise ApiError(
            409,
            "live_model_undated",
            f"the live model {live['version']} has no logical date, so nobody can tell whether {version} is newer;"
            " it stays live (deploy without protect_newer_live to replace it anyway)",
            **about,
        )
    if logical_date is None or logical_date < live["logical_date"]:
        mine = f"logical date {logical_date.isoformat()}" if logical_date else "no logical date"
        raise ApiError(
            409,
            "live_model_newer",
            f"the live model {live['version']} (logical date {live['logical_date'].isoformat()}) is newer than"
            f" {version} ({mine}); it stays live",
            **about,
        )


def _deploy_live(cur, *, tenant_id: str, version: str, traffic_percent: int, live: dict | None) -> tuple[str, bool]:
    """(deployment id, reused): the same version deployed again keeps its deployment row."""
    if live is not None and live["version"] == version:
        cur.execute("UPDATE deployments SET traffic_percent = %s WHERE id = %s", (traffic_percent, live["id"]))
        return live["id"], True
    if live is not None:
        cur.execute("UPDATE deployments SET active = false, ended_at = now() WHERE id = %s", (live["id"],))
    # A candidate of this version is promoted: it is served live now, not as a candidate as well.
    cur.execute(
        "UPDATE deployments SET active = false, ended_at = now()"
        " WHERE tenant_id = %s AND version = %s AND role = 'candidate' AND active",
        (tenant_id, version),
    )
    cur.execute(
        "UPDATE model_versions SET status = CASE WHEN version = %s THEN 'deployed' ELSE 'retired' END"
        " WHERE tenant_id = %s AND (version = %s OR status = 'deployed')",
        (version, tenant_id, version),
    )
    deployment_id = str(uuid.uuid4())
    cur.execute(
        "INSERT INTO deployments (id, tenant_id, version, traffic_percent, role) VALUES (%s, %s, %s, %s, 'live')",
        (deployment_id, tenant_id, version, traffic_percent),
    )
    return deployment_id, False


def _deploy_candidate(cur, *, tenant_id: str, version: str) -> tuple[str, bool]:
    """(deployment id, reused): a version validated again as a candidate reuses its one candidate row."""
    cur.execute(
        "SELECT id FROM deployments WHERE tenant_id = %s AND version = %s AND role = 'candidate' FOR UPDATE",
        (tenant_id, version),
    )
    row = cur.fetchone()
    if row is not None:
        deployment_id, reused = row["id"], True
        cur.execute(
            "UPDATE deployments SET active = true, ended_at = NULL, deployed_at = now() WHERE id = %s", (deployment_id,)
        )
    else:
        deployment_id, reused = str(uuid.uuid4()), False
        cur.execute(
            "INSERT INTO deployments (id, tenant_id, version, traffic_percent, role)"
            " VALUES (%s, %s, %s, 0, 'candidate')",
            (deployment_id, tenant_id, version),
        )
    cur.execute(
        "UPDATE model_versions SET status = 'candidate' WHERE tenant_id = %s AND version = %s AND status <> 'deployed'",
        (tenant_id, version),
    )
    return deployment_id, reused


@router.post("/tenants/{tenant}/models/{version}/deploy")
def deploy_model(tenant: str, version: str, request: Request, body: DeployIn | None = None) -> dict:
    body = body or DeployIn()
    role = "candidate" if body.traffic_percent == 0 else "live"
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant)
        cur.execute(
            "SELECT artifact_uri, logical_date FROM model_versions WHERE tenant_id = %s AND version = %s",
            (tenant_row["id"], version),
        )
        model_row = cur.fetchone()
        if model_row is None:
            raise ApiError(
                404,
                "model_not_found",
                f"tenant {tenant_row['slug']!r} has no registered model version {version[:100]!r}",
            )
        live = live_deployment(cur, tenant_row["id"])
    tenant_id = tenant_row["id"]
    # Checked before the index is built (a refusal costs nothing) and again under the tenant's row lock below.
    if role == "live" and body.protect_newer_live:
        _refuse_older(live, version=version, logical_date=model_row["logical_date"])
    if role == "candidate" and live is not None and live["version"] == version:
        raise ApiError(409, "version_is_live", f"{version} is the live model of tenant {tenant_row['slug']!r} already")
    # One deploy at a time: building an index is CPU-bound and two racing deploys of one tenant must
    # leave the database and the served model agreeing on the winner.
    with state.deploy_lock:
        try:
            model = state.build_model(tenant_id, version, model_row["artifact_uri"])
        except storage.StorageError as exc:
            raise ApiError(422, "artifacts_unreadable", str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, "artifacts_invalid", str(exc)) from None
        with state.db.transaction() as cur:
            find_tenant(cur, tenant_id, for_update=True)  # serialises deploys of one tenant across API processes
            live = live_deployment(cur, tenant_id)
            if role == "live":
                if body.protect_newer_live:
                    _refuse_older(live, version=version, logical_date=model_row["logical_date"])
                deployment_id, reused = _deploy_live(
                    cur, tenant_id=tenant_id, version=version, traffic_percent=body.traffic_percent, live=live
                )
            else:
                if live is not None and live["version"] == version:
                    raise ApiError(409, "version_is_live", f"{version} became the live model meanwhile")
                deployment_id, reused = _deploy_candidate(cur, tenant_id=tenant_id, version=version)
            replaced = live["version"] if role == "live" and live is not None and live["version"] != version else None
            audit.record(
                cur,
                actor=ACTOR,
                action="model.deployed",
                tenant_id=tenant_id,
                object_ref=f"model:{version}",
                details={
                    "source": source,
                    "version": version,
                    "role": role,
                    "index_size": model.index_size,
                    "traffic_percent": body.traffic_percent,
                    "deployment_id": deployment_id,
                    "replaced": replaced,
                    "reused": reused,
                },
                request_id=request_id(request),
            )
        if role == "live":
            state.registry.put(tenant_id, model)
        else:
            state.registry.put_candidate(tenant_id, model)
        # The rebuilt model may answer differently (its users' history grew), and a replaced one serves no more.
        cache_dropped = sum(state.cache.invalidate(tenant_id=tenant_id, version=v) for v in {version, replaced} if v)
    return {
        "tenant_id": tenant_id,
        "version": version,
        "role": role,
        "deployment_id": deployment_id,
        "reused": reused,
        "replaced": replaced,
        "logical_date": iso(model_row["logical_date"]),
        "index_size": model.index_size,
        "dim": model.index.d,
        "users": len(model.user_rows),
        "traffic_percent": body.traffic_percent,
        "loaded_at": datetime.fromtimestamp(model.loaded_at, UTC).isoformat(),
        "cache_entries_dropped": cache_dropped,
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
