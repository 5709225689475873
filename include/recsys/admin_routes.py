"""Admin routes (/api/admin/...): tenants, API keys, data uploads, models, deployments, audit.

Every route needs Authorization: Bearer <RECSYS_ADMIN_TOKEN>. Wherever a path says {tenant}, the
tenant's id or its slug is accepted. Every state change writes its audit row in the same transaction.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from psycopg2.extras import execute_values
from pydantic import BaseModel, Field

from include import config
from include.recsys import audit, auth, contracts, storage
from include.recsys.csvsafe import escape_cell
from include.recsys.errors import ApiError
from include.recsys.web import platform, request_id, require_admin, run_source

router = APIRouter(prefix="/api/admin", dependencies=[Depends(require_admin)])

ACTOR = "admin"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Postgres text cannot hold NUL, so it is refused here as a 422 rather than failing in the driver.
NO_NUL = r"^[^\x00]*$"
Source = Annotated[str | None, Field(default=None, max_length=200, pattern=NO_NUL)]


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    slug: str = Field(pattern=SLUG_PATTERN)
    email: str = Field(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
    source: Source


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    source: Source


class UploadIn(BaseModel):
    kind: Literal["items", "users", "interactions"]
    bucket: str = Field(min_length=3, max_length=63)
    object_key: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: Source


class ModelIn(BaseModel):
    version: str = Field(pattern=VERSION_PATTERN)
    metrics: dict[str, Any] = Field(default_factory=dict)
    artifact_uri: str = Field(pattern=r"^s3://[^/]+/.+", max_length=1024)
    # The catalog upload (an items upload of this tenant) the model was trained on; serving takes categories from it.
    catalog_upload_id: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    source: Source


class DeployIn(BaseModel):
    traffic_percent: int = Field(default=100, ge=1, le=100)
    source: Source


def _tenant_json(row: dict) -> dict:
    return {
        "tenant_id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "email": row["email"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
    }


def _tenant(cur, ref: str) -> dict:
    cur.execute("SELECT * FROM tenants WHERE id = %s OR slug = %s", (ref, ref))
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, "tenant_not_found", f"no tenant with id or slug {ref[:100]!r}")
    return row


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, request: Request) -> dict:
    source = run_source(request, body.source)
    with platform(request).db.transaction() as cur:
        cur.execute(
            "INSERT INTO tenants (id, slug, name, email) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (slug) DO NOTHING RETURNING *",
            (str(uuid.uuid4()), body.slug, body.name, body.email),
        )
        row = cur.fetchone()
        if row is None:
            existing = _tenant(cur, body.slug)
            raise ApiError(
                409, "tenant_exists", f"a tenant with slug {body.slug!r} already exists", tenant_id=existing["id"]
            )
        audit.record(
            cur,
            actor=ACTOR,
            action="tenant.created",
            tenant_id=row["id"],
            object_ref=f"tenant:{row['slug']}",
            details={"source": source, "slug": row["slug"], "name": row["name"]},
            request_id=request_id(request),
        )
    return _tenant_json(row)


@router.get("/tenants/{tenant}")
def get_tenant(tenant: str, request: Request) -> dict:
    with platform(request).db.transaction() as cur:
        return _tenant_json(_tenant(cur, tenant))


@router.post("/tenants/{tenant}/apikeys", status_code=201)
def create_api_key(tenant: str, body: ApiKeyIn, request: Request) -> dict:
    source = run_source(request, body.source)
    key = auth.generate_key()
    key_id = str(uuid.uuid4())
    prefix = auth.display_prefix(key)
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant)
        cur.execute(
            "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash) VALUES (%s, %s, %s, %s, %s)",
            (key_id, row["id"], body.name, prefix, auth.hash_key(key)),
        )
        audit.record(
            cur,
            actor=ACTOR,
            action="apikey.created",
            tenant_id=row["id"],
            object_ref=f"apikey:{key_id}",
            details={"source": source, "name": body.name, "prefix": prefix},
            request_id=request_id(request),
        )
    return {"api_key": key, "id": key_id, "prefix": prefix, "tenant_id": row["id"], "name": body.name}


def _check_object(data: bytes, body: UploadIn) -> list[dict] | None:
    """Verifies checksum and row count; returns the parsed catalog for kind=items."""
    actual = storage.sha256_hex(data)
    if actual != body.sha256:
        raise ApiError(
            422,
            "checksum_mismatch",
            f"s3://{body.bucket}/{body.object_key}: registered sha256 {body.sha256}, content has {actual}",
        )
    if body.kind != "items" and not body.object_key.endswith(".csv"):
        return None  # other formats are the tenant's business; the checksum already pins the content
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ApiError(422, "invalid_object", f"s3://{body.bucket}/{body.object_key} is not UTF-8 CSV: {exc}") from None
    if len(rows) != body.rows:
        raise ApiError(
            422,
            "row_count_mismatch",
            f"s3://{body.bucket}/{body.object_key}: registered {body.rows} rows, object has {len(rows)}",
        )
    if body.kind != "items":
        return None
    try:
        # Only item_id is required; title, category, price and image_url are read when the CSV has them.
        contracts.require_columns(rows[0].keys() if rows else [], ("item_id",), what="an items CSV")
    except contracts.ContractError as exc:
        raise ApiError(422, "invalid_object", str(exc)) from None
    problems = [f"row {n}: {p}" for n, row in enumerate(rows, start=2) if (p := contracts.item_problem(row))]
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ApiError(422, "invalid_items", "; ".join(problems[:5]) + more)
    return rows


def _catalog_row(r: dict) -> tuple:
    """(item_id, title, category, price, image_url) with absent optional values as NULL ('' for image_url)."""
    return (
        r["item_id"],
        r.get("title") or None,
        r.get("category") or None,
        r.get("price") or None,
        r.get("image_url") or "",
    )


@router.post("/tenants/{tenant}/uploads", status_code=201)
def register_upload(tenant: str, body: UploadIn, request: Request) -> dict:
    if body.bucket not in config.BUCKETS:
        raise ApiError(
            422, "validation_error", f"bucket must be one of {', '.join(config.BUCKETS)}, got {body.bucket!r}"
        )
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        _tenant(cur, tenant)  # an unknown tenant is a 404 before any object is read
    catalog = _check_object(storage.read(state.s3, body.bucket, body.object_key), body)
    with state.db.transaction() as cur:
        row = _tenant(cur, tenant)
        cur.execute(
            "INSERT INTO data_uploads (id, tenant_id, kind, bucket, object_key, rows, sha256, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, bucket, object_key) DO UPDATE SET kind = EXCLUDED.kind, rows = EXCLUDED.rows,"
            " sha256 = EXCLUDED.sha256, source = EXCLUDED.source, updated_at = now() RETURNING id",
            (str(uuid.uuid4()), row["id"], body.kind, body.bucket, body.object_key, body.rows, body.sha256, source),
        )
        upload_id = cur.fetchone()["id"]
        if catalog:
            values = [_catalog_row(r) for r in catalog]
            execute_values(
                cur,
                "INSERT INTO items (tenant_id, item_id, title, category, price, image_url) VALUES %s"
                " ON CONFLICT (tenant_id, item_id) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category,"
                " price = EXCLUDED.price, image_url = EXCLUDED.image_url, updated_at = now()",
                [(row["id"], *v) for v in values],
                page_size=1000,
            )
            # This upload's own snapshot; a re-registration of the same object replaces it.
            cur.execute("DELETE FROM catalog_items WHERE upload_id = %s", (upload_id,))
            execute_values(
                cur,
                "INSERT INTO catalog_items (upload_id, tenant_id, item_id, title, category, price, image_url) VALUES %s",
                [(upload_id, row["id"], *v) for v in values],
                page_size=1000,
            )
        audit.record(
            cur,
            actor=ACTOR,
            action="upload.registered",
            tenant_id=row["id"],
            object_ref=f"s3://{body.bucket}/{body.object_key}",
            details={
                "source": source,
                "kind": body.kind,
                "rows": body.rows,
                "sha256": body.sha256,
                "upload_id": upload_id,
            },
            request_id=request_id(request),
        )
    return {
        "upload_id": upload_id,
        "tenant_id": row["id"],
        **body.model_dump(exclude={"source"}),
        "source": source,
        "items_upserted": len(catalog or ()),
    }


@router.post("/tenants/{tenant}/models", status_code=201)
def register_model(tenant: str, body: ModelIn, request: Request) -> dict:
    source = run_source(request, body.source)
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant)
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
            "INSERT INTO model_versions (tenant_id, version, metrics, artifact_uri, source, catalog_upload_id)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s)"
            " ON CONFLICT (tenant_id, version) DO UPDATE SET metrics = EXCLUDED.metrics,"
            " artifact_uri = EXCLUDED.artifact_uri, source = EXCLUDED.source,"
            " catalog_upload_id = EXCLUDED.catalog_upload_id RETURNING status",
            (row["id"], body.version, json.dumps(body.metrics), body.artifact_uri, source, body.catalog_upload_id),
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
        "source": source,
    }


@router.post("/tenants/{tenant}/models/{version}/deploy")
def deploy_model(tenant: str, version: str, request: Request, body: DeployIn | None = None) -> dict:
    body = body or DeployIn()
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = _tenant(cur, tenant)
        cur.execute(
            "SELECT artifact_uri FROM model_versions WHERE tenant_id = %s AND version = %s", (tenant_row["id"], version)
        )
        model_row = cur.fetchone()
    if model_row is None:
        raise ApiError(
            404, "model_not_found", f"tenant {tenant_row['slug']!r} has no registered model version {version[:100]!r}"
        )
    tenant_id = tenant_row["id"]
    # One deploy at a time: building an index is CPU-bound and two racing deploys of one tenant must
    # leave the database and the served model agreeing on the winner.
    with state.deploy_lock:
        try:
            model = state.build_model(tenant_id, version, model_row["artifact_uri"])
        except storage.StorageError as exc:
            raise ApiError(422, "artifacts_unreadable", str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, "artifacts_invalid", str(exc)) from None
        deployment_id = str(uuid.uuid4())
        with state.db.transaction() as cur:
            cur.execute("UPDATE deployments SET active = false WHERE tenant_id = %s AND active", (tenant_id,))
            cur.execute(
                "UPDATE model_versions SET status = CASE WHEN version = %s THEN 'deployed' ELSE 'retired' END"
                " WHERE tenant_id = %s AND (version = %s OR status = 'deployed')",
                (version, tenant_id, version),
            )
            cur.execute(
                "INSERT INTO deployments (id, tenant_id, version, traffic_percent) VALUES (%s, %s, %s, %s)",
                (deployment_id, tenant_id, version, body.traffic_percent),
            )
            audit.record(
                cur,
                actor=ACTOR,
                action="model.deployed",
                tenant_id=tenant_id,
                object_ref=f"model:{version}",
                details={
                    "source": source,
                    "version": version,
                    "index_size": model.index_size,
                    "traffic_percent": body.traffic_percent,
                    "deployment_id": deployment_id,
                },
                request_id=request_id(request),
            )
        state.registry.put(tenant_id, model)
    return {
        "tenant_id": tenant_id,
        "version": version,
        "deployment_id": deployment_id,
        "index_size": model.index_size,
        "dim": model.index.d,
        "users": len(model.user_rows),
        "traffic_percent": body.traffic_percent,
        "loaded_at": datetime.fromtimestamp(model.loaded_at, UTC).isoformat(),
    }


@router.get("/tenants/{tenant}/models")
def list_models(tenant: str, request: Request) -> dict:
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = _tenant(cur, tenant)
        cur.execute(
            "SELECT m.version, m.status, m.metrics, m.artifact_uri, m.source, m.created_at,"
            " d.version IS NOT NULL AS deployed FROM model_versions m"
            " LEFT JOIN deployments d ON d.tenant_id = m.tenant_id AND d.version = m.version AND d.active"
            " WHERE m.tenant_id = %s ORDER BY m.created_at DESC",
            (tenant_row["id"],),
        )
        rows = cur.fetchall()
    served = state.registry.get(tenant_row["id"])
    return {
        "tenant_id": tenant_row["id"],
        "serving_version": served.version if served else None,
        "models": [{**r, "created_at": r["created_at"].isoformat()} for r in rows],
    }


@router.get("/tenants/{tenant}/deployment")
def get_deployment(tenant: str, request: Request) -> dict:
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_id = _tenant(cur, tenant)["id"]
    model = state.registry.get(tenant_id)
    if model is None:
        raise ApiError(404, "no_deployment", f"this API process serves no model for tenant {tenant[:100]!r}")
    return {
        "tenant_id": tenant_id,
        "version": model.version,
        "index_size": model.index_size,
        "loaded_at": datetime.fromtimestamp(model.loaded_at, UTC).isoformat(),
    }


AUDIT_COLUMNS = ("id", "ts", "actor", "tenant_id", "action", "object", "source", "request_id", "details")


@router.get("/audit")
def list_audit(
    request: Request,
    tenant_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    source: str | None = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> Response:
    clauses, params = [], []
    with platform(request).db.transaction() as cur:
        if tenant_id is not None:
            clauses.append("tenant_id = %s")
            params.append(_tenant(cur, tenant_id)["id"])
        if action is not None:
            clauses.append("action = %s")
            params.append(action)
        if since is not None:
            clauses.append("ts >= %s")
            params.append(since)
        if source is not None:
            clauses.append("details ->> 'source' = %s")
            params.append(source)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        cur.execute(
            "SELECT id, ts, actor, tenant_id, action, object, details ->> 'source' AS source, request_id, details"
            f" FROM audit_log{where} ORDER BY id LIMIT %s",
            (*params, limit),
        )
        rows = cur.fetchall()
    entries = [{**r, "ts": r["ts"].isoformat()} for r in rows]
    if format == "json":
        return JSONResponse({"count": len(entries), "entries": entries})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=AUDIT_COLUMNS)
    writer.writeheader()
    for entry in entries:
        # source and request_id are caller-supplied: escaped so the export cannot carry a formula.
        row = {**entry, "details": json.dumps(entry["details"], sort_keys=True)}
        writer.writerow({column: escape_cell(value) for column, value in row.items()})
    return Response(out.getvalue(), media_type="text/csv")
