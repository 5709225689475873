"""query_recommendations: act as the tenant's application. Create an API key, ask for recommendations for a
sample of users with and without a category filter (the tenant's own most common categories; a catalog without
categories is queried unfiltered only, and the report says so), and probe the security contract: 401 without or with a bad
key, 403 across tenants, 422 for a malformed body, 429 for a burst over the rate limit.

Every request pins the version under test (``model_version``), so a candidate (a backfilled day behind a newer
live model) is queried exactly like a live model, and the suite proves every answer came from that version.
The run's keys are revoked by the cleanup task at the end of the run; a re-run first revokes any its earlier
attempt left active. The tenant the 403 probes aim at is one per tenant and run key, reused by a re-run and
deleted by the cleanup.

The raw responses are written to the run's work dir; the GX suite checks them: counts, unique items, scores
sorted, items in the catalog, filters honoured, the version that answered, probe statuses, latency percentiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import numpy as np
import pandas as pd

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload

RECOMMEND_PATH = "/api/v1/recommendations"
# The probe key's plan (include/sql/0005_rate_plans.sql: 5 requests per 60 s); the burst is twice that.
PROBE_PLAN = "probe"
BURST_REQUESTS = 10
# The category filter is probed with this many of the catalog's most common categories, one per sampled user in turn.
PROBE_CATEGORIES = 10
NO_CATEGORIES_NOTE = "the catalog has no categories: category filter probes skipped"


def responses_path(run: JourneyRun) -> str:
    return os.path.join(run.work_dir, "recommendations.json")


def probe_tenant_slug(*, tenant: str, run_key: str) -> str:
    """The other tenant of the isolation probes: one per tenant and run key, a valid slug for any tenant name."""
    return "isolation-probe-" + hashlib.sha256(f"{tenant}/{run_key}".encode()).hexdigest()[:16]


def revoke_run_keys(api, *, tenant_id: str, run: JourneyRun) -> list[str]:
    """Revoke every key this run key still has active (its earlier attempt's, or this attempt's at the end)."""
    active = api.api_keys(tenant_id, source=run.run_key, active=True)
    return [api.revoke_api_key(tenant_id, key["id"])["id"] for key in active]


def _timed(call) -> tuple[Any, float]:
    start = time.perf_counter()
    response = call()
    return response, (time.perf_counter() - start) * 1000


def sample_users(user_ids: list[str], *, size: int, seed: int) -> list[str]:
    ordered = sorted(set(user_ids))
    rng = np.random.default_rng(seed)
    return [ordered[i] for i in sorted(rng.choice(len(ordered), size=min(size, len(ordered)), replace=False))]


def probe_categories(catalog: pd.DataFrame, *, limit: int = PROBE_CATEGORIES) -> list[str]:
    """The tenant's own most common categories (by items; ties by name), whatever its taxonomy; [] without any."""
    categories = catalog["category"].dropna()
    categories = categories[categories != ""]
    counts = categories.value_counts()
    return sorted(counts.index, key=lambda c: (-counts[c], c))[:limit]


def _probes(
    api, *, tenant_id: str, other_tenant_id: str, api_key: str, probe_key: str, probe_key_id: str
) -> list[dict[str, Any]]:
    body = {"user_id": "probe-user", "count": 5}
    probes = [
        ("401 without key", 401, lambda: api.call_as_tenant("POST", RECOMMEND_PATH, api_key=None, json=body)),
        (
            "401 with bad key",
            401,
            lambda: api.call_as_tenant("POST", RECOMMEND_PATH, api_key="rk_not-a-real-key", json=body),
        ),
        (
            "403 other tenant's route",
            403,
            lambda: api.call_as_tenant(
                "POST", f"/api/v1/tenants/{other_tenant_id}/recommendations", api_key=api_key, json=body
            ),
        ),
        (
            "403 other tenant in body",
            403,
            lambda: api.call_as_tenant(
                "POST", RECOMMEND_PATH, api_key=api_key, json={**body, "tenant_id": other_tenant_id}
            ),
        ),
        (
            "422 malformed body",
            422,
            lambda: api.call_as_tenant("POST", RECOMMEND_PATH, api_key=probe_key, json={"count": "ten"}),
        ),
    ]
    results = [
        {"probe": name, "expected_status": want, "actual_status": call().status_code} for name, want, call in probes
    ]
    # The burst uses its own key, on the tiny probe plan, so the sample's key keeps its budget.
    statuses = [api.call_as_tenant("POST", RECOMMEND_PATH, api_key=probe_key, json=body) for _ in range(BURST_REQUESTS)]
    limited = next((r for r in statuses if r.status_code == 429), None)
    results.append(
        {
            "probe": f"429 burst of {BURST_REQUESTS} on the {PROBE_PLAN} plan",
            "expected_status": 429,
            "actual_status": 429
            if limited is not None and limited.headers.get("Retry-After")
            else statuses[-1].status_code,
        }
    )
    api.revoke_api_key(tenant_id, probe_key_id)
    revoked = api.call_as_tenant("POST", RECOMMEND_PATH, api_key=probe_key, json=body)
    results.append({"probe": "401 revoked key", "expected_status": 401, "actual_status": revoked.status_code})
    return results


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook(run_key=journey.run_key)
    tenant_id, version = seed["tenant_id"], done["deploy_model"]["version"]
    revoked = revoke_run_keys(api, tenant_id=tenant_id, run=journey)
    api_key, key_id = api.create_api_key(tenant_id, name=f"journey {journey.run_key}")
    probe_key, probe_key_id = api.create_api_key(tenant_id, name=f"journey probes {journey.run_key}", plan=PROBE_PLAN)
    other = api.ensure_tenant(
        slug=probe_tenant_slug(tenant=journey.tenant, run_key=journey.run_key),
        name=f"isolation probe of {journey.tenant} {journey.run_key}",
        email="probe@example.com",
    )

    db = AppDbHook()
    landed_users = db.landed_users(tenant_id=tenant_id, source=journey.run_key)
    users = sample_users(landed_users, size=int(journey.params["sample_users"]), seed=int(journey.params["seed"]))
    categories = probe_categories(db.catalog(tenant_id=tenant_id, upload_id=catalog_upload(done)))
    count = int(journey.params["rec_count"])
    requests = []
    for i, user_id in enumerate(users):
        for category in (None, categories[i % len(categories)]) if categories else (None,):
            body = {
                "user_id": user_id,
                "count": count,
                "model_version": version,
                **({"filters": {"category": category}} if category else {}),
            }
            response, latency_ms = _timed(
                lambda body=body: api.call_as_tenant("POST", RECOMMEND_PATH, api_key=api_key, json=body)
            )
            requests.append(
                {
                    "request_id": f"r{len(requests):04d}",
                    "user_id": user_id,
                    "filter_category": category,
                    "count_requested": count,
                    "status": response.status_code,
                    "latency_ms": latency_ms,
                    "body": response.json()
                    if response.headers.get("content-type", "").startswith("application/json")
                    else None,
                }
            )
    probes = _probes(
        api,
        tenant_id=tenant_id,
        other_tenant_id=other["tenant_id"],
        api_key=api_key,
        probe_key=probe_key,
        probe_key_id=probe_key_id,
    )
    with open(responses_path(journey), "w") as fh:
        json.dump({"requests": requests, "probes": probes}, fh)
    latencies = [r["latency_ms"] for r in requests]
    return {
        "api_key_ids": [key_id, probe_key_id],
        "earlier_keys_revoked": len(revoked),
        "model_version": version,
        "requests": len(requests),
        "errors": sum(r["status"] != 200 for r in requests),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "fallback": sum(bool((r["body"] or {}).get("fallback")) for r in requests),
        "probes": {p["probe"]: p["actual_status"] for p in probes},
        "filter_categories": categories,
        **({} if categories else {"note": NO_CATEGORIES_NOTE}),
    }


