"""Tenants: create, read, delete (only a tenant that holds nothing)."""

from __future__ import annotations

import uuid

import psycopg2.errors
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from include.recsys import audit
from include.recsys.api.admin.common import ACTOR, NO_NUL, SLUG_PATTERN, Source
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source

router = APIRouter()


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    slug: str = Field(pattern=SLUG_PATTERN)
    email: str = Field(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
    source: Source


def tenant_json(row: dict) -> dict:
    return {
        "tenant_id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "email": row["email"],
        "status": row["status"],
        "plan": row["plan"],
        "created_at": row["created_at"].isoformat(),
    }


def find_tenant(cur, ref: str, *, for_update: bool = False) -> dict:
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
            existing = find_tenant(cur, body.slug)
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
    return tenant_json(row)


@router.get("/tenants/{tenant}")
def get_tenant(tenant: str, request: Request) -> dict:
    with platform(request).db.transaction() as cur:
        return tenant_json(find_tenant(cur, tenant))


# What a tenant can hold; only a tenant holding none of it may be deleted (the audit trail keeps its history).
TENANT_HOLDINGS = ("api_keys", "items", "catalog_items", "interactions", "data_uploads", "model_versions")


@router.delete("/tenants/{tenant}")
def delete_tenant(tenant: str, request: Request) -> dict:
    """Remove a tenant that holds nothing (a probe, a mistaken slug); 409 naming what it holds otherwise."""
    source = run_source(request)
    with platform(request).db.transaction() as cur:
        row = find_tenant(cur, tenant, for_update=True)
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
    return {**tenant_json(row), "deleted": True}
