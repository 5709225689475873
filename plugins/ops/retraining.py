"""tenant_model_training: retrain one tenant's model from the interactions the platform has landed,
prove it with the train_model GX suite, register it, and deploy it only if it beats the version serving.

A run trains on a snapshot: the tenant's interactions ingested up to the run's ``run_after`` (fixed for
the run, so every retry sees the same rows), optionally only those of the last ``days`` days. That point in
time is the model's logical date: like the journey's, a model older than the tenant's live one (or a live
one with no logical date) never takes its traffic; it is validated as a candidate and the live model stays. The model
version is derived from the tenant, that snapshot and the training config, so a retry, or a rerun on
unchanged data, produces the same version instead of a new one; re-registering it is an upsert.

The journey's train_model stage is reused rather than copied: artifacts go where that stage puts them
(``<models bucket>/<tenant slug>/<version>/``) and are validated by that stage's own ``validate_model``, which
builds the suite's ``metrics`` batch from the stored artifacts. :class:`RetrainingRun` is the adapter
that lets the stage see a retraining run as one of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.config import MODELS_BUCKET
from plugins.journey.run import JourneyRun
from plugins.ops import report_dir

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

VERSION_PREFIX = "rt-"
FINGERPRINT_COLUMNS = ("event_id", "user_id", "item_id", "interaction_type", "ts")

SNAPSHOT_SQL = """
SELECT {columns} FROM interactions
WHERE tenant_id = %s
  AND ingested_at <= %s
  AND ts >= coalesce(%s::timestamptz, '-infinity'::timestamptz)
ORDER BY ts, event_id
"""


@dataclass(frozen=True)
class RetrainingRun(JourneyRun):
    """A retraining run as the journey's train_model stage sees it: its tenant, its model version, its
    thresholds (params) and where its GX results go. ``window_*`` is the span of the training data."""

    version: str = field(kw_only=True)

    @property
    def model_version(self) -> str:
        return self.version

    @property
    def report_dir(self) -> str:
        return report_dir(dag_id=self.dag_id, run_id=self.run_id)


def resolve_tenant(ref: str) -> dict[str, str]:
    """The tenant named by id or slug, as the platform's admin routes accept either."""
    from airflow.sdk.exceptions import AirflowFailException

    from plugins.hooks.app_db import AppDbHook

    row = AppDbHook().get_first("SELECT id, slug FROM tenants WHERE id = %s OR slug = %s", parameters=(ref, ref))
    if row is None:
        raise AirflowFailException(f"no tenant with id or slug {ref!r}: check the run's conf {{'tenant_id': ...}}")
    return {"tenant_id": row[0], "slug": row[1]}


def snapshot(*, tenant_id: str, until: datetime, since: datetime | None) -> pd.DataFrame:
    """The tenant's interactions ingested up to ``until`` with an event time from ``since`` on (all if None)."""
    from plugins.hooks.app_db import LANDED_COLUMNS, AppDbHook

    return AppDbHook().get_df(
        SNAPSHOT_SQL.format(columns=", ".join(LANDED_COLUMNS)), parameters=(tenant_id, until, since)
    )


def model_version(*, tenant_id: str, interactions: pd.DataFrame, item_ids: list[str], config: dict[str, Any]) -> str:
    """rt-<16 hex>: a digest of the tenant, its training rows, its catalog and the training config."""
    import pandas as pd

    rows = interactions[list(FINGERPRINT_COLUMNS)].assign(ts=pd.to_datetime(interactions["ts"], utc=True))
    rows = rows.sort_values("event_id", kind="stable").reset_index(drop=True)
    digest = hashlib.sha256(tenant_id.encode())
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    digest.update("\n".join(sorted(item_ids)).encode())
    digest.update(json.dumps(config, sort_keys=True).encode())
    return f"{VERSION_PREFIX}{digest.hexdigest()[:16]}"


def retraining_run(context: Any, trained: dict[str, Any]) -> RetrainingRun:
    dag_run = context["dag_run"]
    return RetrainingRun(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        tenant=trained["tenant"],
        window_start=datetime.fromisoformat(trained["window"][0]),
        window_end=datetime.fromisoformat(trained["window"][1]),
        params=dict(context["params"]),
        version=trained["version"],
    )


def train(context: Any) -> dict[str, Any]:
    """Train on the snapshot and store the artifacts; returns the summary the later tasks work from."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.recsys.contract.schema import ContractError
    from include.recsys.ml.train import save_artifacts, train_tenant
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.minio import MinioHook
    from plugins.journey.train_model import artifact_prefix, train_config

    params = context["params"]
    tenant = resolve_tenant(params["tenant_id"])
    until = context["dag_run"].run_after
    since = until - timedelta(days=params["days"]) if params["days"] else None
    interactions = snapshot(tenant_id=tenant["tenant_id"], until=until, since=since)
    span = f"from {since.isoformat()} " if since else ""
    if interactions.empty:
        raise AirflowFailException(
            f"tenant {tenant['slug']!r} has no landed interactions {span}up to {until.isoformat()}: nothing to train on"
        )
    item_ids = AppDbHook().catalog(tenant_id=tenant["tenant_id"])["item_id"].tolist()
    config = train_config(params)
    version = model_version(
        tenant_id=tenant["tenant_id"], interactions=interactions, item_ids=item_ids, config=config.to_dict()
    )
    try:
        result = train_tenant(interactions, item_ids=item_ids, config=config)
    except ContractError as exc:
        # The landed data breaks the training contract (e.g. items missing from the catalog): a retry cannot help.
        raise AirflowFailException(f"tenant {tenant['slug']!r}: {exc}") from None
    first_event = interactions["ts"].min().isoformat()
    summary = {
        "tenant_id": tenant["tenant_id"],
        "tenant": tenant["slug"],
        "version": version,
        "rows": len(interactions),
        "window": [since.isoformat() if since else first_event, until.isoformat()],
        "logical_date": until.isoformat(),
        "metrics": result.metrics,
    }
    run = retraining_run(context, summary)
    stored = save_artifacts(result, client=MinioHook().client, bucket=MODELS_BUCKET, prefix=artifact_prefix(run))
    summary["artifact_uri"] = stored["artifact_uri"]
    log.info(
        "trained %s for tenant %s on %d interactions %sup to %s: NDCG@10 %.4f",
        version,
        tenant["slug"],
        len(interactions),
        span,
        until.isoformat(),
        summary["metrics"]["ndcg_at_10"],
    )
    return summary


def validate(context: Any, trained: dict[str, Any]):
    """The journey's train_model validation, on this run's artifacts and thresholds, over the tenant's merged
    catalog (what train() trained on)."""
    from plugins.journey.train_model import validate_model

    run = retraining_run(context, trained)
    return validate_model(run, tenant_id=trained["tenant_id"], catalog_upload_id=None)


def run_key(context: Any) -> str:
    """What the platform's audit rows of this run carry as their source."""
    dag_run = context["dag_run"]
    return f"{dag_run.dag_id}:{dag_run.run_id}"


