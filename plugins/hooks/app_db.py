"""AppDbHook: read-only queries on the platform's app database (``postgres_app``).

The journey reconciles by counting what actually landed in the platform's tables, never by Kafka watermarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.postgres.hooks.postgres import PostgresHook

from include.config import POSTGRES_CONN_ID

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

LANDED_COLUMNS = ("event_id", "user_id", "item_id", "interaction_type", "ts", "kafka_partition", "kafka_offset")


class AppDbHook(PostgresHook):
    conn_name_attr = "postgres_conn_id"
    default_conn_name = POSTGRES_CONN_ID
    hook_name = "Recsys app DB"

    def __init__(self, postgres_conn_id: str = POSTGRES_CONN_ID, **kwargs) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    def now(self) -> datetime:
        """The database's clock: what ``ingested_at`` is stamped with, so comparisons need no clock sync."""
        return self.get_first("SELECT now()")[0]

    @staticmethod
    def _where(tenant_id: str, source: str | None, since: datetime | None) -> tuple[str, tuple]:
        """``since``: only rows (re)written since then. A rerun re-upserts rows that already exist, and only
        their fresh ``ingested_at`` shows that this attempt's feed has landed."""
        where, params = "tenant_id = %s", (tenant_id,)
        if source is not None:
            where, params = where + " AND source = %s", (*params, source)
        if since is not None:
            where, params = where + " AND ingested_at >= %s", (*params, since)
        return where, params

    def count_landed(self, *, tenant_id: str, source: str, since: datetime | None = None) -> int:
        where, params = self._where(tenant_id, source, since)
        return int(self.get_first(f"SELECT count(*) FROM interactions WHERE {where}", parameters=params)[0])

    def rows_landed(self, *, tenant_id: str, source: str) -> int:
        """The ingestion worker's own count for one upload/run, rewritten in each batch's transaction: one row
        to read, so it suits a tight progress loop, where count_landed counts every row each time."""
        sql = "SELECT rows_landed FROM ingest_progress WHERE tenant_id = %s AND source = %s"
        row = self.get_first(sql, parameters=(tenant_id, source))
        return int(row[0]) if row else 0

    def landed(self, *, tenant_id: str, source: str | None = None, since: datetime | None = None) -> pd.DataFrame:
        """Interactions the platform holds for a tenant (optionally one upload/run), oldest first."""
        where, params = self._where(tenant_id, source, since)
        return self.get_df(
            f"SELECT {', '.join(LANDED_COLUMNS)} FROM interactions WHERE {where} ORDER BY ts, event_id",
            parameters=params,
        )

    def catalog(self, *, tenant_id: str, upload_id: str | None = None) -> pd.DataFrame:
        """The catalog of one upload (its snapshot), or without ``upload_id`` the tenant's merged catalog."""
        if upload_id is not None:
            return self.get_df(
                "SELECT item_id, title, category, price, image_url FROM catalog_items"
                " WHERE tenant_id = %s AND upload_id = %s ORDER BY item_id",
                parameters=(tenant_id, upload_id),
            )
        return self.get_df(
            "SELECT item_id, title, category, price, image_url FROM items WHERE tenant_id = %s ORDER BY item_id",
            parameters=(tenant_id,),
        )
