"""The run history on the stack's real Postgres, through HistoryHook and the validation_history connection: the
migrated schema, the upsert that replaces a day, and the baseline and previous-upload queries the trend and the
drift check rely on. Seven days plus today here in milliseconds; tests/dags/test_run_history.py runs real days."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from plugins.journey import STAGES
from plugins.journey.trend import compare, figures

DAG_ID = "onboarding_journey"
SCALE = {"n_users": 400, "n_items": 200, "n_interactions": 8000}
TODAY = date(2026, 9, 20)


@pytest.fixture
def hook(env):
    from plugins.hooks.history import HistoryHook

    return HistoryHook()


@pytest.fixture
def tenant(hook):
    slug = f"it-store-{uuid.uuid4().hex[:8]}"
    yield slug
    hook.run("DELETE FROM runs WHERE tenant = %s", parameters=(slug,))


def day_row(tenant: str, day: date, *, ndcg: float, success: bool = True, scale: dict | None = SCALE, **extra) -> dict:
    return {
        "dag_id": DAG_ID,
        "tenant": tenant,
        "logical_date": day,
        "run_id": f"backfill__{day}",
        "run_type": "backfill",
        "run_key": f"{day}-abcd1234",
        "success": success,
        "failed_stage": None if success else "train_model",
        "scale": scale,
        "stages": {s: {"status": "success", "duration_s": 2.0} for s in STAGES},
        "model": {"ndcg_at_10": ndcg, "version": f"v{day:%Y%m%d}"},
        "recommendations": {"p95_ms": 20.0},
        **extra,
    }


def test_the_schema_is_migrated_with_its_own_version_table(hook):
    assert hook.get_first("SELECT name FROM schema_migrations WHERE version = 1")[0] == "0001_runs.sql"
    assert hook.get_first("SELECT to_regclass('runs') IS NOT NULL")[0] is True


def test_an_upsert_of_the_same_day_replaces_its_row(hook, tenant):
    hook.upsert_run(row=day_row(tenant, TODAY, ndcg=0.40))
    hook.upsert_run(
        row={**day_row(tenant, TODAY, ndcg=0.10, success=False), "run_id": "manual__again", "run_type": "manual"}
    )
    rows = hook.runs(dag_id=DAG_ID, tenant=tenant)
    assert len(rows) == 1
    assert (rows[0]["run_id"], rows[0]["run_type"], rows[0]["success"], rows[0]["model"]["ndcg_at_10"]) == (
        "manual__again",
        "manual",
        False,
        0.10,
    )


def test_seven_backfilled_days_plus_today_compare_today_with_the_last_seven(hook, tenant):
    # Nine earlier days: the oldest falls out of the window of seven, a failed day and another scale never count.
    for back in range(1, 10):
        hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=back), ndcg=0.30 + 0.01 * back))
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=3), ndcg=0.01, success=False))
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=2), ndcg=0.99, scale={**SCALE, "n_items": 400}))
    hook.upsert_run(row=day_row(tenant, TODAY + timedelta(days=1), ndcg=0.99))  # after today: never a baseline

    baseline = hook.baseline(dag_id=DAG_ID, tenant=tenant, before=TODAY, limit=7, scale=SCALE)
    assert [r["logical_date"] for r in baseline] == [TODAY - timedelta(days=b) for b in (1, 4, 5, 6, 7, 8, 9)]

    today = day_row(tenant, TODAY, ndcg=0.25)
    trend = compare(figures(today), baseline, threshold=0.2, min_runs=3, window=7)
    ndcg = trend["figures"]["ndcg_at_10"]
    assert ndcg["n_baseline"] == 7 and ndcg["baseline"] == pytest.approx(0.36)  # median of .31 .34 .. .39
    assert ndcg["regression"] is True and trend["regressions"] == ["ndcg_at_10"]
    assert trend["window"]["days"][0] == str(TODAY - timedelta(days=9)) and len(trend["window"]["days"]) == 7


def test_a_tenants_own_files_compare_with_every_earlier_day_without_a_scale(hook, tenant):
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=1), ndcg=0.3, scale=None))
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=2), ndcg=0.3))
    found = hook.baseline(dag_id=DAG_ID, tenant=tenant, before=TODAY, limit=7, scale=None)
    assert [r["logical_date"] for r in found] == [TODAY - timedelta(days=1)]


def test_the_previous_upload_is_the_latest_earlier_day_that_uploaded_passed_or_failed(hook, tenant):
    assert hook.previous_upload(dag_id=DAG_ID, tenant=tenant, before=TODAY) is None
    checksums = {"items": {"key": f"{tenant}/k/items.csv", "sha256": "a" * 64, "rows": 200}}
    hook.upsert_run(
        row=day_row(
            tenant,
            TODAY - timedelta(days=3),
            ndcg=0.3,
            checksums=checksums,
            upload={"profile": {"rows": {"items": 200}}},
        )
    )
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=2), ndcg=0.3, success=False, checksums=checksums))
    hook.upsert_run(row=day_row(tenant, TODAY - timedelta(days=1), ndcg=0.3))  # failed before uploading: no checksums
    found = hook.previous_upload(dag_id=DAG_ID, tenant=tenant, before=TODAY)
    assert found["logical_date"] == TODAY - timedelta(days=2) and found["checksums"] == checksums


def test_non_finite_figures_are_stored_as_null(hook, tenant):
    hook.upsert_run(
        row=day_row(
            tenant, TODAY, ndcg=float("nan"), upload={"drift": {"divergence": {"interaction_type": float("inf")}}}
        )
    )
    stored = hook.runs(dag_id=DAG_ID, tenant=tenant)[0]
    assert stored["model"]["ndcg_at_10"] is None and stored["upload"]["drift"]["divergence"]["interaction_type"] is None
