"""drift: each upload against the tenant's previous upload, checked in upload_to_minio's own GX suite.

Two batches join that suite:

- ``drift``, one row per table: rows now and in the previous upload, their ratio (between
  ``drift_min_row_ratio`` and ``drift_max_row_ratio``), and for users and items the share of ids never seen in
  the previous upload (at most ``drift_max_new_share``);
- ``drift_interactions``, the interactions with each one's item-popularity decile: GX's
  ``expect_column_kl_divergence_to_be_less_than`` compares the interaction-type mix and the popularity
  distribution (the share of interactions falling on each decile of items ranked by popularity: the shape of the
  long tail, whatever the items' names) with the previous upload's, at most ``drift_max_kl``.

The previous upload is the latest earlier day in the history store that uploaded data; its objects are read back
from the raw bucket. A tenant's first upload has no baseline: the report says so, and the KL expectations then
compare the upload with its own distribution (a divergence of 0), so the suite keeps one shape every day.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plugins.journey.tables import TABLES

DECILES: tuple[str, ...] = tuple(f"d{i:02d}" for i in range(1, 11))
ID_COLUMNS = {"users": "user_id", "items": "item_id"}
THRESHOLD_PARAMS = ("drift_min_row_ratio", "drift_max_row_ratio", "drift_max_new_share", "drift_max_kl")
KL_COLUMNS = ("interaction_type", "popularity_decile")


def popularity_deciles(item_ids: pd.Series) -> pd.Series:
    """Each interaction's item's popularity decile: d01 holds the most interacted-with tenth of the items that
    were interacted with. Items of equal counts are ordered by id, so the split is deterministic."""
    counts = item_ids.value_counts().rename_axis("item_id").reset_index(name="n")
    counts = counts.sort_values(["n", "item_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    decile = {item: DECILES[rank * 10 // len(counts)] for rank, item in enumerate(counts["item_id"])}
    return item_ids.map(decile)


def shares(values: pd.Series) -> dict[str, float]:
    """Each value's share of the rows, values sorted."""
    counts = values.astype(str).value_counts(normalize=True)
    return {str(k): round(float(counts[k]), 6) for k in sorted(counts.index)}


def partition(share: dict[str, float]) -> dict[str, list]:
    """A GX categorical partition object; weights renormalised, since rounding leaves them a hair off 1."""
    total = sum(share.values())
    return {"values": list(share), "weights": [v / total for v in share.values()]}


def profile(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """What the next upload is compared with (stored in the history row)."""
    interactions = frames["interactions"]
    return {
        "rows": {name: len(frames[name]) for name in TABLES},
        "interaction_type": shares(interactions["interaction_type"]),
        "popularity_decile": shares(popularity_deciles(interactions["item_id"])),
    }


def table_rows(frames: dict[str, pd.DataFrame], previous: dict[str, pd.DataFrame] | None) -> pd.DataFrame:
    """The ``drift`` batch: per table, rows now and before, their ratio, and the share of new ids."""
    rows = []
    for name in TABLES:
        entry: dict[str, Any] = {
            "table": name,
            "rows": len(frames[name]),
            "previous_rows": None,
            "row_ratio": None,
            "new_share": None,
        }
        if previous is not None:
            entry["previous_rows"] = float(len(previous[name]))
            entry["row_ratio"] = len(frames[name]) / len(previous[name]) if len(previous[name]) else None
            column = ID_COLUMNS.get(name)
            if column is not None and len(frames[name]):
                seen = set(previous[name][column].astype(str))
                entry["new_share"] = float((~frames[name][column].astype(str).isin(seen)).mean())
        rows.append(entry)
    frame = pd.DataFrame(rows)
    return frame.astype({"previous_rows": "float64", "row_ratio": "float64", "new_share": "float64"})


def batches(
    frames: dict[str, pd.DataFrame],
    previous: dict[str, pd.DataFrame] | None,
    *,
    previous_profile: dict[str, Any] | None,
    params: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """(the two batches, their suite parameters, report.json's ``drift`` section without GX's observed values)."""
    now = profile(frames)
    against = previous_profile if previous_profile is not None else now
    interactions = pd.DataFrame(
        {
            "interaction_type": frames["interactions"]["interaction_type"].astype(str),
            "popularity_decile": popularity_deciles(frames["interactions"]["item_id"]),
        }
    )
    table = table_rows(frames, previous)
    parameters = {name: float(params[name]) for name in THRESHOLD_PARAMS}
    parameters |= {f"{column}_partition": partition(against[column]) for column in KL_COLUMNS}
    section = {
        "thresholds": {name: parameters[name] for name in THRESHOLD_PARAMS},
        "tables": {
            r["table"]: {k: _plain(k, v) for k, v in r.items() if k != "table"} for r in table.to_dict("records")
        },
        "profile": now,
        "previous_profile": previous_profile,
    }
    return {"drift": table, "drift_interactions": interactions}, parameters, section


def _plain(name: str, value: Any) -> Any:
    """A drift table cell for report.json: NaN (no previous upload) as null, row counts as integers."""
    if isinstance(value, float) and np.isnan(value):
        return None
    return int(value) if name in ("rows", "previous_rows") else float(value) if isinstance(value, float) else value
