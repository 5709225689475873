"""deploy_model: deploy the registered version, live or as a candidate, and prove the platform serves it.

Deploys respect time. The run's version takes the tenant's traffic (100%) unless the tenant's live model is
newer than the day this run validates, or has no logical date at all (it did not come from a pipeline run,
so nobody can tell how old it is). Then the version is deployed as a candidate instead: loaded, answering
only requests that pin it (query_recommendations pins it), taking no traffic, and the live model keeps
serving. The platform makes the comparison under its tenant lock (``protect_newer_live``), so runs finishing
in any order never downgrade production; a backfill of last week validates last week's models as candidates.

The suite proves that the version under test is served with every catalog item in its FAISS index, at the
traffic its role gives it, and that the live model is the one it should be: this version, or the one left in
place; and that it serves the registered embeddings: for a sample of the model's users, the top 10 the API
answers (pinned to this version) match the exact top 10 computed from the artifacts the platform registered,
seen items excluded as the API excludes them (``serving_agreement``, the mean overlap, at least
``min_serving_agreement``). That catches a deploy serving another version's or a stale index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload

if TYPE_CHECKING:
    from include.recsys.contract.artifacts import TrainResult

# The platform's refusals that mean "a newer (or undated) live model stays": validate as a candidate instead.
LIVE_LEFT_IN_PLACE = ("live_model_newer", "live_model_undated")
LIVE_TRAFFIC_PERCENT = 100
# The depth the training/serving agreement compares: the top 10 NDCG@10 and the platform's SLA speak of.
AGREEMENT_K = 10
# Users named in the summary when their served top 10 differ from the exact one (a sample, not all).
DISAGREEING_SHOWN = 5


def exact_top(
    result: TrainResult, *, users: Iterable[str], history: Mapping[str, Iterable[str]], k: int = AGREEMENT_K
) -> dict[str, list[str]]:
    """Each user's exact top ``k`` from the embeddings: every item scored by inner product (float32, as the
    FAISS IndexFlatIP does), the items the user has seen left out as the API leaves them out
    (include/recsys/ml/serving.TenantModel.recommend: history of items the model knows), best first."""
    item_ids = list(result.item_ids)
    item_row = {item_id: row for row, item_id in enumerate(item_ids)}
    user_row = {user_id: row for row, user_id in enumerate(result.user_ids)}
    out: dict[str, list[str]] = {}
    for user in users:
        if user not in user_row:
            raise ValueError(f"user {user!r} has no embedding in the model: the agreement samples the model's users")
        scores = result.item_embeddings @ result.user_embeddings[user_row[user]]
        seen = sorted({item_row[i] for i in history.get(user, ()) if i in item_row})
        scores[seen] = -np.inf
        best = np.argsort(-scores, kind="stable")[: min(k, len(item_ids) - len(seen))]
        out[user] = [item_ids[row] for row in best]
    return out


def user_overlaps(served: Mapping[str, Sequence[str]], exact: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Per user: the share of the exact top k that the API served (order aside: FAISS and numpy may break a
    near-tie differently). A user with nothing left to recommend agrees only if nothing was served."""
    missing = sorted(set(exact) - set(served))
    if missing:
        raise ValueError(f"no served answer for {len(missing)} sampled users, e.g. {missing[:3]}")
    return {
        user: len(set(served[user]) & set(top)) / len(top) if top else float(not served[user])
        for user, top in exact.items()
    }


def serving_agreement(served: Mapping[str, Sequence[str]], exact: Mapping[str, Sequence[str]]) -> float:
    """The mean overlap of served and exact top k over the sampled users."""
    if not exact:
        raise ValueError("no sampled users: the serving agreement needs at least one")
    overlaps = user_overlaps(served, exact)
    return sum(overlaps.values()) / len(overlaps)


def measure_agreement(
    api: Any,
    *,
    tenant_id: str,
    version: str,
    artifacts: TrainResult,
    history: Mapping[str, Iterable[str]],
    users: Sequence[str],
    key_name: str,
) -> dict[str, Any]:
    """Ask the API for each sampled user's top k pinned to ``version`` (with a key of its own, revoked before
    returning, so the run's key accounting is unchanged) and compare with the exact top k."""
    api_key, key_id = api.create_api_key(tenant_id, name=key_name)
    try:
        served = {
            user: [
                item["item_id"]
                for item in api.recommend(api_key, user_id=user, count=AGREEMENT_K, model_version=version)["items"]
            ]
            for user in users
        }
    finally:
        api.revoke_api_key(tenant_id, key_id)
    exact = exact_top(artifacts, users=users, history=history)
    overlaps = user_overlaps(served, exact)
    return {
        "serving_agreement": round(serving_agreement(served, exact), 4),
        "agreement_users": len(users),
        "agreement_disagreeing": [u for u, share in overlaps.items() if share < 1][:DISAGREEING_SHOWN],
    }


def candidate_reason(refusal: dict[str, Any], *, logical_date: str) -> str:
    """Why a version was validated as a candidate, from the platform's 409 (code, live_version, live_logical_date)."""
    why = (
        "it has no logical date: it was not deployed by a pipeline run"
        if refusal["code"] == "live_model_undated"
        else f"its logical date {refusal['live_logical_date']} is newer than this model's {logical_date}"
    )
    return f"validated as candidate; live model {refusal['live_version']} left in place ({why})"


