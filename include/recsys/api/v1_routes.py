"""Tenant routes (/api/v1/...), authenticated by an API key: Authorization: Bearer <api key>.

The order of checks is fixed: key (401), rate limit (429), body (422), tenant isolation (403). Bodies
are parsed by hand, after authentication, so an anonymous caller learns nothing about the schema. The
recommendation path touches no database on a warm cache: key owners, models and user history are all
in memory.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.recsys.api.auth import KeyOwner, bearer_token
from include.recsys.api.cache import entry_key
from include.recsys.api.errors import ApiError, validation_message
from include.recsys.api.ratelimit import RateLimiter
from include.recsys.api.web import platform, request_id, run_source
from include.recsys.contract import schema

router = APIRouter(prefix="/api/v1")

ID_FIELD = Field(min_length=1, max_length=schema.MAX_ID_LENGTH)


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The tenant's own taxonomy: any category its catalog may hold.
    category: str | None = Field(default=None, min_length=1, max_length=schema.MAX_CATEGORY_LENGTH)


class RecommendIn(BaseModel):
    user_id: str = ID_FIELD
    count: int = Field(default=10, ge=1, le=100)
    filters: Filters | None = None
    tenant_id: str | None = Field(default=None, max_length=200)
    # Pin a version: the live one or a candidate (deployed at 0% traffic, e.g. a backfill validating an old day).
    model_version: str | None = Field(default=None, min_length=1, max_length=64)
    source: str | None = Field(default=None, max_length=200)


async def _authenticate(request: Request) -> KeyOwner:
    key = bearer_token(request.headers.get("authorization"))
    if key is None or len(key) > 200:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: Authorization: Bearer <api key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    state = platform(request)
    # A cache miss may wait on the database; keep that off the event loop.
    hit, owner = state.keys.cached(key)
    if not hit:
        owner = await run_in_threadpool(state.keys.owner, key)
    if owner is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    settings = state.settings
    if settings.rate_limit is not None:
        limit, window_s, plan = settings.rate_limit, settings.rate_window_s, "RECSYS_RATE_LIMIT"
    else:
        limit, window_s, plan = owner.rate_limit, owner.rate_window_s, f"plan {owner.plan}"
    wait_s = state.limiter.acquire(owner.key_id, limit=limit, window_s=window_s)
    if wait_s > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {limit} requests per {window_s:g}s ({plan}) exceeded for this key",
            headers={"Retry-After": RateLimiter.retry_after_header(wait_s)},
        )
    return owner


def _forbid_other_tenant(owner: KeyOwner, tenant_ref: str | None) -> None:
    if tenant_ref is not None and not owner.owns(tenant_ref):
        raise ApiError(403, "forbidden", "this API key belongs to another tenant")


async def _recommend(request: Request, owner: KeyOwner, path_tenant: str | None) -> JSONResponse:
    started = time.perf_counter()
    try:
        body = RecommendIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise ApiError(422, "validation_error", validation_message(exc.errors())) from None
    _forbid_other_tenant(owner, path_tenant)
    _forbid_other_tenant(owner, body.tenant_id)
    category = body.filters.category if body.filters else None
    state = platform(request)
    if body.model_version is not None:
        model = state.registry.get_version(owner.tenant_id, body.model_version)
        if model is None:
            raise ApiError(
                404,
                "model_version_not_served",
                f"model version {body.model_version!r} is neither live nor a candidate of this tenant here",
            )
    else:
        model = state.registry.get(owner.tenant_id)
    if model is not None:
        key = entry_key(
            tenant_id=owner.tenant_id, version=model.version, user_id=body.user_id, count=body.count, category=category
        )
        cached = await state.cache.get(key)
        if cached is not None:
            answer = {**json.loads(cached), "cached": True}
        else:
            items, fallback = model.recommend(body.user_id, count=body.count, category=category)
            answer = _answer(body.user_id, model.version, fallback, items)
            await state.cache.put(key, json.dumps(answer).encode())
            answer["cached"] = False
    else:
        # No model yet: the popularity fallback is already cached in process, and changes as data lands.
        popularity = await run_in_threadpool(state.popularity, owner.tenant_id)
        answer = {**_answer(body.user_id, None, True, popularity.top(body.count, category=category)), "cached": False}
    state.served.add(owner.tenant_id, run_source(request, body.source))
    answer["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    answer["request_id"] = request_id(request)
    # A header too, so a load generator that discards bodies (k6) can count hits.
    return JSONResponse(answer, headers={"X-Cache": "hit" if answer["cached"] else "miss"})


def _answer(user_id: str, version: str | None, fallback: bool, items) -> dict:
    """What a cache entry holds: everything but the request's own id, latency and cache flag."""
    return {
        "user_id": user_id,
        "model_version": version,
        "fallback": fallback,
        "items": [{"item_id": r.item_id, "score": r.score, "category": r.category} for r in items],
    }


@router.post("/recommendations")
async def recommendations(request: Request) -> JSONResponse:
    """Body: {user_id, count (1..100, default 10), filters: {category}, tenant_id?, model_version?, source?}."""
    owner = await _authenticate(request)
    return await _recommend(request, owner, None)


@router.post("/tenants/{tenant_id}/recommendations")
async def tenant_recommendations(tenant_id: str, request: Request) -> JSONResponse:
    """Same as /recommendations, with the tenant (id or slug) named in the path."""
    owner = await _authenticate(request)
    return await _recommend(request, owner, tenant_id)


def _item(request: Request, tenant_id: str, item_id: str) -> dict | None:
    with platform(request).db.transaction() as cur:
        cur.execute(
            "SELECT item_id, title, category, price::float8 AS price, image_url FROM items"
            " WHERE tenant_id = %s AND item_id = %s",
            (tenant_id, item_id),
        )
        return cur.fetchone()


@router.get("/tenants/{tenant_id}/items/{item_id}")
async def get_item(tenant_id: str, item_id: str, request: Request) -> dict:
    owner = await _authenticate(request)
    _forbid_other_tenant(owner, tenant_id)
    item = await run_in_threadpool(_item, request, owner.tenant_id, item_id)
    if item is None:
        raise ApiError(404, "item_not_found", f"no item {item_id[:100]!r} in this tenant's catalog")
    return item
