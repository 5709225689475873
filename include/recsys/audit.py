"""The audit trail: one append-only row per state change, written in the change's own transaction.

Recommendations are too frequent for a row each, so they are counted in memory and flushed as one
"recommendations.served" row per tenant and source every few seconds.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from include.recsys.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

ACTIONS: tuple[str, ...] = (
    "tenant.created",
    "tenant.deleted",
    "tenant.plan_changed",
    "apikey.created",
    "apikey.revoked",
    "upload.registered",
    "interactions.ingested",
    "model.registered",
    "model.deployed",
    "model.undeployed",
    "recommendations.served",
)


def record(
    cur,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    object_ref: str | None,
    details: dict[str, Any],
    request_id: str | None = None,
) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; expected one of {', '.join(ACTIONS)}")
    cur.execute(
        "INSERT INTO audit_log (actor, tenant_id, action, object, details, request_id)"
        " VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
        (actor, tenant_id, action, object_ref, json.dumps(details, default=str), request_id),
    )


class ServedCounter:
    """Counts recommendations per (tenant, source) and flushes them as audit rows."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._counts: Counter[tuple[str, str | None]] = Counter()
        self._since = datetime.now(UTC)
        self._lock = threading.Lock()

    def add(self, tenant_id: str, source: str | None) -> None:
        with self._lock:
            self._counts[(tenant_id, source)] += 1

    def flush(self) -> int:
        """Writes pending counts; on a database outage they are kept for the next flush."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            since, self._since = self._since, datetime.now(UTC)
        if not counts:
            return 0
        try:
            with self._db.transaction() as cur:
                for (tenant_id, source), count in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
                    record(
                        cur,
                        actor="recsys-api",
                        action="recommendations.served",
                        tenant_id=tenant_id,
                        object_ref=None,
                        details={"source": source, "count": count, "since": since, "until": self._since},
                    )
        except DatabaseUnavailable as exc:
            log.warning("recommendations.served flush deferred: %s", exc)
            with self._lock:
                self._counts.update(counts)
                self._since = since
            return 0
        return sum(counts.values())
