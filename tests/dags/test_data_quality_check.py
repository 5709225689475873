"""data_quality_check end to end with dag.test on a real stack: it passes on data put in through the
platform's real surfaces (tenant via the API, catalog via an items CSV in the object store registered
through the API, interactions via Kafka landed by the ingestion worker), and fails naming the broken
expectations when rules are broken behind the platform's back, directly in its database.

The runs check only this test's tenant (the ``tenants`` param): a developer's long-lived stack holds other
tests' tenants, e.g. the ingestion tests land interactions for tenants without a catalog, which the DAG
rightly flags.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from tests.dags.dag_runs import alert, run_dag, task_states, xcom
from tests.dags.onboarding import onboard

pytestmark = pytest.mark.usefixtures("stack_env")

DAY = datetime(2026, 11, 3, tzinfo=UTC)
D1 = datetime(2026, 11, 4, tzinfo=UTC)
D2 = datetime(2026, 11, 5, tzinfo=UTC)
MINE = {"tenants": ["ops-dq"]}


@pytest.fixture(scope="module")
def tenant():
    from plugins.hooks.recsys_api import RecsysApiHook

    onboarded = onboard("ops-dq", n_users=40, n_items=25, n_interactions=300)
    # A real key, so the api_keys checks see the platform's own way of storing one.
    RecsysApiHook().create_api_key(onboarded["tenant_id"], name="dq check")
    return onboarded


def test_passes_on_data_that_came_in_through_the_platform(tenant):
    dag_run = run_dag("data_quality_check", logical_date=D1, run_conf=MINE)
    assert dag_run.state == "success", task_states(dag_run)
    measured = xcom(dag_run, "measure")
    assert measured["tenants"] == ["ops-dq"]
    [mine] = measured["interactions"]
    assert {k["tenant"] for k in measured["api_keys"]} == {"ops-dq"}
    assert mine == {
        "tenant": "ops-dq",
        "interactions": 300,
        "unknown_item_refs": 0,
        "duplicate_event_ids": 0,
        "future_interactions": 0,
    }
    assert measured["row_counts"]["ops-dq"] == {"interactions": 300, "items": 25}
    assert all(k["key_hash_is_sha256_hex"] and k["raw_key_columns"] == "" for k in measured["api_keys"])
    assert measured["audit_append_only"]["update_refused"] and measured["audit_append_only"]["delete_refused"]
    assert "append-only" in measured["audit_append_only"]["update_outcome"]
    validation = xcom(dag_run, "validate", key="validation")
    assert validation["success"] and validation["evaluated"] == 17


@pytest.fixture
def broken_rules(tenant):
    """Three rules broken directly in the app database, undone afterwards: an interaction from the future,
    a deployment with no audit row, and a raw API key stored in a key's name."""
    from plugins.hooks.app_db import AppDbHook

    raw_key = "rk_" + "Zz9" * 15
    tenant_id = tenant["tenant_id"]
    conn = AppDbHook().get_conn()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO interactions (event_id, tenant_id, user_id, item_id, interaction_type, ts, source,"
                " kafka_partition, kafka_offset) SELECT 'dq-future-event', %s, 'user_00001', item_id, 'view',"
                " now() + interval '1 day', 'dq-test', 0, 0 FROM items WHERE tenant_id = %s LIMIT 1",
                (tenant_id, tenant_id),
            )
            cur.execute(
                "INSERT INTO model_versions (tenant_id, version, artifact_uri) VALUES (%s, 'dq-unaudited', 's3://x/y')",
                (tenant_id,),
            )
            cur.execute(
                "INSERT INTO deployments (id, tenant_id, version, traffic_percent, active)"
                " VALUES ('dq-unaudited-deployment', %s, 'dq-unaudited', 100, false)",
                (tenant_id,),
            )
            cur.execute(
                "UPDATE api_keys SET name = %s WHERE id = (SELECT min(id) FROM api_keys WHERE tenant_id = %s)",
                (raw_key, tenant_id),
            )
        conn.commit()
        yield raw_key
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM interactions WHERE event_id = 'dq-future-event'")
            cur.execute("DELETE FROM deployments WHERE id = 'dq-unaudited-deployment'")
            cur.execute("DELETE FROM model_versions WHERE tenant_id = %s AND version = 'dq-unaudited'", (tenant_id,))
            cur.execute(
                "UPDATE api_keys SET name = 'dq check' WHERE tenant_id = %s AND name = %s", (tenant_id, raw_key)
            )
        conn.commit()
        conn.close()


