"""seed_data: obtain the tenant's data (generated, or a real tenant's sample) and split it by the contract.

Generated data is deterministic from tenant + data interval + seed. A real sample (``interactions_uri`` /
``items_uri``) is read in the tenant's own format and layout (tenant_files, normalize); its users are derived
from its interactions. Either way every row is checked against the contract: clean rows go on to upload, and
rejected rows go to the quarantine bucket at once, each with its reason, counted by reason in this stage's
summary (nothing is dropped silently). The GX suite proves the clean set's integrity.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from include.config import QUARANTINE_BUCKET
from include.recsys.contract.schema import (
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    MAX_ID_LENGTH,
    interaction_problem,
    item_problem,
)
from plugins.journey.rejections import SOURCE_ROW, describe, summarize
from plugins.journey.run import JourneyRun
from plugins.journey.tables import REASON, TABLES, read_table, records, to_csv_bytes, with_timestamps, write_table


def clean_path(run: JourneyRun, name: str) -> str:
    return os.path.join(run.work_dir, f"{name}.csv")


def rejected_path(run: JourneyRun, name: str) -> str:
    return os.path.join(run.work_dir, f"{name}.rejected.csv")


def quarantine_key(run: JourneyRun, name: str) -> str:
    return f"{run.object_prefix}{name}.quarantine.csv"


@dataclass(frozen=True)
class Loaded:
    """A run's tables in the contract's layout, with the reason of every row already set aside while reading
    them (``None`` elsewhere) and, for a tenant's own files, how each contract column was obtained."""

    frames: dict[str, pd.DataFrame]
    reasons: dict[str, pd.Series] = field(default_factory=dict)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)


def load_frames(run: JourneyRun) -> Loaded:
    if run.byod:
        return load_sample(run)
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
    return Loaded(frames={name: read_table(to_csv_bytes(getattr(data, name)), name) for name in TABLES})


def load_sample(run: JourneyRun) -> Loaded:
    """A tenant's own files (tenant_files: where from, which format), mapped to the contract (normalize)."""
    from plugins.journey.normalize import Layout, normalize_interactions, normalize_items
    from plugins.journey.tenant_files import read_tenant_file

    interactions_uri = run.params["interactions_uri"]
    items_uri = run.params.get("items_uri")
    if not items_uri:
        raise ValueError("a bring-your-own-data run needs items_uri (the catalog) next to interactions_uri")
    layout = Layout.from_params(run.params)
    raw_items, _ = read_tenant_file(items_uri, what=f"items file {items_uri}")
    raw_interactions, _ = read_tenant_file(interactions_uri, what=f"interactions file {interactions_uri}")
    items = normalize_items(raw_items, layout=layout, what=f"items file {items_uri}")
    interactions = normalize_interactions(
        raw_interactions,
        tenant=run.tenant,
        layout=layout,
        stand_in=run.window_start,
        what=f"interactions file {interactions_uri}",
    )
    user_ids = pd.unique(interactions.frame["user_id"][interactions.frame["user_id"].str.strip() != ""])
    users = pd.DataFrame({"user_id": user_ids, "country": "", "signup_date": ""})
    return Loaded(
        frames={"items": items.frame, "users": users, "interactions": interactions.frame},
        reasons={"items": items.reasons, "interactions": interactions.reasons},
        notes={"items": items.notes, "interactions": interactions.notes},
    )


