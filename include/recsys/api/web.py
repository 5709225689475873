"""What every route shares: the platform state, the request id, the run key and admin auth."""

from __future__ import annotations

import re

from fastapi import Request

from include.recsys.api.auth import bearer_matches
from include.recsys.api.errors import ApiError
from include.recsys.api.platform import Platform

MAX_SOURCE_CHARS = 200
_SOURCE_RE = re.compile(r"^[\x20-\x7e]{1,200}$")


def platform(request: Request) -> Platform:
    return request.app.state.platform


def request_id(request: Request) -> str:
    return request.scope["state"]["request_id"]


def run_source(request: Request, body_source: str | None = None) -> str | None:
    """The pipeline's run key: the body's ``source`` wins over the X-Run-Key header."""
    source = body_source or request.headers.get("x-run-key")
    if source is None:
        return None
    if not _SOURCE_RE.match(source):
        raise ApiError(
            422, "validation_error", f"source / X-Run-Key must be 1-{MAX_SOURCE_CHARS} printable ASCII characters"
        )
    return source


def require_scraper(request: Request) -> None:
    """FastAPI dependency of GET /metrics: RECSYS_METRICS_TOKEN or the admin token (it names tenants)."""
    settings = platform(request).settings
    authorization = request.headers.get("authorization")
    tokens = [settings.admin_token] + ([settings.metrics_token] if settings.metrics_token else [])
    if not any(bearer_matches(authorization, token=token) for token in tokens):
        raise ApiError(
            401,
            "unauthorized",
            "GET /metrics needs Authorization: Bearer <RECSYS_METRICS_TOKEN> (or the admin token)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_admin(request: Request) -> None:
    """FastAPI dependency of every /api/admin route."""
    if not bearer_matches(request.headers.get("authorization"), token=platform(request).settings.admin_token):
        raise ApiError(
            401,
            "unauthorized",
            "admin routes need Authorization: Bearer <admin token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
