"""data_quality_check: the platform's tables, every tenant, proven daily with the GX suite
expectations/data_quality_check/<batch>.json.

:func:`measure` reads the app database through AppDbHook and returns small per-tenant tables (the
measure task's XCom); :func:`frames` turns them into the suite's batches; :func:`validate` runs it.
The checks run in SQL and bring back per-tenant counts, not rows, so the job costs the same whether a
tenant has a thousand interactions or a billion. They cover every tenant, or only the slugs given in the
``tenants`` param (to re-check a tenant after a fix):

- ``interactions``: per tenant, interactions whose item is not in the tenant's catalog, duplicate
  event ids, and timestamps in the future (beyond ``max_clock_skew_s`` of the database's clock);
- ``api_keys``: per key, whether key_hash is a 64-hex digest and which columns (all of them, so a
  column added later is covered) hold something that looks like a raw key. Only column names are
  reported, never values: a failure message must not leak the key;
- ``audit_log``: per tenant, deployments without their model.deployed audit row, and audit rows whose
  details look like they hold a raw key;
- ``audit_append_only``: an UPDATE and a DELETE of the newest audit row, each inside a transaction
  that is always rolled back, must be refused by the database;
- ``row_counts``: per tenant and table, today's rows against the previous run's measurement (kept as
  that run's XCom): no drop, and growth within ``max_growth_factor``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SUITE = "data_quality_check"
COUNTED_TABLES = ("interactions", "items")
# SQLSTATEs that mean "the database refused to change the audit log": the append-only trigger raises
# (P0001 raise_exception), or the role has no UPDATE/DELETE privilege (42501 insufficient_privilege).
REFUSALS = {"P0001": "refused by trigger", "42501": "refused by privileges"}
PROBE_TIMEOUTS = ("SET LOCAL lock_timeout = '5s'", "SET LOCAL statement_timeout = '15s'")

# Every query checks all tenants, or only the slugs of the ``tenants`` param (an empty list means all).
SCOPE = "(coalesce(cardinality(%s::text[]), 0) = 0 OR t.slug = ANY(%s::text[]))"

INTERACTIONS_SQL = f"""
SELECT t.slug AS tenant,
       count(i.event_id) AS interactions,
       count(i.event_id) FILTER (WHERE it.item_id IS NULL) AS unknown_item_refs,
       count(i.event_id) - count(DISTINCT i.event_id) AS duplicate_event_ids,
       count(i.event_id) FILTER (WHERE i.ts > now() + make_interval(secs => %s)) AS future_interactions,
       (SELECT count(*) FROM items x WHERE x.tenant_id = t.id) AS items
FROM tenants t
LEFT JOIN interactions i ON i.tenant_id = t.id
LEFT JOIN items it ON it.tenant_id = i.tenant_id AND it.item_id = i.item_id
WHERE {SCOPE}
GROUP BY t.id, t.slug
ORDER BY t.slug
"""

AUDIT_SQL = f"""
SELECT t.slug AS tenant,
       (SELECT count(*) FROM deployments d WHERE d.tenant_id = t.id) AS deployments,
       (SELECT count(*) FROM deployments d
         WHERE d.tenant_id = t.id
           AND NOT EXISTS (SELECT 1 FROM audit_log a
                            WHERE a.tenant_id = d.tenant_id AND a.action = 'model.deployed'
                              AND a.details ->> 'deployment_id' = d.id)) AS unaudited_deployments,
       (SELECT count(*) FROM audit_log a WHERE a.tenant_id = t.id AND a.details::text ~ %s)
           AS raw_key_audit_rows
FROM tenants t
WHERE {SCOPE}
ORDER BY t.slug
"""

# Every column of the row, whatever its type, is checked against the raw-key pattern (to_jsonb turns a row
# into {column: value}), so a column added later is covered too. Only column names leave the database.
API_KEYS_SQL = f"""
SELECT k.id AS key_id, t.slug AS tenant,
       coalesce(k.key_hash ~ '^[0-9a-f]{{64}}$', false) AS key_hash_is_sha256_hex,
       coalesce((SELECT string_agg(col.key, ',' ORDER BY col.key)
                   FROM jsonb_each_text(to_jsonb(k)) AS col
                  WHERE col.value ~ %s), '') AS raw_key_columns
