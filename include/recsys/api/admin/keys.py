"""API keys are a resource of their tenant: ``POST .../apikeys`` creates one (the key is shown once),
``GET .../apikeys[/{id}]`` lists them (never the key or its hash), ``DELETE .../apikeys/{id}`` revokes one
(401 from then on; the record stays, with ``revoked_at``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from include.recsys import audit
from include.recsys.api import auth
from include.recsys.api.admin.common import ACTOR, NO_NUL, SLUG_PATTERN, Source
from include.recsys.api.admin.plans import find_plan
from include.recsys.api.admin.tenants import find_tenant
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source

router = APIRouter()


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    # A named rate-limit plan for this key alone (e.g. "probe"); without one the key follows its tenant's plan.
    plan: str | None = Field(default=None, pattern=SLUG_PATTERN)
    source: Source


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
        row = find_tenant(cur, tenant)
        if body.plan is not None:
            find_plan(cur, body.plan)
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
        row = find_tenant(cur, tenant)
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
        return _key_json(_api_key(cur, find_tenant(cur, tenant), key_id))


@router.delete("/tenants/{tenant}/apikeys/{key_id}")
def revoke_api_key(tenant: str, key_id: str, request: Request) -> dict:
    """Revoke a key: every request with it answers 401 from now on. Revoking a revoked key changes nothing."""
    source = run_source(request)
    state = platform(request)
    with state.db.transaction() as cur:
        tenant_row = find_tenant(cur, tenant)
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
