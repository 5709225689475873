"""Real tenants onboard: logs in their own layouts (tests/data/tenant_logs.py) pass the whole journey with the
default gates, a tenant is re-onboarded with a new catalog, and a catalog rejected in full fails naming why.

Needs the stack (``make up``). The files are written into the stack's inbox, where an operator would put them.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime

import pandas as pd
import pytest

from include.config import QUARANTINE_BUCKET, RAW_BUCKET
from tests.dags.journeys import run_journey
from tests.data import tenant_logs

pytestmark = pytest.mark.usefixtures("stack_env")

DAY = datetime(2026, 11, 12, tzinfo=UTC)
# The DAG's start_date used to be 2026-11-01, and a run of an earlier day "succeeded" with nothing run.
BEFORE_THE_OLD_START_DATE = datetime(2025, 6, 1, tzinfo=UTC)
# Small enough for a test; tenant_logs' tastes stay learnable at this size.
SCALE = 0.8
SAMPLE = {"sample_users": 8}


@pytest.fixture(scope="module")
def inbox() -> str:
    from plugins.journey.tenant_files import inbox_dir

    path = os.path.join(inbox_dir(), "it-byod")
    os.makedirs(path, exist_ok=True)
    return path


def stages(report: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["stages"]}


def assert_passed_with_default_gates(dag_run, report) -> None:
    failed = {s["name"]: s.get("error") or s["validation"] for s in report["stages"] if s["status"] != "success"}
    assert failed == {} and report["success"] is True and dag_run.state == "success"
    model = report["model"]
    assert model["gates"] == {
        "ndcg_threshold": None,
        "min_lift": 1.5,
        "min_ratio_over_knn": 0.95,
        "min_coverage_ratio_over_knn": 0.25,
        "max_popularity_bias_ratio_over_knn": 3.0,
        "max_exposure_gini_over_knn": 0.25,
        "min_cold_start_lift": 0.5,
    }
    assert model["ndcg_lift"] >= 1.5 and model["knn_ratio_ci_high"] >= 0.95
    assert model["knn_ratio_ci_low"] <= model["knn_ratio"] <= model["knn_ratio_ci_high"]
    for name in ("ndcg_at_10", "recall_at_10", "popularity_ndcg_at_10", "knn_ndcg_at_10"):
        assert 0 < model[name] <= 1, name
    # Every report compares the model with item-kNN and popularity on the same split, under a stated protocol.
    assert set(model["models"]) == {"model", "item-kNN", "popularity"}
    assert model["models"]["model"]["ndcg_at_10"] == model["ndcg_at_10"]
    assert model["protocol"]["seed"] == 42 and "full ranking" in model["protocol"]["ranking"]
    assert all(g["holds"] in (True, None) for g in model["gate_results"]), model["gate_results"]
    assert all(s["rejected"] == 0 for s in report["rejections"].values()), report["rejections"]


def tenant_id(slug: str) -> str:
    from plugins.hooks.recsys_api import RecsysApiHook

    return RecsysApiHook().ensure_tenant(slug=slug, name=slug, email=f"admin@{slug}.example.com")["tenant_id"]


def landed(tenant: str, run_key: str) -> pd.DataFrame:
    from plugins.hooks.app_db import AppDbHook

    return AppDbHook().landed(tenant_id=tenant_id(tenant), source=run_key)


def test_a_ratings_log_in_tsv_passes_even_on_a_day_before_the_old_start_date(inbox):
    log = tenant_logs.ratings(os.path.join(inbox, "ratings"), scale=SCALE)
    conf = log.dag_conf(os.path.dirname(inbox))
    dag_run, report = run_journey(logical_date=BEFORE_THE_OLD_START_DATE, tenant="it-ratings", **conf, **SAMPLE)

    assert_passed_with_default_gates(dag_run, report)
    raw = pd.read_csv(log.interactions, sep="\t", dtype=str)
    rows = landed("it-ratings", report["run_key"])
    assert len(rows) == len(raw)
    # Ratings mapped to the contract's types, epoch seconds to instants, ids derived from the tenant's own.
    assert rows["interaction_type"].value_counts().to_dict() == (
        raw["rating"].map(tenant_logs.RATINGS_MAP).value_counts().to_dict()
    )
    assert rows["ts"].min() == pd.Timestamp(int(raw["timestamp"].astype(int).min()), unit="s", tz="UTC")
    assert rows["event_id"].str.match(r"^ev-[0-9a-f]{24}-\d+$").all()
    assert "interactions.event_id: absent: derived from tenant, user, item and timestamp" in report["notes"]
    # The genres are the tenant's own taxonomy, and the filter probes used them.
    assert report["input"]["categories"] > 10
    assert not any("filter probes skipped" in n for n in report["notes"])


def test_a_listening_log_in_parquet_from_s3_passes_without_timestamps_or_categories(inbox):
    from plugins.hooks.minio import MinioHook

    log = tenant_logs.listening(os.path.join(inbox, "listening"), scale=SCALE)
    key = "it-listening/inbox/listening.parquet"
    MinioHook().put_file(bucket=RAW_BUCKET, key=key, path=log.interactions, content_type="application/octet-stream")
    conf = {**log.dag_conf(os.path.dirname(inbox)), "interactions_uri": f"s3://{RAW_BUCKET}/{key}"}
    dag_run, report = run_journey(logical_date=DAY, tenant="it-listening", **conf, **SAMPLE)

    assert_passed_with_default_gates(dag_run, report)
    rows = landed("it-listening", report["run_key"])
    assert len(rows) == len(pd.read_parquet(log.interactions))
    assert set(rows["ts"]) == {pd.Timestamp(DAY)}  # the documented stand-in
    assert set(rows["interaction_type"]) == {"view"}
    assert report["input"]["categories"] == 0
    assert any(
        n.startswith("interactions.timestamp: absent: every event stamped 2026-11-12T00:00:00+00:00")
        for n in report["notes"]
    )
    assert "query_recommendations: the catalog has no categories: category filter probes skipped" in report["notes"]


def test_a_retail_log_in_gzip_csv_passes_and_the_tenant_is_re_onboarded_with_a_new_catalog(inbox):
    from plugins.hooks.app_db import AppDbHook

    weeks = [tenant_logs.retail(os.path.join(inbox, "retail"), scale=SCALE, week=w) for w in (1, 2)]
    reports = []
    for week, log in enumerate(weeks, start=1):
        day = DAY.replace(day=DAY.day + week)
        dag_run, report = run_journey(
            logical_date=day, tenant="it-retail", **log.dag_conf(os.path.dirname(inbox)), **SAMPLE
        )
        assert_passed_with_default_gates(dag_run, report)
        reports.append(report)

    raw = pd.read_csv(weeks[0].interactions, dtype=str)
    rows = landed("it-retail", reports[0]["run_key"]).set_index("event_id")
    assert set(rows.index) == set(raw["event_uuid"])  # the shop's own event ids
    first = raw.sort_values("event_time").iloc[0]  # Berlin winter time: UTC+1
    assert rows.loc[first["event_uuid"], "ts"] == pd.Timestamp(first["event_time"]).tz_localize("Europe/Berlin")
    # Week 2 trained, indexed and served over week 2's catalog, not the union of both weeks'.
    catalog_w2 = pd.read_csv(weeks[1].items, dtype=str)
    deploy = next(s for s in reports[1]["stages"] if s["name"] == "deploy_model")
    assert deploy["counts"]["index_size"] == len(catalog_w2)
    assert len(AppDbHook().catalog(tenant_id=tenant_id("it-retail"))) > len(catalog_w2)


def test_a_catalog_rejected_in_full_fails_naming_the_reason_and_reaches_quarantine(inbox):
    from plugins.alerts import alert_path, alerts_dir
    from plugins.hooks.minio import MinioHook

    log = tenant_logs.retail(os.path.join(inbox, "euro"), scale=0.3)
    catalog = pd.read_csv(log.items, dtype=str)
    # German-style prices: "12,99 €" is no number the contract can take.
    catalog["unit_price_eur"] = catalog["unit_price_eur"].str.replace(".", ",", regex=False) + " €"
    catalog.to_csv(log.items, index=False, compression="gzip")
    dag_run, report = run_journey(logical_date=DAY, tenant="it-euro", **log.dag_conf(os.path.dirname(inbox)), **SAMPLE)

    assert dag_run.state == "failed" and report["failed_stage"] == "seed_data"
    assert list(stages(report).values())[1:] == ["upstream_failed"] * 6
    items = report["rejections"]["items"]
    assert (items["rows"], items["rejected"]) == (len(catalog), len(catalog))
    [reason] = items["reasons"]
    assert (reason["reason"], reason["count"]) == ("price must be a number", len(catalog))
    assert (
        reason["example"]["item_id"] == catalog["sku"][0] and reason["example"]["price"] == catalog["unit_price_eur"][0]
    )
    interactions = report["rejections"]["interactions"]
    assert interactions["reasons"][0]["reason"] == "item_id of a rejected catalog row"

    headline = (
        f"items: {len(catalog)} of {len(catalog)} rows rejected: price must be a number ({len(catalog)}, e.g. row 1:"
    )
    payload = {
        "dag_id": "onboarding_journey",
        "run_id": dag_run.run_id,
        "task_id": "seed_data.validate",
        "map_index": 0,
    }
    with open(os.path.join(alerts_dir(), alert_path(payload))) as fh:
        alert = json.load(fh)
    assert alert["rejected_rows"][0].startswith(headline)
    assert alert["failed_expectations"] and "rejected rows:" in alert["error"]

    # In quarantine although seed_data's own suite failed (upload never ran).
    back = MinioHook().read_back(bucket=QUARANTINE_BUCKET, key=f"it-euro/{report['run_key']}/items.quarantine.csv")
    quarantined = pd.read_csv(io.BytesIO(back.data), dtype=str)
    assert len(quarantined) == len(catalog)
    assert quarantined["reason"].str.startswith("price must be a number, got '").all()
    assert quarantined["source_row"].tolist() == [str(n) for n in range(1, len(catalog) + 1)]