def test_fails_naming_each_broken_rule(tenant, broken_rules):
    dag_run = run_dag("data_quality_check", logical_date=D2, run_conf=MINE)
    assert dag_run.state == "failed"
    assert task_states(dag_run) == {"measure": "success", "validate": "failed"}

    validation = xcom(dag_run, "validate", key="validation")
    failed = {(f["batch"], f["column"]) for f in validation["failed_expectations"]}
    assert failed == {
        ("interactions", "future_interactions"),
        ("audit_log", "unaudited_deployments"),
        ("api_keys", "raw_key_columns"),
    }
    raised = alert(dag_run, "validate")
    assert raised["suite"] == "data_quality_check" and raised["stage"] == "validate" and raised["try_number"] == 1
    lines = raised["failed_expectations"]
    assert any(
        line.startswith("interactions[future_interactions]: expect_column_values_to_be_in_set") for line in lines
    )
    assert any(line.startswith("audit_log[unaudited_deployments]") for line in lines)
    assert any(line.startswith("api_keys[raw_key_columns]") and "e.g. ['name']" in line for line in lines)
    assert broken_rules not in str(raised)  # the rule names the column, never the key

    # The one extra row counts as growth, well within the factor: only the three rules fail.
    growth = {(r["tenant"], r["table_name"]): r for r in _row_counts(xcom(dag_run, "measure")).to_dict("records")}
    assert growth[("ops-dq", "interactions")]["today"] == 301


def _row_counts(measured: dict[str, Any]) -> pd.DataFrame:
    from plugins.ops.data_quality import frames

    return frames(measured)["row_counts"]


def test_row_counts_fail_on_a_drop_and_on_runaway_growth(tmp_path):
    """The day-over-day rule on its own, through the real suite: no stack, no Airflow."""
    from plugins.ops.data_quality import frames
    from plugins.validation import validate_stage

    def counts(interactions: int, items: int) -> dict[str, int]:
        return {"interactions": interactions, "items": items}

    today = {"steady": counts(100, 10), "shrunk": counts(50, 10), "exploded": counts(1000, 10), "new": counts(7, 3)}
    before = {"steady": counts(100, 10), "shrunk": counts(100, 10), "exploded": counts(100, 10), "gone": counts(5, 2)}
    refused = {"update_refused": True, "delete_refused": True, "update_outcome": "", "delete_outcome": ""}
    measured = {
        "tenants": [],
        "interactions": [],
        "api_keys": [],
        "audit_log": [],
        "audit_append_only": refused,
        "row_counts": today,
        "previous": {"measured_at": "2026-11-04T00:00:00+00:00", "row_counts": before},
    }
    batches = frames(measured)
    row_counts = batches["row_counts"].set_index(["tenant", "table_name"])
    assert pd.isna(row_counts.loc[("new", "interactions"), "growth"])  # a tenant's first data is not growth
    assert row_counts.loc[("gone", "items"), "today"] == 0

    result = validate_stage(
        "data_quality_check", batches, parameters={"max_growth_factor": 5.0}, results_dir=tmp_path, run_name="drop"
    )
    assert not result.success
    [failure] = result.failed_expectations
    assert (failure["batch"], failure["column"]) == ("row_counts", "growth")
    assert failure["unexpected_count"] == 4  # shrunk 0.5, exploded 10.0, gone 0.0 twice
    assert sorted(failure["partial_unexpected_list"]) == [0.0, 0.0, 0.5, 10.0]
