"""A tenant onboarded the way a customer's data arrives, through the platform's real surfaces: the tenant via
the API, its catalog as an items CSV in the object store registered through the API, its interactions via
Kafka landed by the ingestion worker. Used by the ops DAG tests, which need a tenant without running the journey.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

DAY = datetime(2026, 11, 3, tzinfo=UTC)


def onboard(
    slug: str, *, n_users: int, n_items: int, n_interactions: int, seed: int = 7, day: datetime = DAY
) -> dict[str, Any]:
    """A tenant with a catalog and landed interactions, put in the way a customer's data arrives.

    Deterministic in its arguments and idempotent: event ids repeat, so running it again lands nothing new.
    """
    from include.config import INTERACTIONS_TOPIC, RAW_BUCKET
    from include.recsys.datagen import generate
    from plugins.hooks.kafka import KafkaHook
    from plugins.hooks.minio import MinioHook
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.journey.feed_kafka import messages, wait_for_landing

    source = f"ops-test-{slug}"
    data = generate(
        tenant=slug,
        interval_start=day,
        interval_end=day + timedelta(days=1),
        seed=seed,
        n_users=n_users,
        n_items=n_items,
        n_interactions=n_interactions,
    )
    api = RecsysApiHook(run_key=source)
    tenant_id = api.ensure_tenant(slug=slug, name=slug, email=f"ops@{slug}.example.com")["tenant_id"]
    items = MinioHook().put_bytes(
        bucket=RAW_BUCKET,
        key=f"{slug}/{source}/items.csv",
        data=data.items.to_csv(index=False).encode(),
        content_type="text/csv",
    )
    api.register_upload(
        tenant_id,
        kind="items",
        bucket=RAW_BUCKET,
        object_key=items.key,
        rows=len(data.items),
        sha256=items.sha256,
        source=source,
    )
    produced = KafkaHook().produce(INTERACTIONS_TOPIC, messages(data.interactions, tenant=slug, source=source))
    assert produced.acked == len(data.interactions), produced.errors
    landed, _ = wait_for_landing(tenant_id=tenant_id, source=source, expected=len(data.interactions), timeout_s=120)
    assert landed == len(data.interactions)
    return {"tenant_id": tenant_id, "slug": slug, "source": source, "data": data}
