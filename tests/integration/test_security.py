"""Security properties of the platform and the pipeline, against the running stack.

Routes are enumerated from the FastAPI app object, so a route added later is covered (or fails the
test) without editing it. Tests that need this checkout's API code rather than the stack's running
process (which may predate it) use an in-process app on the stack's database: ``local_api``.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import re
import subprocess
import time
import typing
import uuid

import psycopg2
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from include import config
from include.checksums import sha256_bytes
from include.recsys import storage
from include.recsys.api.app import create_app
from include.recsys.api.platform import Platform
from include.recsys.contract.csvsafe import FORMULA_PREFIXES
from include.recsys.settings import load

PUBLIC = {("GET", "/health")}  # health probes only: /metrics names tenants, so a scrape needs a token
PLAINTEXT_KEY = re.compile(r"rk_[A-Za-z0-9_-]{40,}")
INJECTIONS = (
    "'; DROP TABLE tenants; --",
    "x' OR '1'='1",
    "1; DELETE FROM api_keys; --",
    "'); TRUNCATE audit_log; --",
    "\"; UPDATE tenants SET status = 'suspended'; --",
    "$$; DROP TABLE items; $$",
    "'; SELECT pg_sleep(5); --",
)


def routes(settings) -> list[tuple[str, str]]:
    app = create_app(settings)
    return sorted((method, r.path) for r in app.routes if isinstance(r, APIRoute) for method in r.methods)


def concrete(path: str, tenant: str) -> str:
    return path.format(
        tenant=tenant,
        tenant_id=tenant,
        version="v1",
        item_id="item_0001",
        key_id="no-such-key",
        deployment_id="no-such-deployment",
    )


@pytest.fixture(scope="module")
def tenants(new_tenant, new_key):
    """Two tenants with a key each; b is never the target of an injection, so its rows must not move."""
    run_key = f"security-{uuid.uuid4().hex[:8]}"
    a, b = new_tenant("sec-a", run_key), new_tenant("sec-b", run_key)
    return {
        "a": a,
        "b": b,
        "key_a": new_key(a, run_key),
        "key_b": new_key(b, run_key),
        "run_key": run_key,
    }


@pytest.fixture()
def local_api(env):
    """An in-process API (this checkout's code) on the stack's database, with settings overrides.

    The lifespan is not run: no deployments are reloaded and no background thread starts.
    """
    started = []

    def make(**overrides: str) -> TestClient:
        settings = load({**env, **overrides})
        app = create_app(settings)
        app.state.platform = Platform(settings)
        started.append(app.state.platform)
        return TestClient(app)

    yield make
    for platform in started:
        platform.stop()


def test_every_route_but_health_needs_the_right_credentials(env, api, tenants):
    admin_token = env["RECSYS_ADMIN_TOKEN"]
    public = set()
    for method, path in routes(load(env)):
        url = concrete(path, tenants["a"]["slug"])
        kwargs = {"json": {"user_id": "u"}} if method == "POST" else {}
        if api.request(method, url, **kwargs).status_code != 401:
            public.add((method, path))
            continue
        wrong = [f"Bearer {admin_token}x", "Bearer rk_not-a-real-key", f"Basic {admin_token}", admin_token]
        if path == "/metrics":  # the scrape token and the admin token may scrape; a tenant's key may not
            wrong += [f"Bearer {tenants['key_a']}", f"Bearer {env['RECSYS_METRICS_TOKEN']}x"]
        else:
            wrong.append(f"Bearer {tenants['key_a']}" if path.startswith("/api/admin") else f"Bearer {admin_token}")
        for authorization in wrong:
            response = api.request(method, url, headers={"Authorization": authorization}, **kwargs)
            assert response.status_code == 401, (method, path, authorization[:12], response.text)
            assert response.json()["code"] == "unauthorized" and response.headers["www-authenticate"] == "Bearer"
    assert public == PUBLIC


def test_metrics_are_scraped_with_the_configured_token_and_report_each_dependency(env, api):
    response = api.get("/metrics", headers={"Authorization": f"Bearer {env['RECSYS_METRICS_TOKEN']}"})
    assert response.status_code == 200, response.text
    for check in ("database", "storage", "kafka"):
        assert f'recsys_health_check_up{{check="{check}"}} 1' in response.text


def test_the_api_publishes_no_schema_or_docs(local_api):
    client = local_api()
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert client.get(path).status_code == 404, path


def test_a_tenant_key_cannot_touch_another_tenant_on_any_tenant_route(env, api, tenants):
    scoped = [(m, p) for m, p in routes(load(env)) if p.startswith("/api/v1/") and "{tenant_id}" in p]
    assert scoped, "no tenant-scoped routes found"
    other = tenants["b"]
    for method, path in scoped:
        for ref in (other["slug"], other["tenant_id"]):
            response = api.request(
                method,
                concrete(path, ref),
                json={"user_id": "u"},
                headers={"Authorization": f"Bearer {tenants['key_a']}"},
            )
            assert response.status_code == 403 and response.json()["code"] == "forbidden", (method, path)
    body = {"user_id": "u", "tenant_id": other["tenant_id"]}
    response = api.post("/api/v1/recommendations", json=body, headers={"Authorization": f"Bearer {tenants['key_a']}"})
    assert response.status_code == 403


def test_api_keys_are_stored_hashed_and_nowhere_in_plaintext(env, admin, api, db, tenants, new_key):
    from plugins.hooks.app_db import AppDbHook

    key = new_key(tenants["a"], tenants["run_key"])
    api.post("/api/v1/recommendations", json={"user_id": "u"}, headers={"Authorization": f"Bearer {key}"})
    api.post("/api/v1/recommendations", json={"user_id": "u"}, headers={"Authorization": f"Bearer {key}x"})

    stored = AppDbHook().get_records(
        "SELECT key_hash, key_prefix FROM api_keys WHERE key_hash = %s",
        parameters=(hashlib.sha256(key.encode()).hexdigest(),),
    )
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), key[: len("rk_") + 8])]
    with db.cursor() as cur:  # every text-like column of every table, the key's whole secret part
        cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'character varying', 'jsonb', 'json')"
        )
        for table, column in cur.fetchall():
            cur.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', (f"%{key[12:]}%",))
            assert cur.fetchone()[0] == 0, f"{table}.{column} holds the plaintext key"

    time.sleep(1)  # log handlers flush per record, but the API writes from its own process
    for path in glob.glob(os.path.join(config.local_dir(), "logs", "*.log")):
        with open(path, errors="replace") as fh:
            text = fh.read()
        assert key not in text and key[12:] not in text, f"{path} holds the API key"
        assert env["RECSYS_ADMIN_TOKEN"] not in text, f"{path} holds the admin token"


def test_no_plaintext_key_or_admin_token_in_airflow_logs_xcom_or_reports(env, tmp_path):
    """Runs a tiny journey (it creates and uses two API keys), then scans everything it leaves behind."""
    conf = {"tenant": "sec-scan", "n_users": 200, "n_items": 100, "n_interactions": 3000, "sample_users": 5}
    run = subprocess.run(
        [
            os.path.join(config.project_root(), ".venv", "bin", "airflow"),
            "dags",
            "test",
            "onboarding_journey",
            "2026-11-12",
            "-c",
            json.dumps(conf),
        ],
        cwd=config.project_root(),
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-3000:]
    newest = max(
        glob.glob(os.path.join(config.local_dir(), "reports", "*", "sec-scan", "report.json")), key=os.path.getmtime
    )
    with open(newest) as fh:
        stages = {s["name"]: s["status"] for s in json.load(fh)["stages"]}
    assert stages.get("query_recommendations") == "success", stages  # the stage that creates and uses keys ran

    leaks = [f"airflow dags test output: {m}" for m in PLAINTEXT_KEY.findall(console)]
    for root in ("reports", "airflow", "logs", "alerts"):
        for path in glob.glob(os.path.join(config.local_dir(), root, "**", "*"), recursive=True):
            if os.path.isfile(path) and os.path.getsize(path) < 50 * 1024 * 1024:
                with open(path, errors="replace") as fh:
                    text = fh.read()
                leaks += [f"{path}: {m[:12]}..." for m in PLAINTEXT_KEY.findall(text)]
                leaks += [f"{path}: the admin token"] if env["RECSYS_ADMIN_TOKEN"] in text else []
    conn = psycopg2.connect(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", ""))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT dag_id, run_id, task_id, key, value::text FROM xcom")
            for dag_id, run_id, task_id, key, value in cur.fetchall():
                leaks += [f"xcom {dag_id}/{run_id}/{task_id}/{key}" for _ in PLAINTEXT_KEY.findall(value or "")]
    finally:
        conn.close()
    assert console and not leaks, leaks[:10]


def test_rate_limit_answers_429_with_retry_after_then_recovers(env, admin, api, tenants):
    """The tenant's plan limits its key on the running API: a change applies at the next request, no restart."""
    assert load({**env, "RECSYS_RATE_LIMIT": ""}).rate_limit is None  # the stack's API: the plans decide
    slug = tenants["a"]["slug"]
    assert admin.get(f"/api/admin/tenants/{slug}/plan").json()["plan"] == "default"
    headers = {"Authorization": f"Bearer {tenants['key_a']}"}

    def call():
        return api.post("/api/v1/recommendations", json={"user_id": "u"}, headers=headers)

    assert call().status_code == 200  # the key's owner, with its plan, is now cached by the API
    changed = admin.put(f"/api/admin/tenants/{slug}/plan", json={"requests": 3, "window_s": 2})
    assert changed.status_code == 200, changed.text
    assert changed.json()["plan"] == f"custom-{slug}" and changed.json()["previous"]["plan"] == "default"
    # The request made before the change counts in the new window too: two more are admitted, not three.
    statuses = [call() for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    refused = statuses[2]
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert "3 requests per 2s" in refused.json()["error"] and f"custom-{slug}" in refused.json()["error"]
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2
    time.sleep(wait)
    assert call().status_code == 200
    # Back on the default plan: admitted at once, without waiting for the small window.
    assert admin.put(f"/api/admin/tenants/{slug}/plan", json={"plan": "default"}).status_code == 200
    assert [call().status_code for _ in range(10)] == [200] * 10
    audit = admin.get(
        "/api/admin/audit", params={"tenant_id": tenants["a"]["tenant_id"], "action": "tenant.plan_changed"}
    )
    changes = [(e["details"]["plan"], e["details"]["previous"]["plan"]) for e in audit.json()["entries"]]
    assert changes == [(f"custom-{slug}", "default"), ("default", f"custom-{slug}")]


def test_plans_are_named_validated_and_a_key_may_carry_its_own(admin, api, tenants):
    plans = {p["plan"]: p for p in admin.get("/api/admin/plans").json()["plans"]}
    assert {"default", "gateway", "probe"} <= set(plans)
    assert (plans["gateway"]["requests"], plans["gateway"]["window_s"]) == (60, 60.0)
    assert plans["default"]["per_second"] >= 1000  # production-sized (README: "Rate-limit plans")
    # Tenant a, the injection target: b is the bystander whose rows (audit included) must not move.
    slug = tenants["a"]["slug"]
    for bad, says in (
        ({"plan": "platinum"}, "no rate-limit plan 'platinum'; named plans: default, gateway, probe"),
        ({"requests": 10}, "give either plan (a named plan) or both requests and window_s"),
        ({"plan": "gateway", "requests": 10, "window_s": 1}, "give either plan"),
        ({"requests": 0, "window_s": 1}, "greater than or equal to 1"),
    ):
        response = admin.put(f"/api/admin/tenants/{slug}/plan", json=bad)
        assert response.status_code in (404, 422) and says in response.json()["error"], response.text
    assert admin.get(f"/api/admin/tenants/{slug}/plan").json()["plan"] == "default"  # nothing changed
    created = admin.post(f"/api/admin/tenants/{slug}/apikeys", json={"name": "probe", "plan": "probe"}).json()
    assert created["plan"] == "probe"
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    statuses = [api.post("/api/v1/recommendations", json={"user_id": "u"}, headers=headers) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429]
    assert statuses[-1].headers["retry-after"]
    # The tenant's other key follows the tenant's plan, untouched by the probe key's.
    other = {"Authorization": f"Bearer {tenants['key_a']}"}
    assert api.post("/api/v1/recommendations", json={"user_id": "u"}, headers=other).status_code == 200
    admin.delete(f"/api/admin/tenants/{slug}/apikeys/{created['id']}")
    assert api.post("/api/v1/recommendations", json={"user_id": "u"}, headers=headers).status_code == 401


def test_oversize_bodies_are_413_on_every_body_route(env, api, tenants):
    limit = load(env).max_body_bytes
    posts = [p for m, p in routes(load(env)) if m in ("POST", "PUT", "PATCH")]
    assert posts
    for path in posts:
        token = env["RECSYS_ADMIN_TOKEN"] if path.startswith("/api/admin") else tenants["key_a"]
        body = b'{"name": "' + b"x" * limit + b'"}'
        response = api.post(
            concrete(path, tenants["a"]["slug"]),
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large", path


def _snapshot(db, tenant_id: str) -> tuple[list, dict[str, int], dict[str, int]]:
    """Schema (tables, columns), every table's row count, and one tenant's rows per table."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        schema = cur.fetchall()
        counts, own = {}, {}
        for table in sorted({t for t, _c, _d in schema}):
            cur.execute(f'SELECT count(*) FROM "{table}"')  # names from the catalog, not from input
            counts[table] = cur.fetchone()[0]
            column = "id" if table == "tenants" else "tenant_id"
            if any(t == table and c == column for t, c, _d in schema):
                cur.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" = %s', (tenant_id,))
                own[table] = cur.fetchone()[0]
    return schema, counts, own


def test_injection_in_every_string_field_of_every_create_endpoint_changes_nothing(env, admin, db, s3, tenants):
    target, bystander = tenants["a"], tenants["b"]
    data = b"event_id,user_id,item_id,interaction_type,timestamp\ne1,u1,i1,view,2026-01-01T00:00:00+00:00\n"
    sha = sha256_bytes(data)
    # A model names the catalog upload it was trained on: the target's own, so the valid body is valid.
    catalog = b"item_id\ni1\n"
    storage.write(s3, config.RAW_BUCKET, f"{target['slug']}/inj-items.csv", catalog)
    catalog_upload = admin.post(
        f"/api/admin/tenants/{target['slug']}/uploads",
        json={
            "kind": "items",
            "bucket": config.RAW_BUCKET,
            "object_key": f"{target['slug']}/inj-items.csv",
            "rows": 1,
            "sha256": sha256_bytes(catalog),
            "source": "s",
        },
    )
    assert catalog_upload.status_code == 201, catalog_upload.text
    bodies = {  # a valid body per create endpoint; each string field gets each injection in turn
        "/api/admin/tenants": lambda: {
            "name": "n",
            "slug": f"inj-{uuid.uuid4().hex[:8]}",
            "email": "a@b.co",
            "source": "s",
        },
        "/api/admin/tenants/{tenant}/apikeys": lambda: {"name": "n", "plan": "default", "source": "s"},
        "/api/admin/tenants/{tenant}/uploads": lambda: {
            "kind": "interactions",
            "bucket": config.RAW_BUCKET,
            "object_key": f"{target['slug']}/inj.csv",
            "rows": 1,
            "sha256": sha,
            "source": "s",
        },
        "/api/admin/tenants/{tenant}/models": lambda: {
            "version": "inj-1",
            "metrics": {"ndcg": 0.1},
            "artifact_uri": "s3://recsys-models/x/",
            "source": "s",
            "catalog_upload_id": catalog_upload.json()["upload_id"],
        },
        "/api/admin/tenants/{tenant}/models/{version}/deploy": lambda: {"traffic_percent": 100, "source": "s"},
    }
    app = create_app(load(env))
    creates = {
        r.path: r
        for r in app.routes
        if isinstance(r, APIRoute) and "POST" in r.methods and r.path.startswith("/api/admin")
    }
    assert set(creates) == set(bodies), "a create endpoint was added or removed: give it a body here"
    for path, route in creates.items():
        annotation = route.body_field.field_info.annotation  # DeployIn | None for the optional deploy body
        (model,) = [t for t in (typing.get_args(annotation) or (annotation,)) if hasattr(t, "model_fields")]
        fields = {n for n, f in model.model_fields.items() if "str" in str(f.annotation) or "dict" in str(f.annotation)}
        assert fields <= set(bodies[path]()), (path, fields)
    storage.write(s3, config.RAW_BUCKET, f"{target['slug']}/inj.csv", data)
    for payload in INJECTIONS:
        storage.write(s3, config.RAW_BUCKET, f"{target['slug']}/{payload}", data)

    schema_before, counts_before, bystander_before = _snapshot(db, bystander["tenant_id"])
    statuses = []
    for path, body in bodies.items():
        url = concrete(path, target["slug"])
        for payload in INJECTIONS:
            for field, value in body().items():
                if isinstance(value, str):
                    injected = {**body(), field: payload}
                    if field == "object_key":
                        injected[field] = f"{target['slug']}/{payload}"
                elif isinstance(value, dict):
                    injected = {**body(), field: {payload: payload}}
                else:
                    continue
                statuses.append((path, field, admin.post(url, json=injected).status_code))
            statuses.append(
                (path, "X-Run-Key", admin.post(url, json=body(), headers={"X-Run-Key": payload}).status_code)
            )
            statuses.append((path, "{tenant}", admin.post(concrete(path, payload), json=body()).status_code))
    assert not [s for s in statuses if s[2] >= 500], [s for s in statuses if s[2] >= 500]
    assert {s[2] for s in statuses} >= {201, 404, 422}  # some stored verbatim, some refused, none executed

    schema_after, counts_after, bystander_after = _snapshot(db, bystander["tenant_id"])
    assert schema_after == schema_before
    assert bystander_after == bystander_before  # the tenant no payload was aimed at: not one row moved
    shrunk = {t: (counts_before[t], counts_after[t]) for t in counts_before if counts_after[t] < counts_before[t]}
    assert not shrunk, shrunk  # nothing deleted or truncated (others may add rows meanwhile, never remove)
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM tenants WHERE status <> 'active' AND id IN %s",
            ((target["tenant_id"], bystander["tenant_id"]),),
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM tenants WHERE name = %s", (INJECTIONS[0],))
        assert cur.fetchone()[0] >= 1  # stored as data


def test_audit_csv_export_escapes_formula_cells(local_api, env, tenants):
    client = local_api()
    admin_headers = {"Authorization": f"Bearer {env['RECSYS_ADMIN_TOKEN']}"}
    source = f"=cmd|' /C calc'!A0 {uuid.uuid4().hex[:6]}"
    created = client.post(
        f"/api/admin/tenants/{tenants['a']['slug']}/apikeys",
        json={"name": "@SUM(1+9)", "source": source},
        headers={**admin_headers, "X-Request-ID": "-2-3"},
    )
    assert created.status_code == 201, created.text
    exported = client.get("/api/admin/audit", params={"source": source, "format": "csv"}, headers=admin_headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1
    assert rows[0]["source"] == "'" + source and rows[0]["request_id"] == "'-2-3"
    assert not [cell for row in rows for cell in row.values() if cell.startswith(FORMULA_PREFIXES)]
    as_json = client.get("/api/admin/audit", params={"source": source}, headers=admin_headers).json()
    assert as_json["entries"][0]["source"] == source  # JSON is data, not a spreadsheet: left verbatim