def register(context: Any, trained: dict[str, Any]) -> dict[str, Any]:
    from plugins.hooks.recsys_api import RecsysApiHook

    source = run_key(context)
    return RecsysApiHook(run_key=source).register_model(
        trained["tenant_id"],
        version=trained["version"],
        metrics=trained["metrics"],
        artifact_uri=trained["artifact_uri"],
        logical_date=trained["logical_date"],
        source=source,
    )


def decide(*, candidate: dict[str, Any], deployed: dict[str, Any] | None, margin: float) -> tuple[bool, str]:
    """(deploy?, why). Deploy when nothing is deployed, or NDCG@10 >= the deployed version's + margin."""
    new = candidate["metrics"]["ndcg_at_10"]
    if deployed is None:
        return True, f"no version was deployed; {candidate['version']} has NDCG@10 {new:.4f}"
    if deployed["version"] == candidate["version"]:
        return False, f"{candidate['version']} is already the deployed version (same tenant, data and config)"
    current = (deployed.get("metrics") or {}).get("ndcg_at_10")
    if current is None:
        return True, f"the deployed version {deployed['version']} has no recorded NDCG@10 to beat"
    verdict = (
        f"{candidate['version']} NDCG@10 {new:.4f} vs deployed {deployed['version']} {current:.4f} + margin {margin:g}"
    )
    if new >= current + margin:
        return True, f"{verdict}: good enough, deploying"
    return False, f"{verdict}: not good enough, keeping {deployed['version']}"


def validate_as_candidate(api: Any, trained: dict[str, Any]) -> None:
    """Deploy at 0% traffic, prove the platform serves it with every item embedded, then unload it again."""
    deployed = api.deploy(trained["tenant_id"], trained["version"], traffic_percent=0)
    try:
        active = api.deployments(trained["tenant_id"])
        entry = next(d for d in active if d["deployment_id"] == deployed["deployment_id"])
        if not entry["served"] or entry["index_size"] != deployed["index_size"]:
            raise RuntimeError(f"candidate {trained['version']} of {trained['tenant']} is not served: {entry}")
    finally:
        api.end_deployment(trained["tenant_id"], deployed["deployment_id"])


def deploy_if_better(context: Any, trained: dict[str, Any]) -> dict[str, Any]:
    """Compare with the deployed version (the platform's active deployment) and deploy or keep; says why.
    A better model that is older than the live one is validated as a candidate instead ("candidate")."""
    from plugins.hooks.recsys_api import RecsysApiError, RecsysApiHook
    from plugins.journey.deploy_model import LIVE_LEFT_IN_PLACE, candidate_reason

    api = RecsysApiHook(run_key=run_key(context))
    margin = float(context["params"]["ndcg_margin"])
    deployed = next((m for m in api.list_models(trained["tenant_id"])["models"] if m["deployed"]), None)
    deploy, reason = decide(candidate=trained, deployed=deployed, margin=margin)
    decision = {
        "tenant": trained["tenant"],
        "candidate_version": trained["version"],
        "candidate_ndcg_at_10": trained["metrics"]["ndcg_at_10"],
        "previous_version": deployed["version"] if deployed else None,
        "previous_ndcg_at_10": (deployed.get("metrics") or {}).get("ndcg_at_10") if deployed else None,
        "margin": margin,
        "decision": "deployed" if deploy else "kept",
        "reason": reason,
    }
    if deploy:
        try:
            api.deploy(trained["tenant_id"], trained["version"], traffic_percent=100, protect_newer_live=True)
        except RecsysApiError as exc:
            if exc.status != 409 or exc.code not in LIVE_LEFT_IN_PLACE:
                raise
            validate_as_candidate(api, trained)
            deploy = False
            decision["decision"] = "candidate"
            decision["reason"] = (
                f"{candidate_reason(exc.details, logical_date=trained['logical_date'])}; by NDCG@10 alone: {reason}"
            )
            decision["previous_version"] = exc.details["live_version"]
        else:
            served = api.deployment(trained["tenant_id"]).get("version")
            if served != trained["version"]:
                raise RuntimeError(
                    f"deployed {trained['version']} for {trained['tenant']}, but the API serves {served!r}"
                )
    decision["serving_version"] = trained["version"] if deploy else decision["previous_version"]
    log.info("tenant %s: %s (%s)", trained["tenant"], decision["decision"], decision["reason"])
    return decision
