"""plugins/alerts.py: the alert payload, the local file, the one log line and the webhook, with a real
HTTP server standing in for the operator's webhook. No stack needed: the object store connection is
left undefined here, which also proves a broken destination never stops the others (the DAG tests
check the bucket copy on the real stack)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from plugins import alerts
from plugins.validation import VALIDATION_KEY, StageValidation, raise_for_validation

DB_PASSWORD = "pg-Secret-4242-xyz"
RAW_KEY = "rk_" + "A1b2C3d4E5" * 4 + "xyz"
RUN_ID = "manual__2026-11-10T00:00:00+00:00"


class Webhook:
    """A real HTTP endpoint that records what it is sent and answers with ``status``."""

    def __init__(self, status: int = 200) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def connection(self) -> str:
        host, port = self.server.server_address
        return json.dumps(
            {"conn_type": "http", "host": host, "port": port, "schema": "http", "extra": {"endpoint": "/hooks/alerts"}}
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Alerts go under tmp_path; the app DB connection carries a password that must never leak; no object store."""
    monkeypatch.setenv("RECSYS_LOCAL_DIR", str(tmp_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_APP",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": 1, "login": "app", "password": DB_PASSWORD}),
    )
    monkeypatch.delenv("AIRFLOW_CONN_MINIO_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_ALERT_WEBHOOK", raising=False)
    return tmp_path


@pytest.fixture
def webhook(monkeypatch):
    server = Webhook()
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", server.connection)
    yield server
    server.close()


class StubTI(SimpleNamespace):
    """Airflow's task instance as far as the validate wrapper and the alert use it: identity and XCom."""

    def __init__(self, **identity) -> None:
        super().__init__(**identity)
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, *, key: str, value: object) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int = -1) -> object:
        assert (task_ids, map_indexes) == (self.task_id, getattr(self, "map_index", -1)), "another task's XCom"
        return self.xcoms.get(key)


def gx_failure(ctx: dict) -> dict:
    """``ctx`` after a failed train_model validate task: the real wrapper (plugins.validation.raise_for_validation)
    pushed the StageValidation to XCom and raised the AirflowFailException an Airflow task fails with."""
    from airflow.sdk.exceptions import AirflowFailException

    failures = [
        {
            "batch": "metrics",
            "expectation_type": "expect_column_min_to_be_between",
            "column": "ndcg_at_10",
            "kwargs": {"min_value": "$ndcg_threshold=0.3"},
            "observed_value": 0.21,
        },
        {
            "batch": "metrics",
            "expectation_type": "expect_column_values_to_be_in_set",
            "column": "nonfinite_values",
            "kwargs": {"value_set": [0]},
            "unexpected_count": 1,
            "unexpected_percent": 100.0,
            "partial_unexpected_list": [3],
        },
    ]
    validation = StageValidation(
        suite="train_model",
        success=False,
        evaluated=9,
        unsuccessful=2,
        failed_expectations=failures,
        result_path="/reports/gx/validations/train_model",
    )
    with pytest.raises(AirflowFailException) as raised:
        raise_for_validation(validation, ti=ctx["ti"])
    ctx["exception"] = raised.value
    return ctx


def context(exception: Exception | None, *, task_id: str = "train_model.validate", try_number: int = 1) -> dict:
    ti = StubTI(dag_id="onboarding_journey", run_id=RUN_ID, task_id=task_id, try_number=try_number)
    return {"ti": ti, "exception": exception, "logical_date": datetime.fromisoformat("2026-11-10T00:00:00+00:00")}


