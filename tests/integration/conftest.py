"""Fixtures shared by the integration tests: clients of the running stack and one way to make a tenant.

Every test here talks to the real servers of the stack that `make up` started (see tests/conftest.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg2
import pytest

from include.recsys import storage
from include.recsys.settings import load


@pytest.fixture(scope="session")
def env(stack_env) -> dict[str, str]:
    return stack_env


@pytest.fixture(scope="module")
def admin(env) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=env["RECSYS_API_URL"], headers={"Authorization": f"Bearer {env['RECSYS_ADMIN_TOKEN']}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture(scope="module")
def api(env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env["RECSYS_API_URL"], timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def db(env):
    conn = psycopg2.connect(env["RECSYS_DATABASE_URL"])
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def s3(env):
    return storage.client(load(env))


@pytest.fixture(scope="module")
def new_tenant(admin) -> Callable[..., dict]:
    """Creates a tenant with a unique slug through the admin API: ``new_tenant("prefix", run_key=...)``.

    The run key, when given, is the tenant's source, so the journey's cleanup can find what a run made.
    """

    def create(prefix: str, run_key: str | None = None) -> dict:
        slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = {"name": slug, "slug": slug, "email": f"ops@{slug}.example"}
        if run_key:
            body["source"] = run_key
        response = admin.post("/api/admin/tenants", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return create


@pytest.fixture(scope="module")
def new_key(admin) -> Callable[[dict, str], str]:
    """Mints an API key for a tenant made by ``new_tenant``: ``new_key(tenant, run_key)`` -> plaintext key."""

    def mint(tenant: dict, run_key: str) -> str:
        response = admin.post(
            f"/api/admin/tenants/{tenant['slug']}/apikeys", json={"name": "test"}, headers={"X-Run-Key": run_key}
        )
        assert response.status_code == 201, response.text
        return response.json()["api_key"]

    return mint


def _wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., None]:
    """Polls ``predicate`` until true: ``wait_for(predicate, timeout_s=..., what="...")``; fails naming ``what``."""
    return _wait_for