def live_reason(deployed: dict[str, Any]) -> str:
    if deployed["reused"]:
        return f"deployed live at {deployed['traffic_percent']}% ({deployed['version']} was live already)"
    if deployed["replaced"]:
        return f"deployed live at {deployed['traffic_percent']}%, replacing {deployed['replaced']}"
    return f"deployed live at {deployed['traffic_percent']}% (no model was live)"


def registered_artifacts(api: Any, *, tenant_id: str, version: str) -> TrainResult:
    """The artifacts the platform registered for ``version`` (its artifact_uri), read back from the object store."""
    from include.checksums import split_s3_uri
    from include.recsys.contract.artifacts import load_artifacts
    from plugins.hooks.minio import MinioHook

    model = next((m for m in api.list_models(tenant_id)["models"] if m["version"] == version), None)
    if model is None:
        raise ValueError(f"the platform has no registered model version {version!r} for tenant {tenant_id}")
    bucket, prefix = split_s3_uri(model["artifact_uri"])
    return load_artifacts(client=MinioHook().client, bucket=bucket, prefix=prefix)


def agreement_sample(user_ids: Sequence[str], *, size: int, seed: int) -> list[str]:
    """The users the agreement asks about: the same for the same model and seed."""
    from plugins.journey.query_recommendations import sample_users

    return sample_users(list(user_ids), size=size, seed=seed)


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed, trained = done["seed_data"], done["train_model"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiError, RecsysApiHook

    api = RecsysApiHook(run_key=journey.run_key)
    tenant_id, version = seed["tenant_id"], trained["version"]
    try:
        deployed = api.deploy(tenant_id, version, traffic_percent=LIVE_TRAFFIC_PERCENT, protect_newer_live=True)
    except RecsysApiError as exc:
        if exc.status != 409 or exc.code not in LIVE_LEFT_IN_PLACE:
            raise
        live_version = exc.details["live_version"]
        deployed = api.deploy(tenant_id, version, traffic_percent=0)
        reason = candidate_reason(exc.details, logical_date=journey.window_start.isoformat())
    else:
        live_version, reason = version, live_reason(deployed)
    artifacts = registered_artifacts(api, tenant_id=tenant_id, version=version)
    users = agreement_sample(
        artifacts.user_ids, size=int(journey.params["agreement_users"]), seed=int(journey.params["seed"])
    )
    agreement = measure_agreement(
        api,
        tenant_id=tenant_id,
        version=version,
        artifacts=artifacts,
        # Seen items as the platform loaded them at deploy time: every interaction it holds for the tenant.
        history=AppDbHook().histories(tenant_id=tenant_id, user_ids=users),
        users=users,
        key_name=f"journey serving agreement {journey.run_key}",
    )
    return {
        "version": version,
        "role": deployed["role"],
        "deployment_id": deployed["deployment_id"],
        "traffic_percent": deployed["traffic_percent"],
        "index_size": deployed["index_size"],
        "live_version": live_version,
        "reason": reason,
        **agreement,
    }


def deployment_row(
    api: Any, *, tenant_id: str, version: str, role: str, expected_live_version: str, catalog_size: int
) -> dict[str, Any]:
    """What the platform says it serves for ``version`` in ``role``, beside what it should serve."""
    entry = next((d for d in api.deployments(tenant_id) if d["version"] == version and d["role"] == role), {})
    live = api.live_deployment(tenant_id) or {}
    _, health = api.health()
    return {
        "registered_version": version,
        "served_version": entry.get("version") if entry.get("served") else None,
        "index_size": entry.get("index_size"),
        "catalog_size": catalog_size,
        "traffic_percent": entry.get("traffic_percent"),
        "expected_traffic_percent": LIVE_TRAFFIC_PERCENT if role == "live" else 0,
        "live_version": live.get("version"),
        "expected_live_version": expected_live_version,
        "health_status": health.get("status"),
    }


def check(
    row: Mapping[str, Any],
    *,
    agreement: Mapping[str, Any],
    min_serving_agreement: float,
    results_dir: str,
    run_name: str,
):
    """The deploy_model suite over one deployment row and the agreement measured on it."""
    from plugins.validation import validate_stage

    frame = pd.DataFrame(
        [
            {
                **row,
                "agreement_users": agreement.get("agreement_users"),
                "serving_agreement": agreement.get("serving_agreement"),
            }
        ]
    )
    return validate_stage(
        "deploy_model",
        {"deployment": frame},
        parameters={"min_serving_agreement": min_serving_agreement},
        results_dir=results_dir,
        run_name=run_name,
    )


def validate(journey: JourneyRun, done: dict[str, Any]):
    seed, trained, deployed = done["seed_data"], done["train_model"], done["deploy_model"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook

    tenant_id = seed["tenant_id"]
    row = deployment_row(
        RecsysApiHook(run_key=journey.run_key),
        tenant_id=tenant_id,
        version=trained["version"],
        role=deployed["role"],
        expected_live_version=deployed["live_version"],
        catalog_size=len(AppDbHook().catalog(tenant_id=tenant_id, upload_id=catalog_upload(done))),
    )
    return check(
        row,
        agreement=deployed,
        min_serving_agreement=float(journey.params["min_serving_agreement"]),
        results_dir=journey.gx_dir,
        run_name=journey.run_id,
    )