def local_alert(root, task_id: str = "train_model.validate") -> dict:
    path = root / "alerts" / "onboarding_journey" / "manual__2026-11-10T00_00_00_00_00" / f"{task_id}.json"
    return json.loads(path.read_text())


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def alert_log():
    """What plugins.alerts logs, captured at its own logger (Airflow reconfigures the root logger on import)."""
    handler, logger = Lines(), logging.getLogger("recsys.alerts")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_gx_failure_alert_names_the_failed_expectations(env, webhook, alert_log):
    alerts.on_failure(gx_failure(context(None, try_number=2)))

    payload = local_alert(env)
    assert payload["dag_id"] == "onboarding_journey"
    assert payload["run_id"] == RUN_ID
    assert payload["task_id"] == "train_model.validate"
    assert payload["stage"] == "train_model"
    assert payload["try_number"] == 2
    assert payload["logical_date"] == "2026-11-10T00:00:00+00:00"
    assert payload["exception"] == "AirflowFailException"
    assert payload["suite"] == "train_model"
    assert payload["failed_expectations"] == [
        "metrics[ndcg_at_10]: expect_column_min_to_be_between(min_value=$ndcg_threshold=0.3): observed 0.21",
        "metrics[nonfinite_values]: expect_column_values_to_be_in_set(value_set=[0]): 1 unexpected (100%), e.g. [3]",
    ]
    assert payload["error"].startswith("GX suite 'train_model' failed: 2 of 9 expectations unsuccessful")
    assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None

    assert len(webhook.received) == 1
    assert webhook.received[0]["path"] == "/hooks/alerts"
    assert webhook.received[0]["body"] == payload

    [line] = alert_log
    assert line.startswith(f"ALERT onboarding_journey.train_model.validate failed (run {RUN_ID}, try 2): GX suite")
    assert "failed: metrics[ndcg_at_10]" in line
    assert "bucket: FAILED (AirflowNotFoundException" in line  # no object store here, and that stopped nothing
    assert "file: " + str(env / "alerts") in line
    assert "webhook: sent (HTTP 200)" in line


def test_rejected_rows_reach_the_alert_with_their_reasons(env, webhook, alert_log):
    from airflow.sdk.exceptions import AirflowFailException

    from plugins.journey.rejections import describe

    failure = {
        "batch": "items",
        "expectation_type": "expect_table_row_count_to_be_between",
        "column": None,
        "kwargs": {"min_value": 1},
        "observed_value": 0,
    }
    validation = StageValidation(
        suite="seed_data", success=False, evaluated=24, unsuccessful=1, failed_expectations=[failure]
    )
    rejections = {
        "items": {
            "rows": 1682,
            "rejected": 1682,
            "more_reasons": 0,
            "reasons": [
                {"reason": "price must be a number", "count": 1682, "example": {"item_id": "1", "price": "$3"}}
            ],
        },
        "users": {"rows": 943, "rejected": 0, "more_reasons": 0, "reasons": []},
    }
    ctx = context(None, task_id="seed_data.validate")
    with pytest.raises(AirflowFailException) as raised:
        raise_for_validation(validation, ti=ctx["ti"], rejected_rows=describe(rejections))
    alerts.on_failure({**ctx, "exception": raised.value})

    payload = local_alert(env, "seed_data.validate")
    expected = "items: 1682 of 1682 rows rejected: price must be a number (1682, e.g. item_id='1', price='$3')"
    assert payload["rejected_rows"] == [expected]
    assert payload["failed_expectations"] == ["items: expect_table_row_count_to_be_between(min_value=1): observed 0"]
    assert payload["error"].splitlines()[1:3] == ["rejected rows:", f"  * {expected}"]
    assert f"; rejected: {expected}; failed: items: expect_table_row_count" in alert_log[0]


def test_plain_failure_has_no_expectations(env, webhook):
    alerts.on_failure(context(ConnectionError("kafka: broker 127.0.0.1:19092 unreachable"), task_id="kafka"))
    payload = local_alert(env, "kafka")
    assert payload["stage"] == "kafka"
    assert payload["exception"] == "ConnectionError"
    assert payload["error"] == "kafka: broker 127.0.0.1:19092 unreachable"
    assert payload["suite"] is None and payload["failed_expectations"] == [] and payload["rejected_rows"] == []


def test_alert_never_carries_secrets(env, webhook, alert_log):
    leaky = RuntimeError(
        f"could not connect to postgresql://app:{DB_PASSWORD}@127.0.0.1:1/app (password={DB_PASSWORD});"
        f" retried with Authorization: Bearer tok.en-123/abc and key {RAW_KEY}; the server echoed {DB_PASSWORD}"
    )
    alerts.on_failure(context(leaky, task_id="measure"))

    written = json.dumps(local_alert(env, "measure"))
    sent = json.dumps(webhook.received[0]["body"])
    logged = "\n".join(alert_log)
    assert "could not connect" in logged
    for text in (written, sent, logged):
        assert DB_PASSWORD not in text
        assert RAW_KEY not in text
        assert "tok.en-123" not in text
    assert "postgresql://app:***@127.0.0.1:1/app" in written
    assert "rk_***" in written
    assert "the server echoed ***" in written  # masked because it is a connection's password, not by pattern


