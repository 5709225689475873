"""The Journey UI in a real browser, inside the real Airflow UI, behind Airflow's login.

Two small journeys run first (dag.test, like the DAG tests): one made to fail at train_model (``ndcg_threshold``
0.99, which no model reaches here) and one that passes. Then an operator logs in, opens the failed run, follows
"Validation report", sees the failed expectation with its observed value, and opens the run's Data Docs; the
passed run renders too. Without a login every Journey URL answers 401, and traversal out of a run's prefix is
refused however it is encoded. Screenshots are kept under .local/ui-screenshots/.
"""

from __future__ import annotations

import http.client
import os
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.dags.journeys import run_journey

pytestmark = [pytest.mark.usefixtures("stack_env"), pytest.mark.timeout(900)]

SMALL = {"n_users": 400, "n_items": 200, "n_interactions": 8000, "sample_users": 10}
FAILED_DAY = datetime(2026, 11, 12, tzinfo=UTC)
PASSED_DAY = datetime(2026, 11, 13, tzinfo=UTC)
# No model reaches this NDCG@10 on the small data: train_model's suite fails, naming the observed value.
IMPOSSIBLE_NDCG = 0.99


@pytest.fixture(scope="module")
def failed_run() -> dict:
    dag_run, report = run_journey(logical_date=FAILED_DAY, tenant="ui-failed", ndcg_threshold=IMPOSSIBLE_NDCG, **SMALL)
    assert dag_run.state == "failed" and report["failed_stage"] == "train_model", report["failed_stage"]
    return report


@pytest.fixture(scope="module")
def passed_run() -> dict:
    dag_run, report = run_journey(logical_date=PASSED_DAY, tenant="ui-passed", **SMALL)
    assert dag_run.state == "success" and report["success"], report["failed_stage"]
    return report


@pytest.fixture(scope="module")
def token(airflow_ui) -> str:
    """A REST token, as an operator gets one from POST /auth/token."""
    response = requests.post(
        f"{airflow_ui['base']}/auth/token",
        json={"username": airflow_ui["username"], "password": airflow_ui["password"]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture()
def page(browser, airflow_ui):
    """A fresh browser context, logged in through Airflow's own login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(airflow_ui["base"] + "/")
    page.get_by_label("Username").fill(airflow_ui["username"])
    page.get_by_label("Password").fill(airflow_ui["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(airflow_ui["base"] + "/")
    yield page
    context.close()


def _run_page(airflow_ui, report) -> str:
    return f"{airflow_ui['base']}/dags/onboarding_journey/runs/{quote(report['run_id'], safe='')}"


def _report_path(report, suffix: str = "") -> str:
    return f"/journey/runs/{quote(report['run_id'], safe='')}/{report['tenant']}{suffix}"


def test_failed_expectation_and_data_docs_are_one_click_from_the_run(page, airflow_ui, failed_run, screenshots):
    page.goto(_run_page(airflow_ui, failed_run))
    page.get_by_text("Validation report").first.click()
    frame = page.frame_locator("iframe")
    frame.get_by_text("Failed expectations").wait_for()
    observed = failed_run["stages"][3]["validation"]["failed_expectations"][0]["observed_value"]
    row = frame.locator("tr", has=frame.locator(".observed"))
    assert (
        "expect_column_min_to_be_between" in row.inner_text()
        and f"$ndcg_threshold={IMPOSSIBLE_NDCG}" in row.inner_text()
    )
    assert float(frame.locator(".observed").first.inner_text()) == pytest.approx(observed)
    page.screenshot(path=os.path.join(screenshots, "failed-run-validation-report.png"), full_page=True)

    frame.get_by_role("link", name="GX Data Docs of this run").click()
    # GX's index lists each validation of the run; the failed suite's batch is there.
    frame.get_by_role("link", name="train_model.metrics").first.wait_for()
    page.screenshot(path=os.path.join(screenshots, "failed-run-data-docs.png"), full_page=True)


def test_a_passed_run_renders(page, airflow_ui, passed_run, screenshots):
    page.goto(_run_page(airflow_ui, passed_run))
    page.get_by_text("Validation report").first.click()
    frame = page.frame_locator("iframe")
    frame.locator(".passed").first.wait_for()
    statuses = (
        frame.locator("h2", has_text="Stages")
        .locator("xpath=following-sibling::table[1]//tbody/tr/td[2]")
        .all_inner_texts()
    )
    assert statuses == [s["status"] for s in passed_run["stages"]] and "failed" not in statuses
    assert "Failed expectations" not in frame.locator("body").inner_text()
    page.screenshot(path=os.path.join(screenshots, "passed-run-validation-report.png"), full_page=True)


def test_journeys_list_both_runs(page, airflow_ui, failed_run, passed_run):
    page.goto(airflow_ui["base"] + "/journey/")
    listed = page.locator("table").inner_text()
    assert failed_run["run_id"] in listed and passed_run["run_id"] in listed
    row = page.locator("tr", has_text=failed_run["run_id"]).inner_text()
    assert "failed" in row and "train_model" in row


def test_without_login_every_journey_url_is_401(airflow_ui, failed_run):
    urls = [
        "/journey/",
        f"/journey/runs/{quote(failed_run['run_id'], safe='')}",
        _report_path(failed_run),
        _report_path(failed_run, "/data_docs/index.html"),
        f"/journey/tenants/{failed_run['tenant']}",
    ]
    for url in urls:
        for headers, cookies in (
            ({}, {}),
            ({"Authorization": "Bearer forged.jwt.token"}, {}),
            ({}, {"_token": "forged"}),
        ):
            response = requests.get(
                airflow_ui["base"] + url, headers=headers, cookies=cookies, timeout=30, allow_redirects=False
            )
            assert response.status_code == 401, (url, headers, cookies, response.status_code)
            assert failed_run["run_key"] not in response.text


def test_a_rest_token_reads_the_report(airflow_ui, token, failed_run):
    response = requests.get(
        airflow_ui["base"] + _report_path(failed_run), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200 and failed_run["run_key"] in response.text


@pytest.mark.parametrize(
    "suffix",
    [
        "/data_docs/../report.json",
        "/data_docs/%2e%2e/report.json",
        "/data_docs/%252e%252e/report.json",
        "/data_docs/..%2freport.json",
        "/data_docs/static/../../report.json",
    ],
)
def test_traversal_out_of_the_run_is_refused(airflow_ui, token, failed_run, suffix):
    # http.client sends the path as written: requests and browsers would resolve the dots before sending.
    address = urlsplit(airflow_ui["base"])
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", _report_path(failed_run, suffix), headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    assert response.status in (400, 404), (suffix, response.status)
    assert '"run_key"' not in body


def test_a_run_id_of_dots_is_refused(airflow_ui, token):
    address = urlsplit(airflow_ui["base"])
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.request("GET", "/journey/runs/%2e%2e/ui-failed", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status in (400, 404)
