"""The Journey app Airflow mounts at ``/journey``: recent runs, one run's report, its Data Docs, a tenant's history.

Every route depends on :func:`plugins.ui.auth.operator` (401 without an Airflow login), validates its path
parameters (plugins/ui/paths.py, 400 otherwise) and reads through :class:`plugins.hooks.reports.ReportStore`,
so the same app serves the local stack and docker-compose. Handlers are plain functions: FastAPI runs them in
its thread pool, so the S3 client's blocking calls never stall the api-server's event loop.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from plugins.hooks.reports import ReportNotFound, ReportStore
from plugins.journey.report import content_type
from plugins.ui import pages, paths
from plugins.ui.auth import operator

RECENT_RUNS = 50
# Served files are what the pipeline wrote, never to be sniffed into something else.
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60"}


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def create_app(*, store: ReportStore | None = None) -> FastAPI:
    store = store or ReportStore()
    app = FastAPI(title="Journey", docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(operator)])

    @app.exception_handler(paths.InvalidPath)
    def invalid_path(request: Request, exc: paths.InvalidPath) -> Response:
        return HTMLResponse(
            pages.page(title="Refused", root=_root(request), body=f"<p>{pages._e(exc)}</p>"), status_code=400
        )

    @app.exception_handler(ReportNotFound)
    def not_found(request: Request, exc: ReportNotFound) -> Response:
        return HTMLResponse(pages.not_found(str(exc), root=_root(request)), status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def recent(request: Request) -> str:
        return pages.index(store.recent(limit=RECENT_RUNS), root=_root(request))

    @app.get("/runs/{run_id}", response_model=None)
    def run(request: Request, run_id: str) -> Response:
        tenants = store.tenants_of(paths.run_id(run_id))
        if len(tenants) == 1:
            # The DAG-run page's "Validation report" lands here; one tenant means one report to show.
            return RedirectResponse(
                f"{_root(request)}/runs/{pages.quote(run_id, safe='')}/{tenants[0]}", status_code=307
            )
        return HTMLResponse(pages.run_tenants(run_id, tenants, root=_root(request)))

    @app.get("/runs/{run_id}/{tenant}", response_class=HTMLResponse)
    def report(request: Request, run_id: str, tenant: str) -> str:
        return pages.report_page(store.report(paths.run_id(run_id), paths.tenant(tenant)), root=_root(request))

    @app.get("/runs/{run_id}/{tenant}/data_docs", response_model=None)
    def data_docs_root(request: Request, run_id: str, tenant: str) -> Response:
        paths.run_id(run_id), paths.tenant(tenant)
        return RedirectResponse(f"{request.url.path}/index.html", status_code=307)

    @app.get("/runs/{run_id}/{tenant}/data_docs/{path:path}", response_model=None)
    def data_docs(run_id: str, tenant: str, path: str) -> Response:
        path = paths.docs_file(path)
        body = store.data_docs(paths.run_id(run_id), paths.tenant(tenant), path)
        return Response(body, media_type=content_type(path), headers=_FILE_HEADERS)

    @app.get("/runs/{run_id}/{tenant}/quarantine/{table}", response_model=None)
    def quarantine(run_id: str, tenant: str, table: str) -> Response:
        stored = (store.report(paths.run_id(run_id), paths.tenant(tenant)).get("quarantine") or {}).get(table)
        if not stored:
            raise ReportNotFound(f"run {run_id!r} quarantined no {table!r} rows of tenant {tenant!r}")
        name = stored["key"].rsplit("/", 1)[-1]
        headers = {**_FILE_HEADERS, "Content-Disposition": f'attachment; filename="{tenant}-{name}"'}
        return Response(store.quarantine(stored["key"]), media_type="text/csv", headers=headers)

    @app.get("/tenants/{tenant}", response_class=HTMLResponse)
    def tenant(request: Request, tenant: str) -> str:
        tenant = paths.tenant(tenant)
        return pages.tenant_page(
            tenant, store.recent(limit=RECENT_RUNS, tenant=tenant), store.history_plots(tenant), root=_root(request)
        )

    @app.get("/tenants/{tenant}/plots/{name}", response_model=None)
    def plot(tenant: str, name: str) -> Response:
        name = paths.docs_file(name)
        return Response(
            store.history_plot(paths.tenant(tenant), name), media_type=content_type(name), headers=_FILE_HEADERS
        )

    return app