def expected_count(*, requested: int, category: str | None, seen: set[str], catalog: pd.DataFrame) -> int:
    """What a correct answer holds: the requested count, or fewer when the user has already seen all but
    that many of the eligible items (small catalogs with strong tastes exhaust a category)."""
    eligible = catalog if category is None else catalog[catalog["category"] == category]
    return min(requested, int((~eligible["item_id"].isin(seen)).sum()))


def frames(recorded: dict[str, Any], *, catalog: pd.DataFrame, history: dict[str, set[str]]) -> dict[str, pd.DataFrame]:
    """``history``: every item each user interacted with, as the served model knows it (all landed rows)."""
    categories = dict(zip(catalog["item_id"], catalog["category"], strict=True))
    rec_rows, request_rows = [], []
    for req in recorded["requests"]:
        items = (req["body"] or {}).get("items") or []
        request_rows.append(
            {
                "request_id": req["request_id"],
                "user_id": req["user_id"],
                "status": req["status"],
                "count_requested": req["count_requested"],
                "count_expected": expected_count(
                    requested=req["count_requested"],
                    category=req["filter_category"],
                    seen=history.get(req["user_id"], set()),
                    catalog=catalog,
                ),
                "count_returned": len(items),
                "model_version": (req["body"] or {}).get("model_version"),
                "fallback": bool((req["body"] or {}).get("fallback")),
                "latency_ms": req["latency_ms"],
                "filtered": req["filter_category"] is not None,
            }
        )
        previous = None
        for rank, item in enumerate(items, start=1):
            rec_rows.append(
                {
                    "request_id": req["request_id"],
                    "user_id": req["user_id"],
                    "rank": rank,
                    "item_id": item["item_id"],
                    "score": float(item["score"]),
                    # The catalog's category, not the response's: a filter is honoured only if the item really is in it.
                    "category": categories.get(item["item_id"]),
                    "filter_category": req["filter_category"],
                    "prev_score": previous,
                    "in_catalog": item["item_id"] in categories,
                }
            )
            previous = float(item["score"])
    requests = pd.DataFrame(request_rows)
    latencies = requests["latency_ms"].to_numpy()
    latency = pd.DataFrame(
        [
            {
                "p50_ms": float(np.percentile(latencies, 50)),
                "p95_ms": float(np.percentile(latencies, 95)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "error_rate": float((requests["status"] != 200).mean()),
            }
        ]
    )
    recommendations = pd.DataFrame(rec_rows).astype({"prev_score": "float64"})
    return {
        "recommendations": recommendations,
        "requests": requests,
        "probes": pd.DataFrame(recorded["probes"]),
        "latency": latency,
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    seed = done["seed_data"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.validation import validate_stage

    with open(responses_path(run)) as fh:
        recorded = json.load(fh)
    db = AppDbHook()
    catalog = db.catalog(tenant_id=seed["tenant_id"], upload_id=catalog_upload(done))
    history = db.histories(tenant_id=seed["tenant_id"], user_ids={req["user_id"] for req in recorded["requests"]})
    parameters = {
        "catalog_item_ids": catalog["item_id"].tolist(),
        "max_p95_ms": float(run.params["max_p95_ms"]),
        "max_error_rate": float(run.params["max_error_rate"]),
        "model_version": done["deploy_model"]["version"],
    }
    return validate_stage(
        "query_recommendations",
        frames(recorded, catalog=catalog, history=history),
        parameters=parameters,
        results_dir=run.gx_dir,
        run_name=run.run_id,
    )
