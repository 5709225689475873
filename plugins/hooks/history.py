"""HistoryHook: the pipeline's run history, a database of its own behind the ``validation_history`` connection.

One row per DAG, tenant and logical date (include/sql/validation_history/), written by every run's report task
whether the run passed or failed. A re-run or backfill of the same day replaces the row (an UPSERT on the key),
so the history holds each day's latest verdict and a backfill over past days seeds a baseline.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from include.config import HISTORY_CONN_ID


def _json(value: Any) -> str | None:
    """JSON text for a ``%s::jsonb`` placeholder: the same under psycopg 2 and 3, whichever the hook's driver is."""
    import json

    return None if value is None else json.dumps(_finite(value), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSONB has no token for them (a KL divergence can be infinite)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# The row's columns, in the table's order; JSON ones travel as JSON text cast to jsonb.
COLUMNS = (
    "dag_id",
    "tenant",
    "logical_date",
    "run_id",
    "run_type",
    "run_key",
    "success",
    "failed_stage",
    "scale",
    "stages",
    "model",
    "recommendations",
    "drills",
    "checksums",
    "upload",
    "trend",
)
JSON_COLUMNS = frozenset({"scale", "stages", "model", "recommendations", "drills", "checksums", "upload", "trend"})
KEY = ("dag_id", "tenant", "logical_date")


class HistoryHook(PostgresHook):
    conn_name_attr = "postgres_conn_id"
    default_conn_name = HISTORY_CONN_ID
    hook_name = "Validation history"

    def __init__(self, postgres_conn_id: str = HISTORY_CONN_ID, **kwargs) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    def upsert_run(self, *, row: dict[str, Any]) -> None:
        """Write one day's row, replacing the one a previous run of the same day left."""
        missing = [
            c
            for c in ("dag_id", "tenant", "logical_date", "run_id", "run_type", "run_key", "success", "stages")
            if row.get(c) is None
        ]
        if missing:
            raise ValueError(f"a history row needs {', '.join(missing)}; found keys {sorted(row)}")
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise ValueError(f"history rows have columns {', '.join(COLUMNS)}; found unknown {', '.join(unknown)}")
        values = [_json(row.get(c)) if c in JSON_COLUMNS else row.get(c) for c in COLUMNS]
        placeholders = ", ".join("%s::jsonb" if c in JSON_COLUMNS else "%s" for c in COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in KEY)
        sql = (
            f"INSERT INTO runs ({', '.join(COLUMNS)}, written_at) VALUES ({placeholders}, now())"
            f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates}, written_at = now()"
        )
        # Not self.run(): it logs the statement with every parameter, a whole row of JSON per run.
        conn = self.get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, values)
            conn.commit()
        finally:
            conn.close()

    def _rows(self, sql: str, parameters: tuple) -> list[dict[str, Any]]:
        conn = self.get_conn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, parameters)
                names = [c.name for c in cur.description]
                return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
        finally:
            conn.close()

    def baseline(
        self, *, dag_id: str, tenant: str, before: date, limit: int, scale: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The tenant's last ``limit`` successful days before ``before`` at the same scale, newest first."""
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM runs WHERE dag_id = %s AND tenant = %s AND logical_date < %s AND success"
            " AND scale IS NOT DISTINCT FROM %s::jsonb ORDER BY logical_date DESC LIMIT %s",
            (dag_id, tenant, before, _json(scale), limit),
        )

    def previous_upload(self, *, dag_id: str, tenant: str, before: date) -> dict[str, Any] | None:
        """The latest day before ``before`` whose run uploaded data, passed or failed later: what was uploaded
        is what the next upload is compared with."""
        rows = self._rows(
            "SELECT logical_date, run_id, checksums, upload FROM runs WHERE dag_id = %s AND tenant = %s"
            " AND logical_date < %s AND checksums IS NOT NULL ORDER BY logical_date DESC LIMIT 1",
            (dag_id, tenant, before),
        )
        return rows[0] if rows else None

    def runs(self, *, dag_id: str, tenant: str, through: date | None = None) -> list[dict[str, Any]]:
        """Every day of a tenant, oldest first (through ``through`` if given): what the plots draw."""
        where, params = "dag_id = %s AND tenant = %s", (dag_id, tenant)
        if through is not None:
            where, params = where + " AND logical_date <= %s", (*params, through)
        return self._rows(
            f"SELECT {', '.join(COLUMNS)}, written_at FROM runs WHERE {where} ORDER BY logical_date", params
        )

    def latest(self) -> list[dict[str, Any]]:
        """Each DAG and tenant's latest day, with when it last passed: what the Prometheus metrics expose.

        The latest *logical date* is the tenant's current verdict (a backfill of an older day does not replace
        it); ``last_success_at`` is the newest write of any passing day, for "no successful run in 26 h".
        """
        return self._rows(
            "SELECT DISTINCT ON (dag_id, tenant) dag_id, tenant, logical_date, success, failed_stage, stages, model,"
            " recommendations, trend, written_at, max(written_at) FILTER (WHERE success)"
            " OVER (PARTITION BY dag_id, tenant) AS last_success_at"
            " FROM runs ORDER BY dag_id, tenant, logical_date DESC",
            (),
        )