def split_by_contract(
    frames: dict[str, pd.DataFrame], *, window: tuple | None, reasons: dict[str, pd.Series] | None = None
) -> tuple[dict, dict]:
    """(clean, rejected): rejected frames carry a ``reason`` column, one reason per row, and ``source_row``, the
    row's 1-based position in its input. ``reasons``: rows already rejected while reading (they keep that reason)."""
    given = reasons or {}
    items = frames["items"]
    item_reasons = _first(given.get("items"), items.index)
    item_reasons = item_reasons.where(item_reasons.notna(), _row_problems(items, item_problem))
    item_reasons = item_reasons.where(item_reasons.notna() | ~items["item_id"].duplicated(), "duplicate item_id")

    users = frames["users"]
    user_reasons = pd.Series(None, index=users.index, dtype=object)
    user_reasons = user_reasons.where(users["user_id"].str.strip() != "", "user_id must be a non-empty string")
    user_reasons = user_reasons.where(user_reasons.notna() | ~users["user_id"].duplicated(), "duplicate user_id")

    item_ids = frozenset(items["item_id"][item_reasons.isna()])
    rejected_item_ids = frozenset(items["item_id"][item_reasons.notna()]) - item_ids
    user_ids = set(users["user_id"][user_reasons.isna()])
    interactions = frames["interactions"]
    interaction_reasons = _first(given.get("interactions"), interactions.index)
    # An interaction with an item the catalog had but rejected is the catalog's problem: say so, rather than
    # calling the item unknown.
    interaction_reasons = _fill(
        interaction_reasons,
        interactions["item_id"].isin(rejected_item_ids),
        interactions["item_id"],
        "item_id of a rejected catalog row",
    )
    # The contract's own check runs on every row the screen cannot clear; the screen only says "valid" where
    # it would, so the reasons are the same and a million good rows skip 8 s of per-row Python.
    unscreened = interaction_reasons.isna() & ~surely_valid_interactions(interactions, item_ids=item_ids, window=window)
    interaction_reasons = interaction_reasons.where(
        ~unscreened,
        _row_problems(
            interactions[unscreened], lambda row: interaction_problem(row, item_ids=item_ids, window=window)
        ).reindex(interactions.index),
    )
    interaction_reasons = _fill(
        interaction_reasons, ~interactions["user_id"].isin(user_ids), interactions["user_id"], "unknown user_id"
    )
    interaction_reasons = interaction_reasons.where(
        interaction_reasons.notna() | ~interactions["event_id"].duplicated(), "duplicate event_id"
    )

    clean, rejected = {}, {}
    for name, frame, why in (
        ("items", items, item_reasons),
        ("users", users, user_reasons),
        ("interactions", interactions, interaction_reasons),
    ):
        bad = why.notna()
        clean[name] = frame[~bad].reset_index(drop=True)
        positions = pd.Series(range(1, len(frame) + 1), index=frame.index)
        rejected[name] = (
            frame[bad].assign(**{SOURCE_ROW: positions[bad].astype(str), REASON: why[bad]}).reset_index(drop=True)
        )
    return clean, rejected


# The timestamps the screen clears: ISO-8601 date and time in the years 1900-2199 with a UTC offset under
# 16 hours (or Z), which parse_timestamp takes; any other spelling or year, which it may also take (or reject
# near year 1 or 9999, where the UTC instant overflows), goes through parse_timestamp itself.
_PLAIN_TIMESTAMP = r"(?:19|2[01])\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:0\d|1[0-5]):[0-5]\d)"


def surely_valid_interactions(
    interactions: pd.DataFrame, *, item_ids: frozenset[str], window: tuple | None
) -> pd.Series:
    """Rows that interaction_problem would find no problem with, found column-wise. It may leave a valid row
    out (then interaction_problem sees it), never let an invalid one in: tests/unit/journey/test_seed_data.py
    holds it to that on hostile rows."""
    ok = pd.Series(True, index=interactions.index)
    for name in INTERACTION_COLUMNS:
        values = interactions[name]
        is_text = values.map(type).eq(str)
        ok &= is_text & ~values.where(is_text, "").str.contains("\x00", regex=False)
    texts = interactions.where(ok, "")
    for name in ("event_id", "user_id", "item_id"):
        ok &= texts[name].str.len().le(MAX_ID_LENGTH) & texts[name].str.strip().ne("")
    ok &= texts["item_id"].isin(item_ids) & texts["interaction_type"].isin(INTERACTION_TYPES)
    ok &= texts["timestamp"].str.fullmatch(_PLAIN_TIMESTAMP)
    ts = pd.to_datetime(texts["timestamp"].where(ok), utc=True, format="ISO8601", errors="coerce")
    ok &= ts.notna()
    if window is not None:
        ok &= (ts >= window[0]) & (ts < window[1])
    return ok


def _row_problems(frame: pd.DataFrame, problem: Callable[[dict], str | None]) -> pd.Series:
    """``problem(row)`` of every row (the rows made dicts a chunk at a time: tables.records)."""
    return pd.Series([problem(row) for row in records(frame)], index=frame.index, dtype=object)


def _fill(reasons: pd.Series, where: pd.Series, values: pd.Series, rule: str) -> pd.Series:
    """``reasons`` with "<rule>, got <value>" on the rows ``where`` holds that have no reason yet; the texts are
    made for those rows only (a repr of every row's value, most of them thrown away, cost seconds at 10M)."""
    todo = where & reasons.isna()
    if not todo.any():
        return reasons
    reasons = reasons.copy()
    reasons[todo] = f"{rule}, got " + values[todo].str.slice(0, 64).map(repr)
    return reasons


def _first(reasons: pd.Series | None, index: pd.Index) -> pd.Series:
    if reasons is None:
        return pd.Series(None, index=index, dtype=object)
    return reasons.reindex(index).astype(object).where(reasons.reindex(index).notna(), None)


