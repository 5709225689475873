"""deploy_model: deploy the registered version at 100% traffic and prove the platform serves it: the served
version is the registered one and its FAISS index holds every catalog item."""

from __future__ import annotations

from typing import Any

import pandas as pd

from plugins.journey.run import JourneyRun
from plugins.journey.train_model import catalog_upload


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed, trained = done["seed_data"], done["train_model"]
    from plugins.hooks.recsys_api import RecsysApiHook

    return RecsysApiHook(run_key=run.run_key).deploy(seed["tenant_id"], trained["version"], traffic_percent=100)


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, trained, deployed = done["seed_data"], done["train_model"], done["deploy_model"]
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.validation import validate_stage

    api = RecsysApiHook(run_key=run.run_key)
    serving = api.deployment(seed["tenant_id"])
    _, health = api.health()
    row = {
        "registered_version": trained["version"],
        "served_version": serving.get("version"),
        "index_size": serving.get("index_size"),
        "catalog_size": len(AppDbHook().catalog(tenant_id=seed["tenant_id"], upload_id=catalog_upload(done))),
        "traffic_percent": serving.get("traffic_percent", deployed.get("traffic_percent")),
        "health_status": health.get("status"),
    }
    return validate_stage(
        "deploy_model", {"deployment": pd.DataFrame([row])}, parameters={}, results_dir=run.gx_dir, run_name=run.run_id
    )
