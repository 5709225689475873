"""onboarding_journey end to end with dag.test on the real local stack, at a small scale.

Needs the stack (``make up``): Postgres, SeaweedFS, Tansu, the recsys API and its ingestion worker.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime

import pandas as pd
import pytest

from include.config import QUARANTINE_BUCKET, RAW_BUCKET
from tests.dags.journeys import (
    SMALL,
    load_journey,
    object_checksums,
    platform_state,
    run_journey,
    stable_counts,
    tenant_id_of,
)

pytestmark = pytest.mark.usefixtures("stack_env")

DAY = datetime(2026, 11, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def first_run():
    dag_run, report = run_journey(logical_date=DAY, tenant="it-journey", **SMALL)
    return dag_run, report, object_checksums(report["run_key"], "it-journey")


def test_journey_passes_every_suite(first_run):
    dag_run, report, _ = first_run
    assert [s["name"] for s in report["stages"]] == [
        "seed_data",
        "upload_to_minio",
        "feed_kafka",
        "train_model",
        "deploy_model",
        "query_recommendations",
        "audit",
    ]
    failed = {s["name"]: s.get("error") or s["validation"] for s in report["stages"] if s["status"] != "success"}
    assert failed == {}
    assert report["success"] is True
    assert dag_run.state == "success"
    feed = next(s for s in report["stages"] if s["name"] == "feed_kafka")["counts"]
    assert feed["generated"] == feed["produced"] == feed["acked"] == feed["landed"] == SMALL["n_interactions"]
    assert report["model"]["ndcg_at_10"] >= 0.30
    assert report["recommendations"]["errors"] == 0
    assert os.path.isfile(report["data_docs"])
    # The newest day of this tenant takes its traffic; every answer of the sample came from that version.
    assert report["deployment"]["role"] == "live" and report["deployment"]["live_version"] == report["model"]["version"]
    assert report["deployment"]["reason"].startswith("deployed live at 100%")
    # The API serves the registered embeddings: its top 10 are the exact top 10 for the sampled users.
    assert report["model"]["agreement_users"] == 50
    assert report["model"]["serving_agreement"] >= 0.99, report["model"]["agreement_disagreeing"]


def test_rerun_of_the_same_day_is_identical_adds_no_rows_and_leaves_no_residue(first_run, capfd):
    from plugins.hooks.app_db import AppDbHook

    _, first, first_checksums = first_run
    before = platform_state("it-journey", first["run_key"])
    assert before["run_keys_active"] == 0 and before["probe_tenant"] == 0  # the first run cleaned up after itself
    capfd.readouterr()
    dag_run, second = run_journey(logical_date=DAY, tenant="it-journey", **SMALL)
    log = "".join(capfd.readouterr())
    assert dag_run.state == "success"
    assert second["run_key"] == first["run_key"]
    assert object_checksums(second["run_key"], "it-journey") == first_checksums
    landed = AppDbHook().landed(tenant_id=tenant_id_of("it-journey"), source=second["run_key"])
    assert len(landed) == SMALL["n_interactions"]
    assert landed["event_id"].is_unique
    # The same counts (the audit counts the latest attempt), no key left active, no deployment row or tenant added.
    assert stable_counts(second) == stable_counts(first)
    assert platform_state("it-journey", second["run_key"]) == before
    # One key left for cleanup: the 429 probe revokes its own short-lived key as part of the probe.
    assert second["cleanup"] == {"api_keys_revoked": 1, "candidates_ended": 0, "probe_tenant_deleted": True}
    # A green run's log holds no error lines: the report asks only for XComs that exist.
    assert "cleanup of it-journey:" in log and "Marking run <DagRun onboarding_journey" in log, log[-2000:]
    errors = [line for line in log.splitlines() if "[error" in line]
    assert errors == [], errors[:5]


def test_corrupted_input_fails_at_upload_and_is_quarantined():
    from include.recsys.datagen import generate
    from plugins.hooks.minio import MinioHook
    from plugins.journey.tenant_files import inbox_dir

    inbox = os.path.join(inbox_dir(), "it-corrupt")
    os.makedirs(inbox, exist_ok=True)

    data = generate(
        tenant="it-corrupt",
        interval_start=DAY,
        interval_end=DAY.replace(day=11),
        seed=7,
        n_users=200,
        n_items=100,
        n_interactions=3000,
    )
    items = data.items.copy()
    items.loc[[3, 4], "price"] = -5.0  # two bad catalog rows
    interactions = data.interactions.copy()
    interactions.loc[[10, 11, 12], "item_id"] = "item_does_not_exist"
    interactions.loc[20, "interaction_type"] = "teleport"
    items.to_csv(os.path.join(inbox, "items.csv"), index=False)
    interactions.to_csv(os.path.join(inbox, "interactions.csv"), index=False)
    bad_items = set(items.loc[[3, 4], "item_id"])
    bad_rows = interactions["item_id"].isin(bad_items) | interactions.index.isin([10, 11, 12, 20])
    expected_bad = int(bad_rows.sum())

    dag_run, report = run_journey(
        logical_date=DAY,
        tenant="it-corrupt",
        items_uri="it-corrupt/items.csv",
        interactions_uri="it-corrupt/interactions.csv",
        sample_users=5,
    )
    assert dag_run.state == "failed"
    assert report["success"] is False
    assert report["failed_stage"] == "upload_to_minio"
    upload = next(s for s in report["stages"] if s["name"] == "upload_to_minio")
    failed = upload["validation"]["failed_expectations"]
    assert any("bad_share" in json.dumps(f) for f in failed), failed
    assert [s["status"] for s in report["stages"][2:]] == ["upstream_failed"] * 5

    back = MinioHook().read_back(
        bucket=QUARANTINE_BUCKET, key=f"it-corrupt/{report['run_key']}/interactions.quarantine.csv"
    )
    quarantined = pd.read_csv(io.BytesIO(back.data), dtype=str)
    assert len(quarantined) == expected_bad
    assert quarantined["reason"].str.len().gt(0).all()
    assert back.sha256 == back.metadata_sha256
    items_back = MinioHook().read_back(
        bucket=QUARANTINE_BUCKET, key=f"it-corrupt/{report['run_key']}/items.quarantine.csv"
    )
    assert "price must be > 0" in items_back.data.decode()
    raw = MinioHook().read_back(bucket=RAW_BUCKET, key=f"it-corrupt/{report['run_key']}/interactions.csv")
    assert len(pd.read_csv(io.BytesIO(raw.data))) + expected_bad == len(interactions)


def test_params_default_to_the_canaries_and_reject_bad_tenants():
    from airflow.sdk.exceptions import ParamValidationError

    from include.config import CANARY_TENANTS

    params = load_journey().params
    assert params["tenants"] == list(CANARY_TENANTS) and params["tenant"] is None
    for bad in ([], ["Not A Slug"], ["dup", "dup"]):
        with pytest.raises(ParamValidationError):
            params.get_param("tenants").resolve(bad)


def test_several_tenants_run_in_parallel_map_indexes_each_with_its_own_report():
    from include.config import reports_root, safe_name

    tenants = ["it-canary-a", "it-canary-b"]
    dag_run = load_journey().test(logical_date=DAY, run_conf={"tenants": tenants, **SMALL})
    assert dag_run.state == "success"
    assert {ti.map_index for ti in dag_run.get_task_instances() if ti.task_id == "report"} == {0, 1}
    reports = {}
    for tenant in tenants:
        with open(os.path.join(reports_root(), safe_name(dag_run.run_id), tenant, "report.json")) as fh:
            reports[tenant] = json.load(fh)
    assert {t: (r["tenant"], r["success"]) for t, r in reports.items()} == {t: (t, True) for t in tenants}
    # Same day and sizes, so the same run key; the data is the tenant's own.
    run_key = reports[tenants[0]]["run_key"]
    assert reports[tenants[1]]["run_key"] == run_key
    assert object_checksums(run_key, tenants[0]) != object_checksums(run_key, tenants[1])


def test_fault_drills_break_each_component_and_lose_nothing():
    """The resilience stage on the real stack: every drill broke its component, and the GX suite proved the
    platform lost and duplicated nothing (tests/integration/test_fault_drills.py runs them one by one)."""
    from plugins.journey.resilience import DRILLS

    dag_run, report = run_journey(logical_date=DAY, tenant="it-drills", fault_drills=True, **SMALL)
    assert dag_run.state == "success", report.get("failed_stage")
    resilience = report["stages"][-1]
    assert resilience["name"] == "resilience" and resilience["status"] == "success"
    assert resilience["validation"]["unsuccessful"] == 0
    drills = resilience["drills"]
    assert [d["drill"] for d in drills] == list(DRILLS)
    for drill in drills:
        assert drill["outage_s"] > 0 and drill["missing"] == drill["duplicates"] == 0, drill
        assert drill["landed"] == drill["expected"], drill
    by_name = {d["drill"]: d for d in drills}
    assert by_name["broker_down_during_feed"]["retried"] > 0
    assert 0 < by_name["worker_killed_mid_batch"]["landed_at_kill"] < by_name["worker_killed_mid_batch"]["expected"]


def test_drills_are_off_unless_asked_and_then_absent_from_the_report(first_run):
    _, report, _ = first_run
    assert "resilience" not in [s["name"] for s in report["stages"]]
