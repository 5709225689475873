"""The platform's HTTP API: `uvicorn include.recsys.api.app:app`.

Routes: GET /health, GET /metrics (a scrape token or the admin token), /api/admin/... (api/admin/), /api/v1/... (v1_routes).
Every response carries X-Request-ID (the caller's, if it sent a sane one) and every error is
{"error": ..., "code": ...}. Settings come from RECSYS_* (settings.py); `app` is built on first
access, so importing this module needs no environment.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from include.recsys import settings as settings_module
from include.recsys.api import admin, errors, v1_routes
from include.recsys.api.health import NON_CRITICAL
from include.recsys.api.platform import Platform
from include.recsys.api.telemetry import Telemetry
from include.recsys.api.web import platform, require_scraper
from include.recsys.settings import Settings

log = logging.getLogger(__name__)

_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class EdgeMiddleware:
    """Request id, body size limit and request metrics, as plain ASGI (no per-request task overhead).

    Bodies are read up front (they are at most max_body_bytes), so an oversize body gets 413 before
    any route or validation sees it, whether or not it declared a Content-Length.
    """

    def __init__(self, app, *, max_body_bytes: int, telemetry: Telemetry) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.telemetry = telemetry

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        supplied = headers.get(b"x-request-id", b"")
        rid = supplied.decode() if _REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                body = await self._read_body(headers, receive)
                if body is None:
                    response = errors.error_response(
                        413, "payload_too_large", f"request body exceeds {self.max_body_bytes} bytes"
                    )
                    await response(scope, receive, send_with_id)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label so scanners cannot blow up the metric's cardinality.
            template = getattr(route, "path", None) or "unmatched"
            self.telemetry.observe(
                method=scope["method"], route=template, status=status, seconds=time.perf_counter() - started
            )

    async def _read_body(self, headers: dict[bytes, bytes], receive) -> bytes | None:
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or settings_module.get()
    telemetry = Telemetry()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = Platform(settings)
        app.state.platform = state
        state.start()
        log.info("recsys API up: %r", settings)
        try:
            yield
        finally:
            state.stop()
            await state.cache.close()

    # No /docs, /redoc or /openapi.json: they are unauthenticated and would publish the admin API's
    # schema, which tenant routes otherwise only reveal after authentication.
    app = FastAPI(
        title="Embedding recommender platform",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes, telemetry=telemetry)
    app.include_router(admin.router)
    app.include_router(v1_routes.router)

    @app.get("/health")
    def health(request: Request) -> JSONResponse:
        """200 {"status": "healthy", "checks": {...}}; 503 {"status": "degraded", "failing": [...], ...} when a
        dependency serving needs fails; 200 {"status": "degraded", "failing": [], "degraded": ["cache"], ...}
        when only the response cache does (recommendations are still served, computed per request)."""
        checks = platform(request).health.run()
        down = sorted(name for name, result in checks.items() if not result["ok"])
        failing = [name for name in down if name not in NON_CRITICAL]
        degraded = [name for name in down if name in NON_CRITICAL]
        if failing:
            return JSONResponse(
                {"status": "degraded", "failing": failing, "degraded": degraded, "checks": checks}, status_code=503
            )
        if degraded:
            return JSONResponse({"status": "degraded", "failing": [], "degraded": degraded, "checks": checks})
        return JSONResponse({"status": "healthy", "checks": checks})

    @app.get("/metrics", dependencies=[Depends(require_scraper)])
    def metrics(request: Request) -> PlainTextResponse:
        state = platform(request)
        text = telemetry.render(
            model_versions=state.registry.versions(),
            cache=state.cache.stats() if state.cache.enabled else None,
            health={name: result["ok"] for name, result in state.health.run().items()},
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return app


def __getattr__(name: str):
    # uvicorn resolves `app` with getattr, which lands here once; the app is then cached as a global.
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
