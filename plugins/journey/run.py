"""JourneyRun: who and what one run of the journey is about, derived from the Airflow context.

Everything a stage writes is keyed by tenant and ``run_key``. The run key is the logical date's day plus a
digest of the parameters that shape the data, so the same logical date with the same parameters always
reproduces the same objects, event ids and checksums (backfills and reruns are idempotent), while a run with
other sizes or another input never overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.config import reports_root, safe_name, work_root

# The params that decide what data a run produces; anything else (thresholds, sample sizes) does not.
DATA_PARAMS: tuple[str, ...] = ("seed", "n_users", "n_items", "n_interactions", "interactions_uri", "items_uri")
# How a tenant's own files map to the contract: they shape a bring-your-own-data run's data only.
LAYOUT_PARAMS: tuple[str, ...] = ("columns", "interaction_type_map", "default_interaction_type", "timezone")


@dataclass(frozen=True)
class JourneyRun:
    dag_id: str
    run_id: str
    tenant: str
    window_start: datetime
    window_end: datetime
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: Any, *, tenant: str) -> JourneyRun:
        """``tenant`` is the map index's tenant: one run of the DAG may validate several."""
        dag_run = context["dag_run"]
        # The day validated is the logical date's, not the data interval's: Airflow infers a manual run's
        # interval as the day *before* its logical date, while scheduled and backfill runs start their interval
        # at it, and a logical date must mean the same data however it was run.
        logical = context.get("logical_date")
        if logical is None:
            # Manual runs without a logical date validate the day they were triggered for.
            logical = dag_run.run_after
        logical = _utc(logical)
        start = datetime(logical.year, logical.month, logical.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        params = dict(context["params"])
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            tenant=tenant,
            window_start=start,
            window_end=end,
            params=params,
        )

    @property
    def byod(self) -> bool:
        """Bring your own data: validate a real tenant's sample instead of generated data."""
        return bool(self.params.get("interactions_uri"))

    @property
    def run_key(self) -> str:
        shaping = {name: self.params.get(name) for name in DATA_PARAMS + (LAYOUT_PARAMS if self.byod else ())}
        digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.window_start:%Y-%m-%d}-{digest}"

    @property
    def model_version(self) -> str:
        return f"v{self.run_key.replace('-', '')}"

    @property
    def object_prefix(self) -> str:
        return f"{self.tenant}/{self.run_key}/"

    @property
    def work_dir(self) -> str:
        path = os.path.join(work_root(), self.tenant, self.run_key)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def report_dir(self) -> str:
        path = os.path.join(reports_root(), safe_name(self.run_id), self.tenant)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def gx_dir(self) -> str:
        return os.path.join(self.report_dir, "gx")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(value.timestamp(), tz=UTC)
