"""RecsysApiHook: the platform's HTTP API behind the ``recsys_api`` connection (password = admin token).

Why not the HTTP provider's ``HttpHook`` (considered 2026-12, provider 6.3.0): it is not installed (9 more
distributions: aiohttp and its six, requests-toolbelt), and it fits half of what this hook does. Its
session authenticates with the connection's login and password (basic auth by default; none without a
login) where the platform wants ``Bearer <password>``, and its retries (``run_with_advanced_retry``, tenacity) wrap whole calls. This hook needs two sessions
from one connection: admin calls with the token and urllib3 retries with backoff on connect errors and
502/503/504, and tenant calls with neither, because their status and latency are what the journey
measures. With plain ``requests`` that is the ~40 lines below.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from include.config import RECSYS_API_CONN_ID

if TYPE_CHECKING:
    import requests


class RecsysApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        # The platform's error shape: {"error": ..., "code": ..., **details}.
        self.details: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        self.code: str | None = self.details.get("code")


class RecsysApiUnavailable(ConnectionError):
    """The API did not answer at all (refused, reset, timed out): an outage, retried as transient."""

    def __init__(self, base_url: str, method: str, path: str, cause: BaseException) -> None:
        super().__init__(
            f"recsys API unreachable at {base_url} ({method} {path}): {type(cause).__name__} ({_root_cause(cause)})"
        )


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 chain, e.g. "[Errno 111] Connection refused"."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = str(exc)
    return text.rsplit(": ", 1)[-1] if "Errno" in text else text[:200]


class RecsysApiHook(BaseHook):
    """Admin and tenant calls to the recsys API. Admin calls retry transient failures with backoff;
    tenant-facing calls (recommendations, probes) never retry, because their status and latency are what
    the journey measures."""

    conn_name_attr = "recsys_api_conn_id"
    default_conn_name = RECSYS_API_CONN_ID
    hook_name = "Recsys API"

    def __init__(self, recsys_api_conn_id: str = RECSYS_API_CONN_ID, *, run_key: str | None = None) -> None:
        super().__init__()
        self.recsys_api_conn_id = recsys_api_conn_id
        self.run_key = run_key  # sent as X-Run-Key so the platform's audit rows are keyed by this run

    @cached_property
    def _conn(self) -> Any:
        conn = self.get_connection(self.recsys_api_conn_id)
        if not conn.host or not conn.password:
            raise ValueError(f"connection {self.recsys_api_conn_id!r} must set host and password (admin token)")
        return conn

    @cached_property
    def base_url(self) -> str:
        conn = self._conn
        port = f":{conn.port}" if conn.port else ""
        return f"{conn.schema or 'http'}://{conn.host}{port}"

    def get_conn(self) -> requests.Session:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retry = Retry(
            total=5,
            connect=5,
            read=2,
            status=3,
            backoff_factor=0.5,
            status_forcelist=(502, 503, 504),
            allowed_methods=None,  # the admin calls are idempotent upserts
            raise_on_status=False,
        )
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        session.headers["Authorization"] = f"Bearer {self._conn.password}"
        if self.run_key:
            session.headers["X-Run-Key"] = self.run_key
        return session

    @cached_property
    def admin(self) -> requests.Session:
        return self.get_conn()

    @cached_property
    def tenant_session(self) -> requests.Session:
        """A plain session (no retries, no admin token) for calls made as a tenant."""
        import requests

        session = requests.Session()
        if self.run_key:
            session.headers["X-Run-Key"] = self.run_key
        return session

    def _send(self, session: requests.Session, method: str, path: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            return session.request(method, self.base_url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RecsysApiUnavailable(self.base_url, method, path, exc) from exc

    def admin_request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An admin call whose status the caller inspects itself (a drill expecting a 503, say)."""
        return self._send(self.admin, method, path, timeout=kwargs.pop("timeout", 60), **kwargs)

    def _admin_call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = self._send(self.admin, method, path, timeout=kwargs.pop("timeout", 60), **kwargs)
        if response.status_code not in ok:
            raise RecsysApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    # --- admin -------------------------------------------------------------------------------------------
    def ensure_tenant(self, *, slug: str, name: str, email: str) -> dict[str, Any]:
        """Create the tenant, or return the existing one: onboarding the same tenant twice is not an error."""
        response = self._send(
            self.admin, "POST", "/api/admin/tenants", json={"slug": slug, "name": name, "email": email}, timeout=30
        )
        if response.status_code == 201:
            return {**response.json(), "created": True}
        if response.status_code == 409:
            return {**self._admin_call("GET", f"/api/admin/tenants/{slug}"), "created": False}
        raise RecsysApiError("POST", "/api/admin/tenants", response.status_code, response.text)

    def tenant(self, slug: str) -> dict[str, Any] | None:
        """The tenant with this id or slug, or None."""
        response = self._send(self.admin, "GET", f"/api/admin/tenants/{slug}", timeout=30)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RecsysApiError("GET", f"/api/admin/tenants/{slug}", response.status_code, response.text)
        return response.json()

    def delete_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Only a tenant without keys, data or models can go (409 otherwise)."""
        return self._admin_call("DELETE", f"/api/admin/tenants/{tenant_id}")

    def create_api_key(self, tenant_id: str, *, name: str, plan: str | None = None) -> tuple[str, str]:
        """Returns (api_key, key_id). The key exists only in memory: never log, XCom or report it. ``plan``
        puts this key alone on a named rate-limit plan (e.g. "probe"); otherwise it follows its tenant's."""
        body = self._admin_call(
            "POST", f"/api/admin/tenants/{tenant_id}/apikeys", json={"name": name, **({"plan": plan} if plan else {})}
        )
        return body["api_key"], body["id"]

    def plan(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's rate-limit plan: {plan, requests, window_s, per_second, description}."""
        return self._admin_call("GET", f"/api/admin/tenants/{tenant_id}/plan")

    def set_plan(
        self, tenant_id: str, *, plan: str | None = None, requests: int | None = None, window_s: float | None = None
    ) -> dict[str, Any]:
        """A named plan, or the tenant's own ``requests`` per ``window_s``; applies without a restart."""
        body = {"plan": plan} if plan is not None else {"requests": requests, "window_s": window_s}
        return self._admin_call("PUT", f"/api/admin/tenants/{tenant_id}/plan", json=body)

    def api_keys(
        self, tenant_id: str, *, source: str | None = None, active: bool | None = None
    ) -> list[dict[str, Any]]:
        """The tenant's keys as listed by the platform (never the keys themselves)."""
        params: dict[str, Any] = {}
        if source is not None:
            params["source"] = source
        if active is not None:
            params["active"] = str(active).lower()
        return self._admin_call("GET", f"/api/admin/tenants/{tenant_id}/apikeys", params=params)["api_keys"]

    def revoke_api_key(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        return self._admin_call("DELETE", f"/api/admin/tenants/{tenant_id}/apikeys/{key_id}")

    def register_upload(self, tenant_id: str, **upload: Any) -> dict[str, Any]:
        return self._admin_call("POST", f"/api/admin/tenants/{tenant_id}/uploads", json=upload)

    def register_model(self, tenant_id: str, **model: Any) -> dict[str, Any]:
        return self._admin_call("POST", f"/api/admin/tenants/{tenant_id}/models", json=model)

    def list_models(self, tenant_id: str) -> Any:
        return self._admin_call("GET", f"/api/admin/tenants/{tenant_id}/models")

    def deploy(
        self, tenant_id: str, version: str, *, traffic_percent: int = 100, protect_newer_live: bool = False
    ) -> dict[str, Any]:
        """traffic_percent 0 deploys a candidate; protect_newer_live makes the platform refuse (409
        live_model_newer / live_model_undated) to replace a live model that is newer or undated."""
        return self._admin_call(
            "POST",
            f"/api/admin/tenants/{tenant_id}/models/{version}/deploy",
            json={"traffic_percent": traffic_percent, "protect_newer_live": protect_newer_live},
            timeout=300,
        )

    def deployment(self, tenant_id: str) -> dict[str, Any]:
        """The live model the API serves for the tenant (RecsysApiError 404 if none)."""
        return self._admin_call("GET", f"/api/admin/tenants/{tenant_id}/deployment")

    def live_deployment(self, tenant_id: str) -> dict[str, Any] | None:
        """The live model, or None when the tenant has none."""
        try:
            return self.deployment(tenant_id)
        except RecsysApiError as exc:
            if exc.status == 404 and exc.code == "no_deployment":
                return None
            raise

    def deployments(self, tenant_id: str) -> list[dict[str, Any]]:
        """Active deployments: the live one and any candidates."""
        return self._admin_call("GET", f"/api/admin/tenants/{tenant_id}/deployments")["deployments"]

    def end_deployment(self, tenant_id: str, deployment_id: str) -> dict[str, Any]:
        """Unload a candidate (the live deployment is only ever replaced)."""
        return self._admin_call("DELETE", f"/api/admin/tenants/{tenant_id}/deployments/{deployment_id}")

    def audit(
        self, *, tenant_id: str, source: str | None = None, action: str | None = None, since: str | None = None
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first; ``since`` (ISO timestamp, the platform database's clock) keeps later ones."""
        params = {"tenant_id": tenant_id, "format": "json"}
        if source:
            params["source"] = source
        if action:
            params["action"] = action
        if since:
            params["since"] = since
        body = self._admin_call("GET", "/api/admin/audit", params=params)
        return body["entries"] if isinstance(body, dict) else body

    def metrics(self) -> str:
        """The API's /metrics text (Prometheus exposition format), read with the admin token it requires."""
        response = self._send(self.admin, "GET", "/metrics", timeout=10)
        if response.status_code != 200:
            raise RecsysApiError("GET", "/metrics", response.status_code, response.text)
        return response.text

    def health(self) -> tuple[int, dict[str, Any]]:
        response = self._send(self.tenant_session, "GET", "/health", timeout=10)
        return response.status_code, response.json()

    # --- as a tenant ---------------------------------------------------------------------------------------
    def call_as_tenant(
        self, method: str, path: str, *, api_key: str | None, json: Any = None, data: Any = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
        return self._send(self.tenant_session, method, path, headers=headers, json=json, data=data, timeout=30)

    def recommend(self, api_key: str, **body: Any) -> dict[str, Any]:
        """One answer of ``POST /api/v1/recommendations`` (body: user_id, count, model_version, filters); any
        status but 200 raises RecsysApiError naming it."""
        path = "/api/v1/recommendations"
        response = self.call_as_tenant("POST", path, api_key=api_key, json=body)
        if response.status_code != 200:
            raise RecsysApiError("POST", path, response.status_code, response.text)
        return response.json()
