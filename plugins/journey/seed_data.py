"""seed_data: obtain the tenant's data (generated, or a real tenant's sample) and split it by the contract.

Generated data is deterministic from tenant + data interval + seed. A real sample (``interactions_uri`` /
``items_uri``) is read as-is; its users are derived from its interactions. Either way every row is checked
against the contract: clean rows go on to upload, rejected rows are kept with their reason so upload_to_minio
can quarantine them (nothing is dropped silently). The GX suite proves the clean set's integrity.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from include.recsys.contracts import interaction_problem, item_problem
from plugins.journey.run import JourneyRun
from plugins.journey.tables import REASON, TABLES, read_table, to_csv_bytes, with_timestamps, write_table


def clean_path(run: JourneyRun, name: str) -> str:
    return os.path.join(run.work_dir, f"{name}.csv")


def rejected_path(run: JourneyRun, name: str) -> str:
    return os.path.join(run.work_dir, f"{name}.rejected.csv")


def load_frames(run: JourneyRun) -> dict[str, pd.DataFrame]:
    if run.byod:
        return _load_sample(run)
    from include.recsys.datagen import generate

    data = generate(
        tenant=run.tenant,
        interval_start=run.window_start,
        interval_end=run.window_end,
        seed=int(run.params["seed"]),
        n_users=int(run.params["n_users"]),
        n_items=int(run.params["n_items"]),
        n_interactions=int(run.params["n_interactions"]),
    )
    # Round-trip through CSV so generated and uploaded samples take exactly the same path.
    return {name: read_table(to_csv_bytes(getattr(data, name)), name) for name in TABLES}


def _read_uri(uri: str) -> bytes:
    if uri.startswith("s3://"):
        from plugins.hooks.minio import MinioHook

        return MinioHook().get_bytes(uri)
    path = uri.removeprefix("file://")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expected a local CSV path or s3:// URI, found nothing at {uri!r}")
    with open(path, "rb") as fh:
        return fh.read()


def _load_sample(run: JourneyRun) -> dict[str, pd.DataFrame]:
    interactions_uri = run.params["interactions_uri"]
    items_uri = run.params.get("items_uri")
    if not items_uri:
        raise ValueError("a bring-your-own-data run needs items_uri (the catalog) next to interactions_uri")
    interactions = read_table(_read_uri(interactions_uri), "interactions", what=f"interactions CSV {interactions_uri}")
    items = read_table(_read_uri(items_uri), "items", what=f"items CSV {items_uri}")
    user_ids = pd.unique(interactions["user_id"][interactions["user_id"].str.strip() != ""])
    users = pd.DataFrame({"user_id": user_ids, "country": "", "signup_date": ""})
    return {"items": items, "users": users, "interactions": interactions}


def split_by_contract(frames: dict[str, pd.DataFrame], *, window: tuple | None) -> tuple[dict, dict]:
    """(clean, rejected): rejected frames carry a ``reason`` column, one reason per row."""
    items = frames["items"]
    item_reasons = pd.Series([item_problem(r) for r in items.to_dict("records")], index=items.index, dtype=object)
    item_reasons = item_reasons.where(item_reasons.notna() | ~items["item_id"].duplicated(), "duplicate item_id")

    users = frames["users"]
    user_reasons = pd.Series(None, index=users.index, dtype=object)
    user_reasons = user_reasons.where(users["user_id"].str.strip() != "", "user_id must be a non-empty string")
    user_reasons = user_reasons.where(user_reasons.notna() | ~users["user_id"].duplicated(), "duplicate user_id")

    item_ids = frozenset(items["item_id"][item_reasons.isna()])
    user_ids = set(users["user_id"][user_reasons.isna()])
    interactions = frames["interactions"]
    reasons = [interaction_problem(r, item_ids=item_ids, window=window) for r in interactions.to_dict("records")]
    interaction_reasons = pd.Series(reasons, index=interactions.index, dtype=object)
    unknown_user = ~interactions["user_id"].isin(user_ids)
    interaction_reasons = interaction_reasons.where(
        interaction_reasons.notna() | ~unknown_user, "user_id " + interactions["user_id"].str.slice(0, 64) + " is not a known user"
    )
    interaction_reasons = interaction_reasons.where(
        interaction_reasons.notna() | ~interactions["event_id"].duplicated(), "duplicate event_id"
    )

    clean, rejected = {}, {}
    for name, frame, why in (("items", items, item_reasons), ("users", users, user_reasons), ("interactions", interactions, interaction_reasons)):
        bad = why.notna()
        clean[name] = frame[~bad].reset_index(drop=True)
        rejected[name] = frame[bad].assign(**{REASON: why[bad]}).reset_index(drop=True)
    return clean, rejected


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    from plugins.hooks.recsys_api import RecsysApiHook

    tenant = RecsysApiHook(run_key=run.run_key).ensure_tenant(
        slug=run.tenant, name=run.params.get("tenant_name") or run.tenant, email=f"admin@{run.tenant}.example.com"
    )
    frames = load_frames(run)
    window = None if run.byod else (run.window_start, run.window_end)
    clean, rejected = split_by_contract(frames, window=window)
    for name in TABLES:
        write_table(clean[name], clean_path(run, name))
        write_table(rejected[name], rejected_path(run, name), for_people=True)
    return {
        "tenant_id": tenant["tenant_id"],
        "tenant_created": tenant["created"],
        "mode": "byod" if run.byod else "generated",
        "run_key": run.run_key,
        "counts": {name: len(clean[name]) for name in TABLES},
        "rejected": {name: len(rejected[name]) for name in TABLES},
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    from include.recsys.contracts import CATEGORIES, INTERACTION_TYPES
    from plugins.validation import validate_stage

    frames = {name: read_table(clean_path(run, name), name) for name in TABLES}
    frames["items"] = frames["items"].assign(price=pd.to_numeric(frames["items"]["price"]))
    frames["interactions"] = with_timestamps(frames["interactions"])
    if run.byod:
        # A real sample's history need not fall in the run's interval: bound it by itself.
        ts = frames["interactions"]["ts"]
        window_start, window_end = ts.min(), ts.max()
    else:
        window_start, window_end = pd.Timestamp(run.window_start), pd.Timestamp(run.window_end)
    parameters = {
        "item_ids": frames["items"]["item_id"].tolist(),
        "user_ids": frames["users"]["user_id"].tolist(),
        "categories": list(CATEGORIES),
        "interaction_types": list(INTERACTION_TYPES),
        "window_start": window_start,
        "window_end": window_end,
        "min_interactions": 1,
    }
    return validate_stage("seed_data", frames, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id)
