"""Failure alerts: every DAG's ``on_failure_callback``.

When a task fails for good (its retries are spent), :func:`on_failure` writes one JSON alert to

- the exports bucket, ``s3://<EXPORTS_BUCKET>/alerts/<dag_id>/<run_id>/<task_id>.json``,
- a local file, ``<local>/alerts/<dag_id>/<run_id>/<task_id>.json``,
- and, if an ``alert_webhook`` (http) connection exists, a POST of the same JSON to it,

then logs ONE line that says what failed and where the alert went. Run ids are written the way
the journey's reports write them (``:`` and ``+`` replaced), so a path is safe on every store.

Each destination is tried independently and bounded in time: a store that is down (often the very
reason for the alert) or a failing webhook is named in the log line and never hides the original
failure, and the callback itself never raises. The alert carries no secrets: the platform
connections' passwords are registered with Airflow's secrets masker before the text is redacted,
and credentials in URLs, bearer tokens, passwords and raw API keys are masked by pattern.

:func:`on_warning` sends the same alert, to the same places, for something that did not fail the task: a
regression against the trailing baseline under ``regression_policy=warn``. Its file name carries the kind
(``report.0.regression.json``), so a later failure alert of the same task never replaces it.

A failed validate task's alert names its suite and failed expectations from the StageValidation the task
pushed to XCom, not from the exception's text.

Imports are light (the DAG files import this module at parse time); clients load on first alert.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from typing import Any

from include.config import CONN_IDS, EXPORTS_BUCKET, local_dir, safe_name
from plugins.journey import TENANT_PATTERN
from plugins.validation import VALIDATION_KEY, describe_failure

WEBHOOK_CONN_ID = "alert_webhook"
# DAGs whose runs write journey reports, so an alert can link the run's report page.
JOURNEY_DAGS = frozenset({"onboarding_journey"})
WEBHOOK_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 4000

log = logging.getLogger("recsys.alerts")

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\g<scheme>***@"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 ***"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|api_key)(\s*[=:]\s*)[^\s,;&'\"]+"), r"\1\2***"),
    # The platform's API keys: rk_ + 43 url-safe characters (include/recsys/api/auth.py).
    (re.compile(r"\brk_[A-Za-z0-9_-]{20,}"), "rk_***"),
)


def alert_path(payload: dict[str, Any]) -> str:
    """Where an alert lives, relative to alerts/ in the bucket and to the local alerts directory.

    A mapped task (one journey per tenant) gets one alert per map index, so tenants never overwrite each other's.
    """
    index = payload.get("map_index", -1)
    suffix = f".{index}" if index >= 0 else ""
    if payload.get("kind", "failure") != "failure":
        suffix += f".{payload['kind']}"
    return f"{payload['dag_id']}/{safe_name(payload['run_id'])}/{payload['task_id']}{suffix}.json"


def alerts_dir() -> str:
    return os.path.join(local_dir(), "alerts")


def stage_of(task_id: str) -> str:
    """The journey's tasks live in one group per stage ("train_model.validate"); other tasks are their own stage."""
    return task_id.split(".", 1)[0]


def validation_of(ti: Any) -> dict[str, Any] | None:
    """The StageValidation a validate task pushed to XCom before it failed (plugins.validation.raise_for_validation),
    or None. Only validate tasks are asked: the task SDK logs an error for every XCom it does not find."""
    if ti.task_id.rsplit(".", 1)[-1] != "validate":
        return None
    pulled = ti.xcom_pull(task_ids=ti.task_id, key=VALIDATION_KEY, map_indexes=getattr(ti, "map_index", -1))
    return pulled if isinstance(pulled, dict) and "failed_expectations" in pulled else None


def failed_expectations(validation: dict[str, Any] | None) -> tuple[str | None, list[str]]:
    """(suite, one line per failed expectation) of a failed validation, else (None, [])."""
    if not validation or validation.get("success"):
        return None, []
    return validation["suite"], [redact(describe_failure(failure)) for failure in validation["failed_expectations"]]


def redact(text: str) -> str:
    from airflow.sdk.log import redact as airflow_redact

    _register_connection_secrets()
    text = str(airflow_redact(text))
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _register_connection_secrets() -> None:
    """Fetching a connection registers its password and extra with Airflow's masker (task SDK behaviour);
    this makes sure every platform connection is known even if the failed task never opened it."""
    from airflow.sdk import BaseHook

    for conn_id in (*CONN_IDS, WEBHOOK_CONN_ID):
        try:
            BaseHook.get_connection(conn_id)
        except Exception:  # an absent or unreadable connection has no secret to mask here
            continue


