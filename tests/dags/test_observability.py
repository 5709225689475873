"""After a real journey run, the stack's Prometheus has the journey's series and the platform's, and its rules.

The journey runs with dag.test; Airflow's api-server (which mounts /journey-metrics) and Prometheus are started
for this module if they are not running, and stopped again afterwards.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest
import requests

from tests.dags.journeys import SMALL, run_journey

TENANT = "metrics-probe"
DAY = datetime(2026, 11, 21, tzinfo=UTC)
SERVICES = ("airflow-api-server", "prometheus")


@pytest.fixture(scope="module")
def report(stack_env):
    _, report = run_journey(logical_date=DAY, tenant=TENANT, **SMALL)
    assert report["success"], report["failed_stage"]
    return report


@pytest.fixture(scope="module")
def servers(report):
    from include.stack import credentials, lifecycle
    from include.stack.monitoring import PROMETHEUS_USER
    from include.stack.settings import HOST, StackSettings

    started = [s.name for s in lifecycle.status() if s.name in SERVICES and s.pid is None]
    lifecycle.up(only=started)
    settings = StackSettings.from_env()
    secrets = credentials.load_or_create(settings.secrets_file)
    try:
        yield {
            "airflow": f"http://{HOST}:{settings.port('airflow')}",
            "prometheus": f"http://{HOST}:{settings.port('prometheus')}",
            "login": (PROMETHEUS_USER, secrets.prometheus_password),
        }
    finally:
        lifecycle.down(only=started)


def query(servers, promql: str, *, timeout_s: float = 90) -> list[dict]:
    """The instant query's result once it is non-empty (Prometheus scrapes every 5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = requests.get(
            f"{servers['prometheus']}/api/v1/query", params={"query": promql}, auth=servers["login"], timeout=10
        )
        response.raise_for_status()
        result = response.json()["data"]["result"]
        if result or time.monotonic() > deadline:
            return result
        time.sleep(2)


def test_the_journey_metrics_need_the_scrape_token(servers):
    url = f"{servers['airflow']}/journey-metrics/metrics"
    assert requests.get(url, timeout=30).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=30)
    assert wrong.status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {os.environ['JOURNEY_METRICS_TOKEN']}"}, timeout=30)
    assert ok.status_code == 200
    assert f'journey_last_run_success{{dag_id="onboarding_journey",tenant="{TENANT}"}} 1.0' in ok.text


def test_prometheus_has_the_run_s_series_with_the_report_s_values(servers, report):
    labels = f'dag_id="onboarding_journey",tenant="{TENANT}"'
    success = query(servers, f"journey_last_run_success{{{labels}}}")
    assert [float(s["value"][1]) for s in success] == [1.0]
    ndcg = query(servers, f"journey_model_ndcg_at_10{{{labels}}}")
    assert float(ndcg[0]["value"][1]) == pytest.approx(report["model"]["ndcg_at_10"], abs=1e-9)
    stages = query(servers, f"journey_stage_duration_seconds{{{labels}}}")
    assert {s["metric"]["stage"] for s in stages} == {stage["name"] for stage in report["stages"]}
    failed = query(servers, f"sum(journey_stage_expectations_failed{{{labels}}})")
    assert float(failed[0]["value"][1]) == 0.0


def test_prometheus_scrapes_the_platform_and_loaded_every_alert_rule(servers):
    health = query(servers, 'recsys_health_check_up{job="recsys_api",check="database"}')
    assert [float(s["value"][1]) for s in health] == [1.0]
    targets = requests.get(f"{servers['prometheus']}/api/v1/targets", auth=servers["login"], timeout=10).json()
    assert {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]} == {
        "recsys_api": "up",
        "journey": "up",
    }
    rules = requests.get(f"{servers['prometheus']}/api/v1/rules", auth=servers["login"], timeout=10).json()
    loaded = [rule for group in rules["data"]["groups"] for rule in group["rules"]]
    assert len(loaded) == 6 and all(rule["health"] == "ok" for rule in loaded), loaded


def test_prometheus_itself_needs_its_login(servers):
    assert requests.get(f"{servers['prometheus']}/api/v1/query", params={"query": "up"}, timeout=10).status_code == 401
