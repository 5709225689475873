"""audit: read the platform's audit log for this tenant and run, and prove every action of the journey is in
it: tenant creation (whenever it happened), and this run's uploads, ingestion, training, deployment and API key
creation.

The log is append-only, so a re-run of a day finds its earlier attempts' entries under the same run key too.
Each action is counted for the latest attempt of the stage that causes it, from the platform database's clock
when that attempt began (``attempt_started_at``), so a re-run reports the same counts as the first run.
Ingestion writes one entry per worker batch, so its entry count follows batching; ``rows_ingested`` is the
rows those entries account for.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from plugins.journey.run import JourneyRun

# Actions this run causes, looked up by the run's key, each with the stage that causes it.
RUN_ACTIONS: dict[str, str] = {
    "upload.registered": "upload_to_minio",
    "interactions.ingested": "feed_kafka",
    "model.registered": "train_model",
    "model.deployed": "deploy_model",
    "apikey.created": "query_recommendations",
}
# The tenant is created by its first run only; later runs find the original entry.
TENANT_ACTIONS: tuple[str, ...] = ("tenant.created",)


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook(run_key=journey.run_key)
    tenant_id = seed["tenant_id"]
    entries = [
        entry
        for action, stage in RUN_ACTIONS.items()
        for entry in api.audit(
            tenant_id=tenant_id, source=journey.run_key, action=action, since=done[stage]["attempt_started_at"]
        )
    ]
    entries += [e for action in TENANT_ACTIONS for e in api.audit(tenant_id=tenant_id, action=action)]
    return tally(entries)


def tally(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The platform's audit entries as rows (action, tenant, source), counted per required action, with the
    rows the ingestion entries account for (one entry per worker batch, each naming its rows)."""
    rows = [
        {"action": e["action"], "tenant_id": e.get("tenant_id"), "source": (e.get("details") or {}).get("source")}
        for e in entries
    ]
    found = {action: sum(r["action"] == action for r in rows) for action in (*RUN_ACTIONS, *TENANT_ACTIONS)}
    batches = [e.get("details") or {} for e in entries if e["action"] == "interactions.ingested"]
    ingested = sum(int(details.get("rows", 0)) for details in batches)
    return {"entries": rows, "found": found, "rows_ingested": ingested}


def frames(audited: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The suite's batches: every required action with its count (0 when missing), and the entries."""
    required = [*RUN_ACTIONS, *TENANT_ACTIONS]
    return {
        "actions": pd.DataFrame([{"action": a, "found": audited["found"].get(a, 0)} for a in required]),
        "audit_rows": pd.DataFrame(audited["entries"], columns=["action", "tenant_id", "source"]),
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, audited = done["seed_data"], done["audit"]
    from plugins.validation import validate_stage

    parameters = {"tenant_id": seed["tenant_id"], "required_actions": [*RUN_ACTIONS, *TENANT_ACTIONS]}
    return validate_stage("audit", frames(audited), parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id)
