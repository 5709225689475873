"""The journey's figures as Prometheus metrics, read from the run history store (never pushed from tasks).

Airflow mounts :func:`create_app` at ``/journey-metrics`` (plugins/journey_ui_plugin.py); Prometheus scrapes
``GET /journey-metrics/metrics``. A scraper presents ``Authorization: Bearer <JOURNEY_METRICS_TOKEN>`` (the
setting named by ``include.config.METRICS_TOKEN_ENV``); a person logged in to Airflow may read it too. Anything
else is 401: the series name tenants.

Every series describes each DAG and tenant's latest logical date (``HistoryHook.latest``), so a scrape costs one
query whatever the history's length, and a figure a run did not produce (a failed run has no NDCG) is absent
rather than zero. The alert rules over these series are include/observability/alerts.yml.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from include.config import METRICS_TOKEN_ENV

PATH = "/metrics"
_LABELS = ("dag_id", "tenant")
_bearer = HTTPBearer(auto_error=False)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else None


def _seconds(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None


def families(rows: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """prometheus_client metric families of the latest rows (``HistoryHook.latest``)."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, *extra: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=[*_LABELS, *extra])

    per_run: dict[str, tuple[GaugeMetricFamily, Callable[[dict[str, Any]], float | None]]] = {
        "success": (
            gauge("journey_last_run_success", "1 if the latest logical date's run passed, 0 if it failed."),
            lambda row: _number(row["success"]),
        ),
        "written": (
            gauge("journey_last_run_timestamp_seconds", "When the latest logical date's run wrote its result."),
            lambda row: _seconds(row["written_at"]),
        ),
        "logical": (
            gauge("journey_last_run_logical_date_seconds", "The latest validated logical date (midnight UTC)."),
            lambda row: float(row["logical_date"].toordinal() - 719163) * 86400,
        ),
        "passed": (
            gauge("journey_last_success_timestamp_seconds", "When a run of any day last passed."),
            lambda row: _seconds(row["last_success_at"]),
        ),
        "ndcg": (
            gauge("journey_model_ndcg_at_10", "NDCG@10 of the model the latest run trained, on its holdout."),
            lambda row: _number((row["model"] or {}).get("ndcg_at_10")),
        ),
        "lift": (
            gauge("journey_model_ndcg_lift", "The model's NDCG@10 over the popularity baseline's, same split."),
            lambda row: _number((row["model"] or {}).get("ndcg_lift")),
        ),
        "p95": (
            gauge("journey_recommendation_p95_seconds", "p95 latency of the latest run's recommendation sample."),
            lambda row: None if (p95 := _number((row["recommendations"] or {}).get("p95_ms"))) is None else p95 / 1e3,
        ),
        "errors": (
            gauge("journey_recommendation_error_rate", "Share of the recommendation sample's requests that failed."),
            lambda row: _number((row["recommendations"] or {}).get("error_rate")),
        ),
        "regressions": (
            gauge("journey_regressions_flagged", "Figures of the latest run over the regression threshold."),
            lambda row: None if row["trend"] is None else float(len(row["trend"].get("regressions") or [])),
        ),
    }
    per_stage: dict[str, GaugeMetricFamily] = {
        "duration_s": gauge("journey_stage_duration_seconds", "Wall time of each stage of the latest run.", "stage"),
        "evaluated": gauge("journey_stage_expectations_evaluated", "Expectations each stage evaluated.", "stage"),
        "unsuccessful": gauge("journey_stage_expectations_failed", "Expectations each stage failed.", "stage"),
    }
    for row in rows:
        labels = [row["dag_id"], row["tenant"]]
        for family, value_of in per_run.values():
            value = value_of(row)
            if value is not None:
                family.add_metric(labels, value)
        for stage, figures in sorted((row["stages"] or {}).items()):
            for field, family in per_stage.items():
                value = _number((figures or {}).get(field))
                if value is not None:
                    family.add_metric([*labels, stage], value)
    yield from (family for family, _ in per_run.values())
    yield from per_stage.values()


def render(rows: Iterable[dict[str, Any]]) -> bytes:
    """The exposition text of ``rows``, through prometheus_client's own writer (escaping, HELP/TYPE lines)."""
    from prometheus_client import CollectorRegistry, generate_latest

    materialized = list(rows)

    class _History:
        def collect(self) -> Iterator[Any]:
            return families(materialized)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_History())
    return generate_latest(registry)


async def scraper(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """The configured scrape token, else whoever the Journey UI admits (an Airflow login)."""
    from plugins.ui.auth import operator

    expected = os.environ.get(METRICS_TOKEN_ENV, "")
    if expected and credentials is not None and credentials.scheme.lower() == "bearer":
        if hmac.compare_digest(credentials.credentials.encode("utf-8"), expected.encode("utf-8")):
            return
    try:
        await operator(request, credentials)
    except HTTPException as refused:
        if refused.status_code == status.HTTP_401_UNAUTHORIZED:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"scrape with Authorization: Bearer <{METRICS_TOKEN_ENV}>, or log in to Airflow",
                {"WWW-Authenticate": "Bearer"},
            ) from None
        raise


def create_app(*, latest: Callable[[], list[dict[str, Any]]] | None = None) -> FastAPI:
    """``latest``: where the rows come from (default: the ``validation_history`` connection's store)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    if latest is None:

        def latest() -> list[dict[str, Any]]:
            from plugins.hooks.history import HistoryHook

            return HistoryHook().latest()

    app = FastAPI(title="Journey metrics", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(PATH, dependencies=[Depends(scraper)])
    def metrics() -> Response:
        return Response(render(latest()), media_type=CONTENT_TYPE_LATEST)

    return app