FROM api_keys k
JOIN tenants t ON t.id = k.tenant_id
WHERE {SCOPE}
ORDER BY t.slug, k.id
"""

BATCH_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("tenant", "interactions", "unknown_item_refs", "duplicate_event_ids", "future_interactions"),
    "api_keys": ("key_id", "tenant", "key_hash_is_sha256_hex", "raw_key_columns"),
    "audit_log": ("tenant", "deployments", "unaudited_deployments", "raw_key_audit_rows"),
    "audit_append_only": ("update_refused", "delete_refused", "update_outcome", "delete_outcome"),
    "row_counts": ("tenant", "table_name", "today", "previous", "growth"),
}


def _records(db: Any, query: Any, parameters: tuple) -> list[dict[str, Any]]:
    """Rows as plain dicts (native Python types), ready for XCom."""
    return db.get_df(query, parameters=parameters).to_dict("records")


def probe_append_only(db: Any) -> dict[str, Any]:
    """Try to UPDATE and DELETE the newest audit row; everything is rolled back whatever happens.

    A row-level trigger only fires on rows, so with an empty log a probe row is inserted first (inside
    the same, rolled-back transaction). Both statements touch one row, to hold locks on as little as possible.
    """
    conn = db.get_conn()
    outcomes: dict[str, str] = {}
    refused: dict[str, bool] = {}
    try:
        with conn.cursor() as cur:
            for setting in PROBE_TIMEOUTS:
                cur.execute(setting)
            cur.execute("SELECT id FROM audit_log ORDER BY id DESC LIMIT 1")
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO audit_log (actor, action, details)"
                    " VALUES ('data_quality_check', 'dq.append_only_probe', '{}'::jsonb) RETURNING id"
                )
                row = cur.fetchone()
            for verb, statement in (
                ("update", "UPDATE audit_log SET action = action WHERE id = %s"),
                ("delete", "DELETE FROM audit_log WHERE id = %s"),
            ):
                cur.execute("SAVEPOINT probe")
                try:
                    cur.execute(statement, (row[0],))
                except Exception as exc:
                    state = _sqlstate(exc)
                    if state is None:  # not the database's answer (e.g. the connection dropped): retry the task
                        raise
                    refused[verb] = state in REFUSALS
                    message = (str(exc).strip().splitlines() or [""])[0]
                    outcomes[verb] = f"{REFUSALS.get(state, f'failed with SQLSTATE {state}')}: {message}"
                else:
                    refused[verb] = False
                    outcomes[verb] = f"{verb.upper()} of audit_log row {row[0]} succeeded ({cur.rowcount} row)"
                cur.execute("ROLLBACK TO SAVEPOINT probe")
    finally:
        conn.rollback()
        conn.close()
    return {
        "update_refused": refused["update"],
        "delete_refused": refused["delete"],
        "update_outcome": outcomes["update"],
        "delete_outcome": outcomes["delete"],
    }


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, whichever driver the hook uses (psycopg 3 or psycopg2)."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def measure(
    *, max_clock_skew_s: int, raw_key_pattern: str, tenants: list[str], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Everything the suite checks, as small JSON-able tables; ``previous`` is the last run's measurement.

    ``tenants`` limits the checks to those slugs (all tenants if empty); the previous run's row counts are
    limited the same way, so a tenant outside the scope never reads as one whose rows were all dropped.
    """
    from plugins.hooks.app_db import AppDbHook

    db = AppDbHook()
    scope = (tenants, tenants)
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    interactions = _records(db, INTERACTIONS_SQL, (max_clock_skew_s, *scope))
    row_counts = {r["tenant"]: {table: int(r[table]) for table in COUNTED_TABLES} for r in interactions}
    before = None
    if previous:
        counts = previous["row_counts"]
        in_scope = {slug: n for slug, n in counts.items() if slug in tenants} if tenants else counts
        before = {"measured_at": previous["measured_at"], "row_counts": in_scope}
    return {
        "measured_at": measured_at,
        "tenants": tenants,
        "interactions": [{k: r[k] for k in BATCH_COLUMNS["interactions"]} for r in interactions],
        "api_keys": _records(db, API_KEYS_SQL, (raw_key_pattern, *scope)),
        "audit_log": _records(db, AUDIT_SQL, (raw_key_pattern, *scope)),
        "audit_append_only": probe_append_only(db),
        "row_counts": row_counts,
        "previous": before,
    }


def row_count_frame(today: dict[str, dict[str, int]], previous: dict[str, dict[str, int]] | None) -> pd.DataFrame:
    """One row per tenant and table. growth = today / previous; empty (NaN) where there is nothing to
    compare: no previous run, or the tenant had no rows then (a tenant's first data is onboarding)."""
    import numpy as np
    import pandas as pd

    previous = previous or {}
    rows = []
    for tenant in sorted(set(today) | set(previous)):
        for table in COUNTED_TABLES:
            now = today.get(tenant, {}).get(table, 0)  # a tenant gone since the last run dropped all its rows
            before = previous.get(tenant, {}).get(table) if previous else None
            rows.append(
                {
                    "tenant": tenant,
                    "table_name": table,
                    "today": now,
                    "previous": before,
                    "growth": now / before if before else np.nan,
                }
            )
    frame = pd.DataFrame(rows, columns=list(BATCH_COLUMNS["row_counts"]))
    return frame.astype({"previous": "float64", "growth": "float64"})


def frames(measured: dict[str, Any]) -> dict[str, pd.DataFrame]:
    import pandas as pd

    batches = {
        name: pd.DataFrame(measured[name], columns=list(BATCH_COLUMNS[name]))
        for name in ("interactions", "api_keys", "audit_log")
    }
    batches["audit_append_only"] = pd.DataFrame(
        [measured["audit_append_only"]], columns=list(BATCH_COLUMNS["audit_append_only"])
    )
    previous = measured["previous"]["row_counts"] if measured["previous"] else None
    batches["row_counts"] = row_count_frame(measured["row_counts"], previous)
    return batches


def validate(measured: dict[str, Any], *, max_growth_factor: float, results_dir: str, run_name: str):
    """Run the suite. The batches with failed expectations are logged as tables: GX names the rule and the
    offending values, the table shows which tenant they belong to."""
    import logging

    from plugins.validation import validate_stage

    batches = frames(measured)
    result = validate_stage(
        SUITE, batches, parameters={"max_growth_factor": max_growth_factor}, results_dir=results_dir, run_name=run_name
    )
    log = logging.getLogger(__name__)
    for name in dict.fromkeys(f["batch"] for f in result.failed_expectations):
        log.error("batch %s failed its expectations:\n%s", name, batches[name].head(50).to_string(index=False))
    return result
