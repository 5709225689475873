"""Admin routes (/api/admin/...): tenants, API keys, data uploads, models, deployments, audit.

Every route needs Authorization: Bearer <RECSYS_ADMIN_TOKEN>. Wherever a path says {tenant}, the
tenant's id or its slug is accepted. Every state change writes its audit row in the same transaction.

API keys are a resource of their tenant: ``POST .../apikeys`` creates one (the key is shown once),
``GET .../apikeys[/{id}]`` lists them (never the key or its hash), ``DELETE .../apikeys/{id}`` revokes one
(401 from then on; the record stays, with ``revoked_at``).

Deployments: a tenant has at most one live deployment, which takes its traffic, and any number of
candidates (``traffic_percent`` 0), loaded and answering only requests that pin their version. A model
carries the logical date its training data runs up to; a deploy with ``protect_newer_live`` refuses (409)
to put a model in front of a live one that is newer or undated, so a backfill of old days never
downgrades production. ``DELETE .../deployments/{id}`` ends a candidate.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg2.errors
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from psycopg2.extras import execute_values
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from include import config
from include.checksums import sha256_bytes
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
    # A named rate-limit plan for this key alone (e.g. "probe"); without one the key follows its tenant's plan.
    plan: str | None = Field(default=None, pattern=SLUG_PATTERN)
    source: Source


class PlanIn(BaseModel):
    """A named plan ({"plan": "gateway"}) or the tenant's own figures ({"requests": 600, "window_s": 60})."""

    model_config = ConfigDict(extra="forbid")
    plan: str | None = Field(default=None, pattern=SLUG_PATTERN)
    requests: int | None = Field(default=None, ge=1, le=10_000_000)
    window_s: float | None = Field(default=None, gt=0, le=86_400)
    source: Source

    @model_validator(mode="after")
    def _one_way(self) -> PlanIn:
        named = self.plan is not None and self.requests is None and self.window_s is None
        own = self.plan is None and self.requests is not None and self.window_s is not None
        if not (named or own):
            raise ValueError("give either plan (a named plan) or both requests and window_s")
        return self


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
    # How recent the model is: the point in time its training data runs up to (a pipeline's logical date).
    logical_date: AwareDatetime | None = None
    source: Source


class DeployIn(BaseModel):
    # 0 deploys a candidate: loaded and answering requests that pin its version, taking no traffic.
    traffic_percent: int = Field(default=100, ge=0, le=100)
    # Refuse (409) to replace a live model that is newer than this one or has no logical date to compare.
    protect_newer_live: bool = False
    source: Source


def _tenant_json(row: dict) -> dict:
    return {
        "tenant_id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "email": row["email"],
        "status": row["status"],
        "plan": row["plan"],
        "created_at": row["created_at"].isoformat(),
    }


def _tenant(cur, ref: str, *, for_update: bool = False) -> dict:
    cur.execute("SELECT * FROM tenants WHERE id = %s OR slug = %s" + (" FOR UPDATE" if for_update else ""), (ref, ref))
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


def _plan_json(row: dict) -> dict:
    return {
        "plan": row["name"],
        "requests": row["requests"],
        "window_s": row["window_s"],
        "per_second": round(row["requests"] / row["window_s"], 3),
        "description": row["description"],
    }


def _plan(cur, name: str) -> dict:
    cur.execute("SELECT * FROM rate_plans WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        cur.execute("SELECT name FROM rate_plans WHERE name NOT LIKE 'custom-%' ORDER BY name")
        named = ", ".join(r["name"] for r in cur.fetchall())
        raise ApiError(404, "plan_not_found", f"no rate-limit plan {name[:100]!r}; named plans: {named}")
    return row


@router.get("/plans")
def list_plans(request: Request) -> dict:
    """The named rate-limit plans (tenants' own figures, ``custom-<slug>``, are left out)."""
    with platform(request).db.transaction() as cur:
        cur.execute("SELECT * FROM rate_plans WHERE name NOT LIKE 'custom-%' ORDER BY requests / window_s, name")
        return {"plans": [_plan_json(r) for r in cur.fetchall()]}


@router.get("/tenants/{tenant}/plan")
def get_tenant_plan(tenant: str, request: Request) -> dict:
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant)
        return {"tenant_id": row["id"], **_plan_json(_plan(cur, row["plan"]))}


