"""audit: read the platform's audit log for this tenant and run, and prove every action of the journey is in
it: tenant creation (whenever it happened), and this run's uploads, ingestion, training, deployment and API key
creation."""

from __future__ import annotations

from typing import Any

import pandas as pd

from plugins.journey.run import JourneyRun

# Actions this run causes, looked up by the run's key.
RUN_ACTIONS: tuple[str, ...] = (
    "upload.registered",
    "interactions.ingested",
    "model.registered",
    "model.deployed",
    "apikey.created",
)
# The tenant is created by its first run only; later runs find the original entry.
TENANT_ACTIONS: tuple[str, ...] = ("tenant.created",)


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook(run_key=run.run_key)
    entries = api.audit(tenant_id=seed["tenant_id"], source=run.run_key)
    entries += [e for action in TENANT_ACTIONS for e in api.audit(tenant_id=seed["tenant_id"], action=action)]
    rows = [
        {"action": e["action"], "tenant_id": e.get("tenant_id"), "source": (e.get("details") or {}).get("source")}
        for e in entries
    ]
    found = {action: sum(r["action"] == action for r in rows) for action in RUN_ACTIONS + TENANT_ACTIONS}
    return {"entries": rows, "found": found}


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, audited = done["seed_data"], done["audit"]
    from plugins.validation import validate_stage

    required = list(RUN_ACTIONS + TENANT_ACTIONS)
    frames = {
        "actions": pd.DataFrame([{"action": a, "found": audited["found"].get(a, 0)} for a in required]),
        "audit_rows": pd.DataFrame(audited["entries"], columns=["action", "tenant_id", "source"]),
    }
    parameters = {"tenant_id": seed["tenant_id"], "required_actions": required}
    return validate_stage("audit", frames, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id)
