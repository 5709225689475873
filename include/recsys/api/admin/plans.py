"""Rate-limit plans: the named ones, and a tenant's plan (a named one or figures of its own)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.recsys import audit
from include.recsys.api.admin.common import ACTOR, SLUG_PATTERN, Source
from include.recsys.api.admin.tenants import find_tenant
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source

router = APIRouter()


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


def _plan_json(row: dict) -> dict:
    return {
        "plan": row["name"],
        "requests": row["requests"],
        "window_s": row["window_s"],
        "per_second": round(row["requests"] / row["window_s"], 3),
        "description": row["description"],
    }


def find_plan(cur, name: str) -> dict:
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
        row = find_tenant(cur, tenant)
        return {"tenant_id": row["id"], **_plan_json(find_plan(cur, row["plan"]))}


@router.put("/tenants/{tenant}/plan")
def set_tenant_plan(tenant: str, body: PlanIn, request: Request) -> dict:
    """Put the tenant's keys on a named plan or on figures of its own; applies at each key's next request,
    no restart (this process forgets the tenant's cached keys now; other API processes within the key
    cache's TTL). Keys created with a plan of their own keep it. Audited ``tenant.plan_changed``."""
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        row = find_tenant(cur, tenant, for_update=True)
        previous = find_plan(cur, row["plan"])
        if body.plan is not None:
            plan = find_plan(cur, body.plan)
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
