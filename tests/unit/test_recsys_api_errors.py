"""The API's error contract, with every dependency unreachable: errors stay JSON and nothing crashes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from include.recsys.api.app import create_app
from include.recsys.settings import load

ADMIN = {"Authorization": "Bearer unit-admin-token"}


@pytest.fixture(scope="module")
def client():
    settings = load(
        {
            # Port 1 refuses at once, so "dependency down" costs no waiting.
            "RECSYS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "RECSYS_S3_ENDPOINT": "127.0.0.1:1",
            "RECSYS_S3_ACCESS_KEY": "unit",
            "RECSYS_S3_SECRET_KEY": "unit-secret",
            "RECSYS_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "RECSYS_ADMIN_TOKEN": "unit-admin-token",
            "RECSYS_METRICS_TOKEN": "unit-scrape-token",
            "RECSYS_MAX_BODY_BYTES": "2048",
        }
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["error"], str) and body["error"]
    return body


def test_unknown_route_is_json_404(client):
    assert_error(client.get("/no/such/route"), 404, "not_found")


def test_wrong_method_is_json_405(client):
    assert_error(client.get("/api/v1/recommendations"), 405, "method_not_allowed")


def test_admin_routes_need_the_admin_token(client):
    response = client.post("/api/admin/tenants", json={"name": "x", "slug": "x", "email": "a@b.co"})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer unit-admin-tokeN"}
    assert_error(client.get("/api/admin/audit", headers=wrong), 401, "unauthorized")


def test_validation_errors_name_the_field(client):
    body = assert_error(
        client.post("/api/admin/tenants", json={"name": "x", "slug": "Bad Slug!", "email": "a@b.co"}, headers=ADMIN),
        422,
        "validation_error",
    )
    assert "slug" in body["error"]
    assert_error(client.post("/api/admin/tenants", content=b"{not json", headers=ADMIN), 422, "validation_error")


def test_recommendations_without_a_key_are_401_before_the_body_is_read(client):
    assert_error(client.post("/api/v1/recommendations", content=b"garbage"), 401, "unauthorized")
    assert_error(
        client.post("/api/v1/recommendations", json={"user_id": "u"}, headers={"Authorization": "Basic x"}),
        401,
        "unauthorized",
    )


def test_oversize_bodies_are_413_with_or_without_content_length(client):
    assert_error(client.post("/api/v1/recommendations", content=b"x" * 4096), 413, "payload_too_large")

    def chunks():
        for _ in range(4):
            yield b"x" * 1024

    assert_error(client.post("/api/admin/tenants", content=chunks(), headers=ADMIN), 413, "payload_too_large")


def test_writes_during_a_database_outage_are_503(client):
    response = client.post("/api/admin/tenants", json={"name": "x", "slug": "x", "email": "a@b.co"}, headers=ADMIN)
    body = assert_error(response, 503, "database_unavailable")
    assert "127.0.0.1" not in body["error"]  # connection details stay in the log


def test_health_names_every_failing_dependency(client):
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["database", "kafka", "storage"]
    assert all(not check["ok"] and check["error"] for check in body["checks"].values())


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/nope", headers={"X-Request-ID": "run-42.a"}).headers["x-request-id"] == "run-42.a"
    generated = client.get("/nope", headers={"X-Request-ID": "bad id\twith junk"}).headers["x-request-id"]
    assert len(generated) == 32 and generated != "bad id\twith junk"


def test_metrics_are_prometheus_text(client):
    client.get("/no/such/route")
    text = client.get("/metrics", headers={"Authorization": "Bearer unit-scrape-token"}).text
    assert "# TYPE recsys_http_requests_total counter" in text
    assert 'recsys_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'recsys_http_request_duration_seconds_bucket{method="GET",route="unmatched",status="404",le="+Inf"}' in text


def test_metrics_need_the_scrape_or_admin_token_and_say_which_dependency_is_down(client):
    for headers in ({}, {"Authorization": "Bearer unit-scrape-tokeN"}, {"Authorization": "unit-scrape-token"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and "RECSYS_METRICS_TOKEN" in refused.json()["error"], headers
        assert refused.headers["www-authenticate"] == "Bearer"
    for token in ("unit-scrape-token", "unit-admin-token"):
        text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
        # Every dependency of this client is down (port 1), and the health gauges say so per check.
        assert (
            'recsys_health_check_up{check="database"} 0' in text and 'recsys_health_check_up{check="kafka"} 0' in text
        )


def test_admin_token_is_compared_in_constant_time_on_the_request_path(client, compare_digest_calls):
    calls = compare_digest_calls
    wrong = {"Authorization": "Bearer unit-admin-tokeN"}
    assert_error(client.get("/api/admin/audit", headers=wrong), 401, "unauthorized")
    assert calls == [(b"unit-admin-tokeN", b"unit-admin-token")]
    # The right token passes the check (the database being down is what answers then).
    assert_error(client.get("/api/admin/audit", headers=ADMIN), 503, "database_unavailable")
    assert calls[-1] == (b"unit-admin-token", b"unit-admin-token") and len(calls) == 2
