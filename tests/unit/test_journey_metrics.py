"""plugins/ui/metrics.py: the history store's latest rows as Prometheus series, and who may scrape them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from include.config import METRICS_TOKEN_ENV
from plugins.ui import metrics

PASSED = {
    "dag_id": "onboarding_journey",
    "tenant": "canary",
    "logical_date": date(2026, 12, 1),
    "success": True,
    "failed_stage": None,
    "stages": {
        "seed_data": {"status": "success", "duration_s": 1.5, "evaluated": 40, "unsuccessful": 0},
        "train_model": {"status": "success", "duration_s": 31.25, "evaluated": 9, "unsuccessful": 0},
    },
    "model": {"ndcg_at_10": 0.335, "ndcg_lift": 10.2, "version": "v20261201"},
    "recommendations": {"p95_ms": 37.0, "error_rate": 0.0, "requests": 200},
    "trend": {"regressions": ["feed_kafka.duration_s"], "figures": {}},
    "written_at": datetime(2026, 12, 2, 0, 5, tzinfo=UTC),
    "last_success_at": datetime(2026, 12, 2, 0, 5, tzinfo=UTC),
}
FAILED = {
    **PASSED,
    "tenant": "acme",
    "success": False,
    "failed_stage": "seed_data",
    "stages": {"seed_data": {"status": "failed", "duration_s": 2.0, "evaluated": 40, "unsuccessful": 3}},
    "model": {},
    "recommendations": {},
    "trend": None,
    "last_success_at": None,
}


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted({"dag_id": "onboarding_journey", **labels}.items())))]


def test_a_passed_day_gives_every_figure_per_tenant_and_stage():
    found = samples(metrics.render([PASSED]))
    assert value(found, "journey_last_run_success", tenant="canary") == 1.0
    assert value(found, "journey_last_run_timestamp_seconds", tenant="canary") == PASSED["written_at"].timestamp()
    assert (
        value(found, "journey_last_run_logical_date_seconds", tenant="canary")
        == datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    )
    assert value(found, "journey_model_ndcg_at_10", tenant="canary") == 0.335
    assert value(found, "journey_model_ndcg_lift", tenant="canary") == 10.2
    assert value(found, "journey_recommendation_p95_seconds", tenant="canary") == pytest.approx(0.037)
    assert value(found, "journey_recommendation_error_rate", tenant="canary") == 0.0
    assert value(found, "journey_regressions_flagged", tenant="canary") == 1.0
    assert value(found, "journey_stage_duration_seconds", tenant="canary", stage="train_model") == 31.25
    assert value(found, "journey_stage_expectations_evaluated", tenant="canary", stage="seed_data") == 40
    assert value(found, "journey_stage_expectations_failed", tenant="canary", stage="seed_data") == 0


def test_a_failed_day_has_no_figures_it_did_not_produce():
    found = samples(metrics.render([PASSED, FAILED]))
    assert value(found, "journey_last_run_success", tenant="acme") == 0.0
    assert value(found, "journey_stage_expectations_failed", tenant="acme", stage="seed_data") == 3
    acme = {name for name, labels in found if ("tenant", "acme") in labels}
    # No NDCG of a model never trained, no "0 regressions" of a run that had no trend, no success time.
    assert not acme & {
        "journey_model_ndcg_at_10",
        "journey_regressions_flagged",
        "journey_last_success_timestamp_seconds",
        "journey_recommendation_p95_seconds",
    }
    assert "journey_model_ndcg_at_10" in {name for name, _ in found}  # canary's is still there


def test_tenant_names_are_escaped_by_the_client_library():
    odd = {**PASSED, "tenant": 'a"b\\c'}
    found = samples(metrics.render([odd]))
    assert value(found, "journey_last_run_success", tenant='a"b\\c') == 1.0


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv(METRICS_TOKEN_ENV, "scrape-me")
    with TestClient(metrics.create_app(latest=lambda: [PASSED])) as test_client:
        yield test_client


def test_the_scrape_token_reads_the_metrics_and_nothing_else_does(client):
    ok = client.get(metrics.PATH, headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert 'journey_last_run_success{dag_id="onboarding_journey",tenant="canary"} 1.0' in ok.text
    refused = client.get(metrics.PATH)
    assert refused.status_code == 401 and METRICS_TOKEN_ENV in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == "Bearer"