@router.put("/tenants/{tenant}/plan")
def set_tenant_plan(tenant: str, body: PlanIn, request: Request) -> dict:
    """Put the tenant's keys on a named plan or on figures of its own; applies at each key's next request,
    no restart (this process forgets the tenant's cached keys now; other API processes within the key
    cache's TTL). Keys created with a plan of their own keep it. Audited ``tenant.plan_changed``."""
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        row = _tenant(cur, tenant, for_update=True)
        previous = _plan(cur, row["plan"])
        if body.plan is not None:
            plan = _plan(cur, body.plan)
        else:
            cur.execute(
                "INSERT INTO rate_plans (name, requests, window_s, description) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET requests = EXCLUDED.requests, window_s = EXCLUDED.window_s,"
                " updated_at = now() RETURNING *",
                (f"custom-{row['slug']}", body.requests, body.window_s, f"tenant {row['slug']}'s own figures"),
            )
            plan = cur.fetchone()
        cur.execute("UPDATE tenants SET plan = %s WHERE id = %s", (plan["name"], row["id"]))
        audit.record(
            cur,
            actor=ACTOR,
            action="tenant.plan_changed",
            tenant_id=row["id"],
            object_ref=f"tenant:{row['slug']}",
            details={
                "source": source,
                "plan": plan["name"],
                "requests": plan["requests"],
                "window_s": plan["window_s"],
                "previous": {
                    "plan": previous["name"],
                    "requests": previous["requests"],
                    "window_s": previous["window_s"],
                },
            },
            request_id=request_id(request),
        )
    state.keys.forget_tenant(row["id"])
    return {"tenant_id": row["id"], **_plan_json(plan), "previous": _plan_json(previous)}


# What a tenant can hold; only a tenant holding none of it may be deleted (the audit trail keeps its history).
TENANT_HOLDINGS = ("api_keys", "items", "catalog_items", "interactions", "data_uploads", "model_versions")


@router.delete("/tenants/{tenant}")
def delete_tenant(tenant: str, request: Request) -> dict:
    """Remove a tenant that holds nothing (a probe, a mistaken slug); 409 naming what it holds otherwise."""
    source = run_source(request)
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant, for_update=True)
        counts = {}
        for table in TENANT_HOLDINGS:  # names from the constant above, never from input
            cur.execute(f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (row["id"],))
            counts[table] = cur.fetchone()["n"]
        held = {table: n for table, n in counts.items() if n}
        if held:
            raise ApiError(
                409,
                "tenant_not_empty",
                f"tenant {row['slug']!r} holds {', '.join(f'{n} {table}' for table, n in held.items())};"
                " only a tenant without keys, data or models can be deleted",
                holds=held,
            )
        cur.execute("DELETE FROM ingest_progress WHERE tenant_id = %s", (row["id"],))
        try:
            cur.execute("DELETE FROM tenants WHERE id = %s", (row["id"],))
        except psycopg2.errors.ForeignKeyViolation as exc:  # a table referencing tenants that is not listed above
            raise ApiError(
                409, "tenant_not_empty", f"tenant {row['slug']!r} still holds data: {exc.diag.message_detail}"
            ) from None
        audit.record(
            cur,
            actor=ACTOR,
            action="tenant.deleted",
            tenant_id=row["id"],
            object_ref=f"tenant:{row['slug']}",
            details={"source": source, "slug": row["slug"]},
            request_id=request_id(request),
        )
    return {**_tenant_json(row), "deleted": True}


def _key_json(row: dict) -> dict:
    """A key as listed: never the key itself or its hash."""
    return {
        "id": row["id"],
        "tenant_id": row["tenant_id"],
        "name": row["name"],
        "prefix": row["key_prefix"],
        "source": row["source"],
        # None: the key follows its tenant's plan.
        "plan": row["plan"],
        "created_at": row["created_at"].isoformat(),
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
        "active": row["revoked_at"] is None,
    }


@router.post("/tenants/{tenant}/apikeys", status_code=201)
def create_api_key(tenant: str, body: ApiKeyIn, request: Request) -> dict:
    source = run_source(request, body.source)
    key = auth.generate_key()
    key_id = str(uuid.uuid4())
    prefix = auth.display_prefix(key)
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant)
        if body.plan is not None:
            _plan(cur, body.plan)
        cur.execute(
            "INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, source, plan)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (key_id, row["id"], body.name, prefix, auth.hash_key(key), source, body.plan),
        )
        audit.record(
            cur,
            actor=ACTOR,
            action="apikey.created",
            tenant_id=row["id"],
            object_ref=f"apikey:{key_id}",
            details={"source": source, "name": body.name, "prefix": prefix, "plan": body.plan},
            request_id=request_id(request),
        )
    return {
        "api_key": key,
        "id": key_id,
        "prefix": prefix,
        "tenant_id": row["id"],
        "name": body.name,
        "source": source,
        "plan": body.plan,
    }


