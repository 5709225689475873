"""Reading and writing the journey's CSV tables with the contract's types.

Ids are read as strings (so 'item_007' and '007' survive as written), missing cells stay empty strings
rather than NaN so contract checks report them as such.
"""

from __future__ import annotations

import io
import os

import pandas as pd

from include.recsys.contracts import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, require_columns

COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ITEM_COLUMNS,
    "users": USER_COLUMNS,
    "interactions": INTERACTION_COLUMNS,
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
REASON = "reason"


def read_table(source: str | bytes, name: str, *, what: str | None = None) -> pd.DataFrame:
    """A table from a path or CSV bytes, reduced to the contract's columns (extra columns are ignored)."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what or name} must be UTF-8 CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what or name} is empty: expected a CSV header with {', '.join(COLUMNS[name])}") from None
    require_columns(frame.columns, COLUMNS[name], what=what or name)
    extra = [c for c in frame.columns if c not in COLUMNS[name] and c != REASON]
    return frame.drop(columns=extra)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_table(frame: pd.DataFrame, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(to_csv_bytes(frame))
    return path


def with_timestamps(interactions: pd.DataFrame) -> pd.DataFrame:
    """Adds ``ts`` (UTC datetimes parsed from ``timestamp``) for range expectations."""
    return interactions.assign(ts=pd.to_datetime(interactions["timestamp"], utc=True, format="ISO8601"))