def quarantine(run: JourneyRun, rejected: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """Rejected rows go to the quarantine bucket as soon as they are found, so they are there for the operator
    even when this stage's own suite then fails; a table without rejected rows clears an earlier attempt's object."""
    from plugins.hooks.minio import MinioHook

    minio, stored = MinioHook(), {}
    for name in TABLES:
        path = write_table(rejected[name], rejected_path(run, name), for_people=True)
        if len(rejected[name]):
            put = minio.put_file(bucket=QUARANTINE_BUCKET, key=quarantine_key(run, name), path=path)
            stored[name] = {"key": put.key, "sha256": put.sha256, "rows": len(rejected[name])}
        else:
            minio.delete_prefix(bucket=QUARANTINE_BUCKET, prefix=quarantine_key(run, name))
    return stored


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    from plugins.hooks.recsys_api import RecsysApiHook

    tenant = RecsysApiHook(run_key=journey.run_key).ensure_tenant(
        slug=journey.tenant,
        name=journey.params.get("tenant_name") or journey.tenant,
        email=f"admin@{journey.tenant}.example.com",
    )
    loaded = load_frames(journey)
    window = None if journey.byod else (journey.window_start, journey.window_end)
    clean, rejected = split_by_contract(loaded.frames, window=window, reasons=loaded.reasons)
    for name in TABLES:
        write_table(clean[name], clean_path(journey, name))
    quarantined = quarantine(journey, rejected)
    totals = {name: len(loaded.frames[name]) for name in TABLES}
    return {
        "tenant_id": tenant["tenant_id"],
        "tenant_created": tenant["created"],
        "mode": "byod" if journey.byod else "generated",
        "run_key": journey.run_key,
        "counts": {name: len(clean[name]) for name in TABLES},
        "rejected": {name: len(rejected[name]) for name in TABLES},
        "rejections": {name: summarize(rejected[name], total=totals[name]) for name in TABLES},
        "quarantined": quarantined,
        "columns": loaded.notes,
        "categories": int(clean["items"]["category"].replace("", pd.NA).nunique()),
    }


def rejected_rows(done: dict[str, Any]) -> list[str]:
    """What a failed suite adds: a line per table of rejected rows, counted by reason (a stage whose data was
    rejected fails for that reason, and its message and alert must say so)."""
    return describe((done.get("seed_data") or {}).get("rejections") or {})


def with_references(interactions: pd.DataFrame, *, user_ids: pd.Series, item_ids: pd.Series) -> pd.DataFrame:
    """The interactions with the referential checks' columns: ``unknown_user_id`` / ``unknown_item_id`` hold the
    row's id where it is not among ``user_ids`` / ``item_ids``, null where it is. The suite expects them null,
    so a failure lists the unknown ids. The whole id lists as GX value sets cost ~70% of the suite's time at
    10x (100K users, 20K items; ~119 s at 100x): GX's pydantic configuration copies a value set per metric."""
    return interactions.assign(
        unknown_user_id=interactions["user_id"].where(~interactions["user_id"].isin(user_ids)),
        unknown_item_id=interactions["item_id"].where(~interactions["item_id"].isin(item_ids)),
    )


def validate(run: JourneyRun, done: dict[str, Any]):
    from include.recsys.contract.schema import CATEGORIES, INTERACTION_TYPES, MAX_CATEGORY_LENGTH
    from plugins.validation import validate_stage

    frames = {name: read_table(clean_path(run, name), name) for name in TABLES}
    # Optional catalog fields: an empty cell is an absent value, which the suite's range checks skip.
    items = frames["items"].replace({"title": {"": None}, "category": {"": None}, "price": {"": None}})
    frames["items"] = items.assign(price=pd.to_numeric(items["price"]))
    frames["interactions"] = with_references(
        with_timestamps(frames["interactions"]),
        user_ids=frames["users"]["user_id"],
        item_ids=frames["items"]["item_id"],
    )
    if run.byod:
        # A real sample's history need not fall in the run's interval: bound it by itself. Its taxonomy is its own.
        ts = frames["interactions"]["ts"]
        window_start, window_end = ts.min(), ts.max()
        categories = sorted(frames["items"]["category"].dropna().unique())
    else:
        window_start, window_end = pd.Timestamp(run.window_start), pd.Timestamp(run.window_end)
        categories = list(CATEGORIES)
    parameters = {
        "categories": categories,
        "max_category_length": MAX_CATEGORY_LENGTH,
        "interaction_types": list(INTERACTION_TYPES),
        "window_start": window_start,
        "window_end": window_end,
        "min_interactions": 1,
    }
    return validate_stage("seed_data", frames, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id)
