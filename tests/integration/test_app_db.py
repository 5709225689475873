"""AppDbHook on the real app database: landed rows read through COPY come back exactly as a row-by-row read
gives them, ids that look like missing values or need CSV quoting included, and the per-user queries the
journey uses instead of reading every landed row."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from plugins.hooks.app_db import LANDED_COLUMNS, AppDbHook

pytestmark = pytest.mark.integration

# Each one a valid id a tenant may send: read_csv's default missing-value markers, CSV's own quoting
# characters, a line break, a non-ASCII id.
AWKWARD_IDS = ("NA", "null", "NaN", "", 'he said "hi"', "a,b", "two\nlines", "ユーザー")


@pytest.fixture
def tenant(db, env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_APP", env["AIRFLOW_CONN_POSTGRES_APP"])
    tenant_id = f"t-appdb-{uuid.uuid4().hex[:8]}"
    rows = [
        (f"{tenant_id}-e{n}", tenant_id, user, item, "view", f"2026-11-20 0{n % 10}:00:00.{n:06d}+00", source, n % 3, n)
        for n, (user, item, source) in enumerate(
            [(user, f"item-{i}", "run-a") for i, user in enumerate(AWKWARD_IDS)]
            + [("NA", "item-x", "run-b"), ("u-plain", "NA", "run-b"), ("u-plain", "NA", "run-a")]
        )
    ]
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO tenants (id, slug, name, email) VALUES (%s, %s, 'app db test', 'a@example.com')",
            (tenant_id, tenant_id),
        )
        cur.executemany(
            "INSERT INTO interactions (event_id, tenant_id, user_id, item_id, interaction_type, ts, source,"
            " kafka_partition, kafka_offset) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    yield tenant_id
    with db.cursor() as cur:
        cur.execute("DELETE FROM interactions WHERE tenant_id = %s", (tenant_id,))
        cur.execute("DELETE FROM tenants WHERE id = %s", (tenant_id,))


def test_landed_through_copy_equals_a_row_by_row_read(tenant):
    hook = AppDbHook()
    for source in (None, "run-a", "run-b"):
        copied = hook.landed(tenant_id=tenant, source=source)
        where, params = hook._where(tenant, source, None)
        fetched = hook.get_df(
            f"SELECT {', '.join(LANDED_COLUMNS)} FROM interactions WHERE {where} ORDER BY ts, event_id",
            parameters=params,
        )
        assert len(copied) == {None: 11, "run-a": 9, "run-b": 2}[source]
        pd.testing.assert_frame_equal(copied, fetched)
    assert set(hook.landed(tenant_id=tenant, source="run-a")["user_id"]) == {*AWKWARD_IDS, "u-plain"}
    assert str(hook.landed(tenant_id=tenant)["ts"].dtype) == "datetime64[us, UTC]"


def test_landed_pairs_are_the_landed_ids_as_categoricals(tenant):
    hook = AppDbHook()
    for source in ("run-a", "run-b"):
        pairs = hook.landed_pairs(tenant_id=tenant, source=source)
        assert tuple(pairs.columns) == ("user_id", "item_id")
        assert all(isinstance(pairs[c].dtype, pd.CategoricalDtype) for c in pairs.columns)
        landed = hook.landed(tenant_id=tenant, source=source)
        # The same ids, awkward ones included, none read as missing.
        as_read = zip(pairs["user_id"].astype(str), pairs["item_id"].astype(str), strict=True)
        assert sorted(as_read) == sorted(zip(landed["user_id"], landed["item_id"], strict=True))
        assert not pairs.isna().any().any()
    assert hook.landed_pairs(tenant_id=tenant, source="no-such-run").empty


def test_landed_of_nothing_is_an_empty_frame_with_the_columns(tenant):
    empty = AppDbHook().landed(tenant_id=tenant, source="no-such-run")
    assert empty.empty and tuple(empty.columns) == LANDED_COLUMNS


def test_landed_users_and_histories(tenant):
    hook = AppDbHook()
    assert hook.landed_users(tenant_id=tenant, source="run-b") == ["NA", "u-plain"]
    assert hook.landed_users(tenant_id=tenant, source="run-a") == sorted({*AWKWARD_IDS, "u-plain"})
    # Over every source: "NA" has item-0 from run-a and item-x from run-b.
    assert hook.histories(tenant_id=tenant, user_ids=["NA", "u-plain", "nobody", 'he said "hi"']) == {
        "NA": {"item-0", "item-x"},
        "u-plain": {"NA"},
        'he said "hi"': {"item-4"},
    }
    assert hook.histories(tenant_id=tenant, user_ids=[]) == {}
