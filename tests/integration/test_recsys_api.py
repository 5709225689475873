"""The serving API against the real stack: deploy then recommend, auth and isolation, limits,
injection, audit, and a restart that keeps serving.

A second API process started here (own port, low rate limit) covers the restart and the 429 without
touching the stack's API, which other tests and DAG runs share.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
import psycopg2
import pytest

from include import config
from include.checksums import sha256_bytes
from include.recsys import storage
from include.recsys.contract import artifacts as model_artifacts
from include.recsys.contract.schema import CATEGORIES

N_ITEMS, N_USERS, DIM = 300, 40, 16
INJECTION = "'; DROP TABLE users; --"


def item_rows() -> list[dict]:
    return [
        {
            "item_id": f"item_{i:04d}",
            "title": f"Item {i}",
            "category": CATEGORIES[i % 5],
            "price": f"{10 + i}.99",
            "image_url": f"https://img.example/{i}.jpg",
        }
        for i in range(N_ITEMS)
    ]


def csv_bytes(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def items_csv() -> bytes:
    return csv_bytes(item_rows())


def register_catalog(admin, s3, tenant: dict, run_key: str, rows: list[dict]) -> dict:
    """Uploads a catalog CSV with whatever columns ``rows`` have and registers it; returns the API's answer."""
    data = csv_bytes(rows)
    object_key = f"{tenant['slug']}/{run_key}/items.csv"
    storage.write(s3, config.RAW_BUCKET, object_key, data, content_type="text/csv")
    upload = {
        "kind": "items",
        "bucket": config.RAW_BUCKET,
        "object_key": object_key,
        "rows": len(rows),
        "sha256": sha256_bytes(data),
        "source": run_key,
    }
    response = admin.post(f"/api/admin/tenants/{tenant['tenant_id']}/uploads", json=upload)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def serving_tenant(new_tenant, admin, db, s3):
    """Makes tenants with a catalog, users' history and model artifacts in the models bucket (nothing
    registered): ``serving_tenant(prefix, seed=3)``. Every such tenant has the same item and user ids, and
    ``seed`` draws its embeddings."""

    def make(prefix: str, *, seed: int = 3) -> dict:
        run_key = f"api-test-{uuid.uuid4().hex[:8]}"
        tenant = new_tenant(prefix, run_key)
        assert register_catalog(admin, s3, tenant, run_key, item_rows())["items_upserted"] == N_ITEMS

        history = {f"user_{u:03d}": [f"item_{(u * 7 + j) % N_ITEMS:04d}" for j in range(5)] for u in range(N_USERS)}
        with db.cursor() as cur:
            for user, items in history.items():
                for j, item in enumerate(items):
                    cur.execute(
                        "INSERT INTO interactions (event_id, tenant_id, user_id, item_id, interaction_type, ts, source,"
                        " kafka_partition, kafka_offset) VALUES (%s, %s, %s, %s, 'view', now(), %s, 0, 0)",
                        (f"{run_key}-{user}-{j}", tenant["tenant_id"], user, item, run_key),
                    )
        rng = np.random.default_rng(seed)
        artifacts = model_artifacts.TrainResult(
            item_ids=[f"item_{i:04d}" for i in range(N_ITEMS)],
            item_embeddings=rng.normal(size=(N_ITEMS, DIM)).astype(np.float32),
            user_ids=list(history),
            user_embeddings=rng.normal(size=(N_USERS, DIM)).astype(np.float32),
            popular_items=[f"item_{i:04d}" for i in range(N_ITEMS)],
            config={"dim": DIM},
            metrics={"ndcg_at_10": 0.41, "recall_at_10": 0.2, "popularity_ndcg_at_10": 0.1},
        )
        uri = model_artifacts.save_artifacts(
            artifacts, client=s3, bucket=config.MODELS_BUCKET, prefix=f"{tenant['slug']}/v1/"
        )["artifact_uri"]
        return {"tenant": tenant, "history": history, "artifacts": artifacts, "artifact_uri": uri, "run_key": run_key}

    return make