@router.get("/tenants/{tenant}/apikeys")
def list_api_keys(tenant: str, request: Request, source: str | None = None, active: bool | None = None) -> dict:
    """The tenant's keys, oldest first; ``source`` narrows to one run's, ``active`` to live or revoked ones."""
    clauses, params = ["tenant_id = %s"], []
    with platform(request).db.transaction() as cur:
        row = _tenant(cur, tenant)
        params.append(row["id"])
        if source is not None:
            clauses.append("source = %s")
            params.append(source)
        if active is not None:
            clauses.append("revoked_at IS NULL" if active else "revoked_at IS NOT NULL")
        cur.execute(f"SELECT * FROM api_keys WHERE {' AND '.join(clauses)} ORDER BY created_at, id", params)
        keys = [_key_json(k) for k in cur.fetchall()]
    return {"tenant_id": row["id"], "count": len(keys), "api_keys": keys}


def _api_key(cur, tenant_row: dict, key_id: str) -> dict:
    cur.execute("SELECT * FROM api_keys WHERE id = %s AND tenant_id = %s", (key_id, tenant_row["id"]))
    row = cur.fetchone()
    if row is None:
        raise ApiError(404, "apikey_not_found", f"tenant {tenant_row['slug']!r} has no API key {key_id[:100]!r}")
    return row


@router.get("/tenants/{tenant}/apikeys/{key_id}")
def get_api_key(tenant: str, key_id: str, request: Request) -> dict:
    with platform(request).db.transaction() as cur:
        return _key_json(_api_key(cur, _tenant(cur, tenant), key_id))


@router.delete("/tenants/{tenant}/apikeys/{key_id}")
def revoke_api_key(tenant: str, key_id: str, request: Request) -> dict:
    """Revoke a key: every request with it answers 401 from now on. Revoking a revoked key changes nothing."""
    source = run_source(request)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = _tenant(cur, tenant)
        key = _api_key(cur, tenant_row, key_id)
        if key["revoked_at"] is not None:
            return _key_json(key)
        cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s RETURNING *", (key["id"],))
        key = cur.fetchone()
        audit.record(
            cur,
            actor=ACTOR,
            action="apikey.revoked",
            tenant_id=tenant_row["id"],
            object_ref=f"apikey:{key['id']}",
            details={"source": source, "name": key["name"], "prefix": key["key_prefix"], "created_by": key["source"]},
            request_id=request_id(request),
        )
    state.keys.forget(key["key_hash"])
    return _key_json(key)


def _check_object(data: bytes, body: UploadIn) -> list[dict] | None:
    """Verifies checksum and row count; returns the parsed catalog for kind=items."""
    actual = sha256_bytes(data)
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
        "logical_date": _iso(body.logical_date),
        "source": source,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _live(cur, tenant_id: str) -> dict | None:
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
    about = {"live_version": live["version"], "live_logical_date": _iso(live["logical_date"])}
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
        tenant_row = _tenant(cur, tenant)
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
        live = _live(cur, tenant_row["id"])
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
            _tenant(cur, tenant_id, for_update=True)  # serialises deploys of one tenant across API processes
            live = _live(cur, tenant_id)
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
        "logical_date": _iso(model_row["logical_date"]),
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
        tenant_row = _tenant(cur, tenant)
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
            {**r, "created_at": r["created_at"].isoformat(), "logical_date": _iso(r["logical_date"])} for r in rows
        ],
    }


@router.get("/tenants/{tenant}/deployment")
def get_deployment(tenant: str, request: Request) -> dict:
    """The live model this API process serves for the tenant (404 if none)."""
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_id = _tenant(cur, tenant)["id"]
        live = _live(cur, tenant_id)
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
        "logical_date": _iso(recorded["logical_date"]) if recorded else None,
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
        "logical_date": _iso(row["logical_date"]),
        "active": row["active"],
        "deployed_at": row["deployed_at"].isoformat(),
        "ended_at": _iso(row["ended_at"]),
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
        tenant_id = _tenant(cur, tenant)["id"]
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
        tenant_row = _tenant(cur, tenant, for_update=True)
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
            cur.execute("SELECT id FROM tenants WHERE id = %s OR slug = %s", (tenant_id, tenant_id))
            found = cur.fetchone()
            # A deleted tenant's trail stays readable by its id.
            clauses.append("tenant_id = %s")
            params.append(found["id"] if found else tenant_id)
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