def test_without_webhook_connection_the_alert_is_still_written(env, alert_log):
    alerts.on_failure(context(ValueError("bad input")))
    assert local_alert(env)["error"] == "bad input"
    [line] = alert_log
    assert line.endswith("webhook: not configured")


@pytest.mark.parametrize("broken", ["answers 500", "is down"])
def test_failing_webhook_does_not_mask_the_failure(env, monkeypatch, alert_log, broken):
    server = Webhook(status=500)
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", server.connection)
    if broken == "is down":
        server.close()
    try:
        alerts.on_failure(gx_failure(context(None)))  # must not raise
    finally:
        if broken != "is down":
            server.close()

    assert local_alert(env)["suite"] == "train_model"
    [line] = alert_log
    assert "GX suite 'train_model' failed" in line
    if broken == "answers 500":
        assert "webhook: FAILED (RuntimeError: the webhook answered HTTP 500)" in line
    else:
        assert "webhook: FAILED (ConnectionError" in line
    if broken == "answers 500":
        assert len(server.received) == 1


def test_webhook_url_is_never_logged(env, monkeypatch, alert_log):
    """Webhook URLs often hold their token in the path."""
    server = Webhook()
    conn = json.loads(server.connection)
    conn["extra"]["endpoint"] = "/services/T000/B000/SeCrEtToKeN"
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps(conn))
    try:
        alerts.on_failure(context(ValueError("boom")))
    finally:
        server.close()
    assert server.received[0]["path"] == "/services/T000/B000/SeCrEtToKeN"
    assert "SeCrEtToKeN" not in "\n".join(alert_log)
    assert local_alert(env)["error"] == "boom"


def test_alert_and_webhook_carry_the_report_page_url(env, webhook, monkeypatch, alert_log):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080/")
    ctx = gx_failure(context(None))
    ctx["ti"].map_index, ctx["ti"].rendered_map_index = 0, "acme"
    alerts.on_failure(ctx)
    expected = "http://airflow.example:8080/journey/runs/manual__2026-11-10T00%3A00%3A00%2B00%3A00/acme"
    assert local_alert(env, "train_model.validate.0")["report_url"] == expected
    assert webhook.received[0]["body"]["report_url"] == expected
    assert f"report: {expected}" in alert_log[-1]


def test_other_dags_alerts_carry_no_report_url(env, webhook):
    ctx = context(RuntimeError("boom"), task_id="check_postgres")
    ctx["ti"].dag_id = "platform_health"
    alerts.on_failure(ctx)
    assert webhook.received[0]["body"]["report_url"] is None


def test_a_regression_warning_is_an_alert_of_its_own_kind_beside_any_failure_alert(env, webhook, alert_log):
    message = "acme's figures regressed against the trailing baseline: ndcg_at_10 0.25 vs baseline 0.35 (-28.6%)"
    alerts.on_warning(context(RuntimeError("unused"), task_id="report"), message=message, kind="regression")
    path = env / "alerts" / "onboarding_journey" / "manual__2026-11-10T00_00_00_00_00" / "report.regression.json"
    alert = json.loads(path.read_text())
    assert alert["kind"] == "regression" and alert["error"] == message and alert["exception"] is None
    assert webhook.received[0]["body"]["kind"] == "regression"
    assert any("warned (regression)" in line and "ndcg_at_10 0.25 vs baseline 0.35" in line for line in alert_log)


def test_failed_expectations_come_from_the_validate_tasks_xcom_not_the_message(env, webhook):
    ctx = gx_failure(context(None))
    # The message is not parsed: a GX-looking text without the XCom names nothing, the XCom without the text does.
    alerts.on_failure({**ctx, "exception": RuntimeError("boom")})
    assert local_alert(env)["suite"] == "train_model"
    assert local_alert(env)["failed_expectations"][0].startswith("metrics[ndcg_at_10]: expect_column_min")
    ctx["ti"].xcoms.pop(VALIDATION_KEY)
    alerts.on_failure(ctx)
    payload = local_alert(env)
    assert payload["error"].startswith("GX suite 'train_model' failed")
    assert payload["suite"] is None and payload["failed_expectations"] == []


def test_only_validate_tasks_are_asked_for_a_validation(env, webhook):
    ctx = context(RuntimeError("boom"), task_id="train_model.run")
    ctx["ti"].xcom_pull = None  # asking would raise; the alert must not ask a run task
    alerts.on_failure(ctx)
    assert local_alert(env, "train_model.run")["suite"] is None
