"""Interaction messages as the platform's Kafka contract has them, and the rows they land as."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.recsys.contract import schema


def message(slug: str, source: str, n: int) -> dict:
    """The n-th valid interaction message of a tenant for one source (deterministic ids and values)."""
    return {
        "tenant": slug,
        "source": source,
        "event_id": f"{source}-{n:06d}",
        "user_id": f"user_{n % 97:03d}",
        "item_id": f"item_{n % 501:04d}",
        "interaction_type": schema.INTERACTION_TYPES[n % 4],
        "timestamp": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(),
    }


def landed(db, tenant_id: str, source: str) -> int:
    """Rows of one tenant and source in the interactions table."""
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM interactions WHERE tenant_id = %s AND source = %s", (tenant_id, source))
        return cur.fetchone()[0]