def build_payload(
    context: Any, *, now: datetime | None = None, message: str | None = None, kind: str = "failure"
) -> dict[str, Any]:
    """``message``: the alert's text when it is not the task's exception (a warning)."""
    ti = context["ti"]
    exception = context.get("exception")
    if message is not None:
        error, exception_kind = message, None
    elif exception is None:
        error = "no exception recorded (failed by state change, e.g. marked failed or timed out externally)"
        exception_kind = None
    else:
        error = str(exception) or type(exception).__name__
        exception_kind = type(exception).__name__
    error = redact(error)[:MAX_ERROR_CHARS]
    # A warning is about something else than the task's validation.
    validation = validation_of(ti) if message is None else None
    suite, expectations = failed_expectations(validation)
    logical_date = context.get("logical_date")
    tenant = getattr(ti, "rendered_map_index", None)
    return {
        "kind": kind,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "stage": stage_of(ti.task_id),
        "try_number": ti.try_number,
        "logical_date": logical_date.isoformat() if logical_date else None,
        "exception": exception_kind,
        "error": error,
        "suite": suite,
        "failed_expectations": expectations,
        "rejected_rows": list((validation or {}).get("rejected_rows") or []),
        "timestamp": (now or datetime.now(UTC)).isoformat(),
        # One click to the run's report page (every tenant of the run, or the failed task's tenant's).
        "report_url": _report_url(ti.dag_id, ti.run_id, tenant),
    }


def _report_url(dag_id: str, run_id: str, tenant: Any) -> str | None:
    from plugins.journey.pages import report_url

    if dag_id not in JOURNEY_DAGS:
        return None
    return report_url(run_id, tenant if isinstance(tenant, str) and re.fullmatch(TENANT_PATTERN, tenant) else None)


def write_local(payload: dict[str, Any]) -> str:
    path = os.path.join(alerts_dir(), alert_path(payload))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2)
    os.replace(tmp, path)  # a reader never sees half an alert
    return path


def write_bucket(payload: dict[str, Any]) -> str:
    from plugins.hooks.minio import MinioHook

    stored = MinioHook().put_bytes(
        bucket=EXPORTS_BUCKET,
        key=f"alerts/{alert_path(payload)}",
        data=json.dumps(payload, indent=2).encode(),
        content_type="application/json",
    )
    return stored.uri


def post_webhook(payload: dict[str, Any]) -> str:
    """POST the alert; returns what happened, for the log line. 'not configured' when there is no connection.

    The URL is never logged: webhook URLs often carry their token in the path."""
    import requests
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(WEBHOOK_CONN_ID)
    except AirflowNotFoundException:
        return "not configured"
    if not conn.host:
        raise ValueError(f"connection {WEBHOOK_CONN_ID!r} must set host (and optionally port, schema, extra.endpoint)")
    port = f":{conn.port}" if conn.port else ""
    endpoint = conn.extra_dejson.get("endpoint", "")
    url = f"{conn.schema or 'http'}://{conn.host}{port}/{endpoint.lstrip('/')}"
    headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    response = requests.post(url, json=payload, headers=headers, timeout=WEBHOOK_TIMEOUT_S)
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook answered HTTP {response.status_code}")
    return f"sent (HTTP {response.status_code})"


def _attempt(write, payload: dict[str, Any]) -> str:
    try:
        return write(payload)
    except Exception as exc:  # one broken destination must not stop the others
        first_line = (str(exc).splitlines() or [""])[0]
        return redact(f"FAILED ({type(exc).__name__}: {first_line})")[:300]


def on_failure(context: Any) -> None:
    """The ``on_failure_callback`` of every task of every DAG of this project."""
    try:
        payload = build_payload(context)
    except Exception as exc:  # a callback that raises would only add noise to the failure it reports
        log.exception("ALERT could not be built: %s", exc)
        return
    _deliver(payload, verb="failed")


def on_warning(context: Any, *, message: str, kind: str) -> None:
    """An alert for a task that goes on (e.g. ``kind="regression"``); like :func:`on_failure`, never raises."""
    try:
        payload = build_payload(context, message=message, kind=kind)
    except Exception as exc:
        log.exception("ALERT could not be built: %s", exc)
        return
    _deliver(payload, verb=f"warned ({kind})")


def _deliver(payload: dict[str, Any], *, verb: str) -> None:
    bucket = _attempt(write_bucket, payload)
    local = _attempt(write_local, payload)
    webhook = _attempt(post_webhook, payload)
    headline = (payload["error"].splitlines() or [""])[0]
    if payload["rejected_rows"]:
        headline += "; rejected: " + "; ".join(payload["rejected_rows"])
    if payload["failed_expectations"]:
        headline += "; failed: " + "; ".join(payload["failed_expectations"])
    log.error(
        "ALERT %s.%s %s (run %s, try %s): %s | report: %s | bucket: %s | file: %s | webhook: %s",
        payload["dag_id"],
        payload["task_id"],
        verb,
        payload["run_id"],
        payload["try_number"],
        headline[:600],
        payload["report_url"] or "-",
        bucket,
        local,
        webhook,
    )