@pytest.fixture(scope="module")
def deployed(serving_tenant, admin, new_key):
    """A tenant with catalog, history, a registered and deployed model (no logical date), and an API key."""
    made = serving_tenant("serve")
    tenant, artifacts, uri, run_key = made["tenant"], made["artifacts"], made["artifact_uri"], made["run_key"]
    response = admin.post(
        f"/api/admin/tenants/{tenant['slug']}/models",
        json={"version": "v1", "metrics": artifacts.metrics, "artifact_uri": uri, "source": run_key},
    )
    assert response.status_code == 201, response.text
    response = admin.post(
        f"/api/admin/tenants/{tenant['slug']}/models/v1/deploy", json={"traffic_percent": 100, "source": run_key}
    )
    assert response.status_code == 200, response.text
    assert response.json()["index_size"] == N_ITEMS
    return {**made, "key": new_key(tenant, run_key)}


def recommend(api, key: str, body: dict, **kwargs) -> httpx.Response:
    return api.post(
        "/api/v1/recommendations",
        json=body,
        headers={"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})},
        **kwargs,
    )


def test_deployed_model_serves_sorted_unseen_items(api, admin, deployed):
    tenant = deployed["tenant"]
    assert admin.get(f"/api/admin/tenants/{tenant['slug']}/deployment").json()["version"] == "v1"
    models = admin.get(f"/api/admin/tenants/{tenant['tenant_id']}/models").json()
    assert models["serving_version"] == "v1"
    assert [(m["version"], m["status"], m["deployed"]) for m in models["models"]] == [("v1", "deployed", True)]

    response = recommend(api, deployed["key"], {"user_id": "user_007", "count": 10}, headers={"X-Request-ID": "req-7"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "v1" and body["fallback"] is False and body["request_id"] == "req-7"
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 10 == len(set(ids))
    assert not set(ids) & set(deployed["history"]["user_007"])
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    a = deployed["artifacts"]
    expected = a.item_embeddings @ a.user_embeddings[a.user_ids.index("user_007")]
    assert scores[0] == pytest.approx(
        float(max(s for i, s in zip(a.item_ids, expected, strict=True) if i not in deployed["history"]["user_007"])),
        rel=1e-4,
    )


def test_category_filter_and_fallback(api, deployed):
    body = recommend(
        api, deployed["key"], {"user_id": "user_001", "count": 5, "filters": {"category": CATEGORIES[2]}}
    ).json()
    assert len(body["items"]) == 5 and {i["category"] for i in body["items"]} == {CATEGORIES[2]}
    cold = recommend(api, deployed["key"], {"user_id": "never-seen", "count": 3}).json()
    assert cold["fallback"] is True and [i["item_id"] for i in cold["items"]] == ["item_0000", "item_0001", "item_0002"]


def test_tenant_isolation_on_every_route(api, admin, deployed, new_tenant, new_key):
    other = new_tenant("other", deployed["run_key"])
    other_key = new_key(other, deployed["run_key"])
    tenant = deployed["tenant"]
    auth = {"Authorization": f"Bearer {other_key}"}
    assert recommend(api, other_key, {"user_id": "user_001", "tenant_id": tenant["tenant_id"]}).status_code == 403
    for ref in (tenant["tenant_id"], tenant["slug"]):
        assert (
            api.post(f"/api/v1/tenants/{ref}/recommendations", json={"user_id": "user_001"}, headers=auth).status_code
            == 403
        )
        assert api.get(f"/api/v1/tenants/{ref}/items/item_0001", headers=auth).status_code == 403
    own = {"Authorization": f"Bearer {deployed['key']}"}
    item = api.get(f"/api/v1/tenants/{tenant['slug']}/items/item_0001", headers=own)
    assert item.status_code == 200 and item.json()["category"] == CATEGORIES[1]
    assert (
        api.post(
            f"/api/v1/tenants/{tenant['tenant_id']}/recommendations", json={"user_id": "user_001"}, headers=own
        ).status_code
        == 200
    )
    # The other tenant has no model: it gets its own (empty-catalog) fallback, never this tenant's items.
    body = recommend(api, other_key, {"user_id": "user_001"}).json()
    assert body["fallback"] is True and body["items"] == []


def test_auth_validation_and_size_errors(api, deployed):
    assert api.post("/api/v1/recommendations", json={"user_id": "u"}).json()["code"] == "unauthorized"
    assert recommend(api, "rk_not-a-real-key", {"user_id": "u"}).status_code == 401
    for bad in (
        {"count": 5},
        {"user_id": "u", "count": 0},
        {"user_id": "u", "count": 101},
        {"user_id": "u", "filters": {"category": ""}},
        {"user_id": "u", "filters": {"category": "x" * 129}},
    ):
        response = recommend(api, deployed["key"], bad)
        assert response.status_code == 422 and response.json()["code"] == "validation_error", (bad, response.text)
    big = api.post(
        "/api/v1/recommendations",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"Authorization": f"Bearer {deployed['key']}"},
    )
    assert big.status_code == 413 and big.json()["code"] == "payload_too_large"


def test_upload_checksum_and_row_count_are_verified(admin, s3, deployed):
    tenant = deployed["tenant"]
    data = items_csv()
    key = f"{tenant['slug']}/{deployed['run_key']}/items-check.csv"
    storage.write(s3, config.RAW_BUCKET, key, data)
    base = {
        "kind": "items",
        "bucket": config.RAW_BUCKET,
        "object_key": key,
        "rows": N_ITEMS,
        "sha256": sha256_bytes(data),
    }
    wrong_sha = admin.post(f"/api/admin/tenants/{tenant['slug']}/uploads", json={**base, "sha256": "0" * 64})
    assert wrong_sha.status_code == 422 and wrong_sha.json()["code"] == "checksum_mismatch"
    wrong_rows = admin.post(f"/api/admin/tenants/{tenant['slug']}/uploads", json={**base, "rows": N_ITEMS + 1})
    assert wrong_rows.status_code == 422 and "registered 301 rows, object has 300" in wrong_rows.json()["error"]
    first = admin.post(f"/api/admin/tenants/{tenant['slug']}/uploads", json=base).json()
    again = admin.post(f"/api/admin/tenants/{tenant['slug']}/uploads", json=base).json()
    assert first["upload_id"] == again["upload_id"]  # re-registering upserts


def test_injection_strings_change_nothing_but_data(api, admin, db, s3, deployed):
    def snapshot():
        with db.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
            tables = [r[0] for r in cur.fetchall()]
            counts = {}
            for table in tables:
                cur.execute(f'SELECT count(*) FROM "{table}"')  # names come from the catalog, not input
                counts[table] = cur.fetchone()[0]
        return tables, counts

    tables_before, counts_before = snapshot()
    tenant, key = deployed["tenant"], deployed["key"]
    headers = {"Authorization": f"Bearer {key}"}
    created = admin.post(
        "/api/admin/tenants",
        json={"name": INJECTION, "slug": f"inj-{uuid.uuid4().hex[:6]}", "email": "a@b.co", "source": INJECTION},
    )
    assert created.status_code == 201 and created.json()["name"] == INJECTION
    assert admin.post("/api/admin/tenants", json={"name": "x", "slug": INJECTION, "email": "a@b.co"}).status_code == 422
    assert admin.post("/api/admin/tenants", json={"name": "x", "slug": "x-inj", "email": INJECTION}).status_code == 422
    assert admin.get(f"/api/admin/tenants/{INJECTION}").status_code == 404
    assert (
        admin.post(
            f"/api/admin/tenants/{tenant['slug']}/apikeys", json={"name": INJECTION, "source": INJECTION}
        ).status_code
        == 201
    )
    data = items_csv()
    object_key = f"{tenant['slug']}/{INJECTION}.csv"
    storage.write(s3, config.RAW_BUCKET, object_key, data)
    upload = admin.post(
        f"/api/admin/tenants/{tenant['slug']}/uploads",
        json={
            "kind": "interactions",
            "bucket": config.RAW_BUCKET,
            "object_key": object_key,
            "rows": N_ITEMS,
            "sha256": sha256_bytes(data),
            "source": INJECTION,
        },
    )
    assert upload.status_code == 201, upload.text
    assert (
        admin.post(
            f"/api/admin/tenants/{tenant['slug']}/uploads",
            json={"kind": INJECTION, "bucket": config.RAW_BUCKET, "object_key": "k", "rows": 1, "sha256": "0" * 64},
        ).status_code
        == 422
    )
    assert (
        admin.post(
            f"/api/admin/tenants/{tenant['slug']}/models", json={"version": INJECTION, "artifact_uri": "s3://b/k/"}
        ).status_code
        == 422
    )
    assert admin.post(f"/api/admin/tenants/{tenant['slug']}/models/{INJECTION}/deploy", json={}).status_code == 404
    assert (
        admin.get(
            "/api/admin/audit", params={"tenant_id": tenant["tenant_id"], "action": INJECTION, "source": INJECTION}
        ).json()["count"]
        == 0
    )
    body = recommend(api, key, {"user_id": INJECTION, "count": 3, "source": INJECTION}).json()
    assert body["user_id"] == INJECTION and body["fallback"] is True
    # A category is the tenant's own text: an injection attempt is just a category nobody's catalog has.
    injected = recommend(api, key, {"user_id": "u", "filters": {"category": INJECTION}})
    assert injected.status_code == 200 and injected.json()["items"] == []
    assert api.get(f"/api/v1/tenants/{tenant['slug']}/items/{INJECTION}", headers=headers).status_code == 404
    assert recommend(api, key, {"user_id": "u", "tenant_id": INJECTION}).status_code == 403

    tables_after, counts_after = snapshot()
    assert tables_after == tables_before
    assert all(counts_after[t] >= counts_before[t] for t in tables_before), (counts_before, counts_after)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM tenants WHERE name = %s", (INJECTION,))
        assert cur.fetchone()[0] >= 1  # stored verbatim, as data


def test_every_action_is_audited_and_the_log_is_append_only(admin, api, db, deployed):
    run_key, tenant = deployed["run_key"], deployed["tenant"]
    for _ in range(3):
        recommend(api, deployed["key"], {"user_id": "user_002"}, headers={"X-Run-Key": run_key})
    wanted = {
        "tenant.created",
        "apikey.created",
        "upload.registered",
        "model.registered",
        "model.deployed",
        "recommendations.served",
    }
    deadline = time.monotonic() + 20  # served counts are flushed every few seconds
    while True:
        entries = admin.get("/api/admin/audit", params={"tenant_id": tenant["slug"], "source": run_key}).json()[
            "entries"
        ]
        actions = {e["action"] for e in entries}
        if wanted <= actions or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert wanted <= actions, f"missing audit actions: {wanted - actions}"
    assert all(e["tenant_id"] == tenant["tenant_id"] and e["source"] == run_key for e in entries)
    assert sum(e["details"]["count"] for e in entries if e["action"] == "recommendations.served") >= 3
    assert all("api_key" not in e["details"] for e in entries)
    exported = admin.get(
        "/api/admin/audit", params={"tenant_id": tenant["tenant_id"], "source": run_key, "format": "csv"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == len(entries)
    with db.cursor() as cur, pytest.raises(psycopg2.Error, match="append-only"):
        cur.execute("UPDATE audit_log SET actor = 'x' WHERE id = %s", (entries[0]["id"],))
    with db.cursor() as cur, pytest.raises(psycopg2.Error, match="append-only"):
        cur.execute("DELETE FROM audit_log WHERE id = %s", (entries[0]["id"],))


def test_three_hundred_sequential_requests_on_one_default_plan_key_are_all_served(api, deployed, new_key):
    """The default plan carries a storefront's sequential traffic on one key (latency is the bench's, not a test's)."""
    key = new_key(deployed["tenant"], deployed["run_key"])
    statuses = [
        recommend(api, key, {"user_id": f"user_{n % N_USERS:03d}", "count": 10}).status_code for n in range(300)
    ]
    assert statuses == [200] * 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def own_api(env, tmp_path):
    """Starts this test's own API process (given extra env); stops it after."""
    started = []

    def start(**overrides: str) -> httpx.Client:
        port = _free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "include.recsys.api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=config.project_root(),
            env={**os.environ, **overrides},
            stdout=open(tmp_path / f"api-{port}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        started.append((proc, client))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if client.get("/health").status_code == 200:
                    return client
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError(f"own API did not get healthy: {(tmp_path / f'api-{port}.log').read_text()[-2000:]}")

    yield start
    for proc, client in started:
        client.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_a_restarted_api_serves_the_active_deployment(own_api, deployed):
    fresh = own_api()
    tenant = deployed["tenant"]
    response = fresh.get(
        f"/api/admin/tenants/{tenant['slug']}/deployment",
        headers={"Authorization": f"Bearer {os.environ['RECSYS_ADMIN_TOKEN']}"},
    )
    assert (
        response.status_code == 200 and response.json()["version"] == "v1" and response.json()["index_size"] == N_ITEMS
    )
    body = recommend(fresh, deployed["key"], {"user_id": "user_003"}).json()
    assert body["model_version"] == "v1" and body["fallback"] is False
    gauge = f'recsys_model_info{{tenant_id="{tenant["tenant_id"]}",version="v1"}} 1'
    assert gauge in fresh.get("/metrics", headers={"Authorization": f"Bearer {os.environ['RECSYS_ADMIN_TOKEN']}"}).text


def test_recsys_rate_limit_overrides_every_plan_of_one_api_start(own_api, deployed):
    limited = own_api(RECSYS_RATE_LIMIT="5/60")
    statuses = [recommend(limited, deployed["key"], {"user_id": "user_004"}) for _ in range(8)]
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 3
    refused = statuses[-1]
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_each_catalog_upload_is_a_snapshot_and_a_model_serves_its_own(admin, api, db, s3, new_tenant, new_key):
    """A tenant re-onboarded with a new catalog: the model trained on it is indexed and filtered by that catalog's
    categories (the tenant's own taxonomy), not by the union of everything it ever sent."""
    run_key = f"snap-{uuid.uuid4().hex[:8]}"
    tenant = new_tenant("snapshot", run_key)
    # The first catalog has only ids: no title, category or price at all.
    first = register_catalog(admin, s3, tenant, f"{run_key}-1", [{"item_id": f"m{i}"} for i in range(6)])
    second = register_catalog(
        admin,
        s3,
        tenant,
        f"{run_key}-2",
        [
            {
                "item_id": f"m{i}",
                "title": f"Movie {i}",
                "category": "Film-Noir" if i % 2 else "Comedy|Drama",
                "price": "",
            }
            for i in range(3, 9)
        ],
    )
    with db.cursor() as cur:
        cur.execute(
            "SELECT upload_id, count(*), count(category) FROM catalog_items WHERE tenant_id = %s GROUP BY upload_id",
            (tenant["tenant_id"],),
        )
        assert sorted(cur.fetchall(), key=lambda r: r[0] != first["upload_id"]) == [
            (first["upload_id"], 6, 0),
            (second["upload_id"], 6, 6),
        ]
        cur.execute(
            "SELECT count(*), count(title), count(price) FROM items WHERE tenant_id = %s", (tenant["tenant_id"],)
        )
        assert cur.fetchone() == (9, 6, 0)  # the merged catalog: every item ever sent, latest values win

    items = [f"m{i}" for i in range(3, 9)]
    rng = np.random.default_rng(5)
    artifacts = model_artifacts.TrainResult(
        item_ids=items,
        item_embeddings=rng.normal(size=(6, DIM)).astype(np.float32),
        user_ids=["u1"],
        user_embeddings=rng.normal(size=(1, DIM)).astype(np.float32),
        popular_items=items,
        config={"dim": DIM},
        metrics={"ndcg_at_10": 0.3},
    )
    uri = model_artifacts.save_artifacts(
        artifacts, client=s3, bucket=config.MODELS_BUCKET, prefix=f"{tenant['slug']}/v2/"
    )["artifact_uri"]
    model = {"version": "v2", "artifact_uri": uri, "source": run_key}
    other = new_tenant("snapshot-other", run_key)
    refused = admin.post(
        f"/api/admin/tenants/{other['slug']}/models", json={**model, "catalog_upload_id": second["upload_id"]}
    )
    assert refused.status_code == 422 and "must name an items upload of tenant" in refused.json()["error"]
    registered = admin.post(
        f"/api/admin/tenants/{tenant['slug']}/models", json={**model, "catalog_upload_id": second["upload_id"]}
    )
    assert registered.status_code == 201 and registered.json()["catalog_upload_id"] == second["upload_id"]
    deployed = admin.post(f"/api/admin/tenants/{tenant['slug']}/models/v2/deploy", json={"source": run_key})
    assert deployed.status_code == 200 and deployed.json()["index_size"] == 6

    key = new_key(tenant, run_key)
    body = recommend(api, key, {"user_id": "u1", "count": 10, "filters": {"category": "Film-Noir"}}).json()
    assert {i["item_id"] for i in body["items"]} == {"m3", "m5", "m7"}
    assert {i["category"] for i in body["items"]} == {"Film-Noir"}


def audited(admin, tenant: dict, action: str, object_ref: str) -> list[dict]:
    entries = admin.get("/api/admin/audit", params={"tenant_id": tenant["tenant_id"], "action": action}).json()
    return [e for e in entries["entries"] if e["object"] == object_ref]


def test_api_keys_are_a_resource_and_a_revoked_key_answers_401_at_once(api, admin, deployed, new_tenant):
    tenant, run_key = deployed["tenant"], deployed["run_key"]
    created = admin.post(
        f"/api/admin/tenants/{tenant['slug']}/apikeys", json={"name": "to revoke"}, headers={"X-Run-Key": run_key}
    ).json()
    assert recommend(api, created["api_key"], {"user_id": "user_005"}).status_code == 200  # now cached by the API
    listed = admin.get(f"/api/admin/tenants/{tenant['slug']}/apikeys", params={"source": run_key, "active": "true"})
    mine = next(k for k in listed.json()["api_keys"] if k["id"] == created["id"])
    assert mine == {
        "id": created["id"],
        "tenant_id": tenant["tenant_id"],
        "name": "to revoke",
        "prefix": created["prefix"],
        "source": run_key,
        "plan": None,
        "created_at": mine["created_at"],
        "revoked_at": None,
        "active": True,
    }
    assert created["api_key"] not in listed.text and "hash" not in listed.text

    revoked = admin.delete(f"/api/admin/tenants/{tenant['slug']}/apikeys/{created['id']}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False and revoked.json()["revoked_at"]
    refused = recommend(api, created["api_key"], {"user_id": "user_005"})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    again = admin.delete(f"/api/admin/tenants/{tenant['tenant_id']}/apikeys/{created['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert len(audited(admin, tenant, "apikey.revoked", f"apikey:{created['id']}")) == 1  # the second changed nothing
    assert admin.get(f"/api/admin/tenants/{tenant['slug']}/apikeys/{created['id']}").json()["active"] is False
    still_active = admin.get(f"/api/admin/tenants/{tenant['slug']}/apikeys", params={"active": "true"}).json()
    assert created["id"] not in {k["id"] for k in still_active["api_keys"]}

    other = new_tenant("keyless", run_key)
    elsewhere = admin.delete(f"/api/admin/tenants/{other['slug']}/apikeys/{created['id']}")
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "apikey_not_found"
    assert recommend(api, deployed["key"], {"user_id": "user_005"}).status_code == 200  # other keys unaffected


def register(admin, made: dict, version: str, logical_date: str | None) -> None:
    body = {"version": version, "artifact_uri": made["artifact_uri"], "source": made["run_key"]}
    response = admin.post(
        f"/api/admin/tenants/{made['tenant']['slug']}/models", json={**body, "logical_date": logical_date}
    )
    assert response.status_code == 201, response.text


def deploy(admin, made: dict, version: str, **body) -> httpx.Response:
    return admin.post(f"/api/admin/tenants/{made['tenant']['slug']}/models/{version}/deploy", json=body)


def test_an_older_model_never_replaces_a_newer_live_one_and_serves_only_when_pinned(
    api, admin, db, s3, new_key, serving_tenant
):
    made = serving_tenant("dated")
    slug, key = made["tenant"]["slug"], new_key(made["tenant"], made["run_key"])
    register(admin, made, "v-1110", "2026-11-10T00:00:00+00:00")
    register(admin, made, "v-1105", "2026-11-05T00:00:00+00:00")
    register(admin, made, "v-undated", None)
    live = deploy(admin, made, "v-1110", protect_newer_live=True)
    assert live.status_code == 200 and live.json()["role"] == "live" and live.json()["replaced"] is None

    refused = deploy(admin, made, "v-1105", protect_newer_live=True)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "live_model_newer"
    assert refused.json()["live_version"] == "v-1110"
    assert refused.json()["live_logical_date"] == "2026-11-10T00:00:00+00:00"
    undated = deploy(admin, made, "v-undated", protect_newer_live=True)
    assert undated.status_code == 409 and undated.json()["code"] == "live_model_newer"  # its age is unknown

    candidate = deploy(admin, made, "v-1105", traffic_percent=0)
    assert candidate.status_code == 200 and candidate.json()["role"] == "candidate", candidate.text
    active = admin.get(f"/api/admin/tenants/{slug}/deployments").json()["deployments"]
    assert [(d["version"], d["role"], d["traffic_percent"], d["served"]) for d in active] == [
        ("v-1110", "live", 100, True),
        ("v-1105", "candidate", 0, True),
    ]
    assert admin.get(f"/api/admin/tenants/{slug}/deployment").json()["version"] == "v-1110"
    assert recommend(api, key, {"user_id": "user_001"}).json()["model_version"] == "v-1110"
    assert recommend(api, key, {"user_id": "user_001", "model_version": "v-1105"}).json()["model_version"] == "v-1105"
    unknown = recommend(api, key, {"user_id": "user_001", "model_version": "v-undated"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "model_version_not_served"

    def rows() -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(
                "SELECT id, version, role, active FROM deployments WHERE tenant_id = %s ORDER BY id",
                (made["tenant"]["tenant_id"],),
            )
            return cur.fetchall()

    before = rows()
    assert deploy(admin, made, "v-1105", traffic_percent=0).json()["reused"] is True
    assert deploy(admin, made, "v-1110", protect_newer_live=True).json()["reused"] is True
    assert rows() == before  # validating the same versions again adds no deployment row

    ended = admin.delete(f"/api/admin/tenants/{slug}/deployments/{candidate.json()['deployment_id']}")
    assert ended.status_code == 200 and ended.json()["active"] is False and ended.json()["ended_at"]
    gone = recommend(api, key, {"user_id": "user_001", "model_version": "v-1105"})
    assert gone.status_code == 404
    assert len(audited(admin, made["tenant"], "model.undeployed", "model:v-1105")) == 1
    live_end = admin.delete(f"/api/admin/tenants/{slug}/deployments/{live.json()['deployment_id']}")
    assert live_end.status_code == 409 and live_end.json()["code"] == "live_deployment"
    again = deploy(admin, made, "v-1105", traffic_percent=0)
    assert again.json()["deployment_id"] == candidate.json()["deployment_id"]  # the one candidate row, reused

    # An operator may still roll back on purpose: without protect_newer_live the older model goes live.
    rollback = deploy(admin, made, "v-1105")
    assert rollback.status_code == 200 and rollback.json()["replaced"] == "v-1110"
    assert recommend(api, key, {"user_id": "user_001"}).json()["model_version"] == "v-1105"
    active = admin.get(f"/api/admin/tenants/{slug}/deployments").json()["deployments"]
    assert [d["version"] for d in active] == ["v-1105"]


def test_a_live_model_without_a_logical_date_is_protected(admin, deployed):
    # deployed's v1 was registered without a logical date: nobody can tell a dated model is newer.
    register(admin, deployed, "v2-dated", "2026-11-20T00:00:00+00:00")
    refused = deploy(admin, deployed, "v2-dated", protect_newer_live=True)
    assert refused.status_code == 409 and refused.json()["code"] == "live_model_undated"
    assert refused.json()["live_version"] == "v1" and refused.json()["live_logical_date"] is None
    assert admin.get(f"/api/admin/tenants/{deployed['tenant']['slug']}/deployment").json()["version"] == "v1"


def test_only_a_tenant_holding_nothing_can_be_deleted(admin, deployed, new_tenant):
    probe = new_tenant("probe", deployed["run_key"])
    gone = admin.delete(f"/api/admin/tenants/{probe['slug']}")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert admin.get(f"/api/admin/tenants/{probe['slug']}").status_code == 404
    assert len(audited(admin, probe, "tenant.deleted", f"tenant:{probe['slug']}")) == 1

    held = admin.delete(f"/api/admin/tenants/{deployed['tenant']['slug']}")
    assert held.status_code == 409 and held.json()["code"] == "tenant_not_empty"
    assert {"api_keys", "items", "interactions", "model_versions"} <= set(held.json()["holds"])
    assert admin.get(f"/api/admin/tenants/{deployed['tenant']['slug']}").status_code == 200


def metric(text: str, name: str) -> float:
    """One sample's value from a /metrics text, e.g. 'recsys_cache_requests_total{result="hit"}'."""
    return float(next(line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + " ")))


def test_cached_answers_never_cross_tenants_with_the_same_user_ids_and_version(
    api, admin, db, s3, deployed, new_key, serving_tenant
):
    """Both tenants serve a "v1" over the same item and user ids, with different embeddings: a cache keyed
    by anything less than the tenant would hand one tenant the other's answer."""
    other = serving_tenant("serve-twin", seed=4)
    tenant, run_key = other["tenant"], other["run_key"]
    admin.post(
        f"/api/admin/tenants/{tenant['slug']}/models",
        json={"version": "v1", "metrics": other["artifacts"].metrics, "artifact_uri": other["artifact_uri"]},
    ).raise_for_status()
    admin.post(f"/api/admin/tenants/{tenant['slug']}/models/v1/deploy", json={}).raise_for_status()
    twin_key = new_key(tenant, run_key)
    for user in ("user_001", "user_002", "user_003"):
        for body in (
            {"user_id": user, "count": 5},
            {"user_id": user, "count": 5, "filters": {"category": CATEGORIES[1]}},
        ):
            first = recommend(api, deployed["key"], body).json()
            assert recommend(api, deployed["key"], body).json()["cached"] is True  # the first tenant's is in Redis
            twin = recommend(api, twin_key, body).json()
            assert twin["cached"] is False, "the twin tenant was served from the first tenant's entry"
            assert [i["item_id"] for i in twin["items"]] != [i["item_id"] for i in first["items"]]
            # Each tenant's answer is its own model's: the exact inner-product top 5 of unseen (filtered) items.
            for answer, made in ((first, deployed), (twin, other)):
                art = made["artifacts"]
                scores = art.item_embeddings @ art.user_embeddings[art.user_ids.index(user)]
                seen = set(made["history"][user])
                eligible = [
                    i
                    for i in np.argsort(-scores)
                    if art.item_ids[i] not in seen
                    and ("filters" not in body or CATEGORIES[i % 5] == body["filters"]["category"])
                ]
                assert [i["item_id"] for i in answer["items"]] == [art.item_ids[i] for i in eligible[:5]]
            assert recommend(api, twin_key, body).json() | {"latency_ms": 0, "request_id": ""} == twin | {
                "latency_ms": 0,
                "request_id": "",
                "cached": True,
            }


def test_hits_are_counted_in_metrics_and_a_deploy_drops_its_version_s_entries(api, admin, deployed):
    tenant = deployed["tenant"]
    body = {"user_id": "user_007", "count": 4}
    recommend(api, deployed["key"], body)
    before = admin.get("/metrics").text
    assert recommend(api, deployed["key"], body).json()["cached"] is True
    after = admin.get("/metrics").text
    name = 'recsys_cache_requests_total{result="hit"}'
    assert metric(after, name) == metric(before, name) + 1
    assert 0 < metric(after, "recsys_cache_hit_ratio") <= 1
    redeployed = admin.post(f"/api/admin/tenants/{tenant['slug']}/models/v1/deploy", json={})
    assert redeployed.status_code == 200 and redeployed.json()["cache_entries_dropped"] >= 1
    assert recommend(api, deployed["key"], body).json()["cached"] is False
    assert recommend(api, deployed["key"], body).json()["cached"] is True
