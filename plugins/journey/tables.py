"""Reading and writing the journey's CSV tables with the contract's types.

Ids are read as strings (so 'item_007' and '007' survive as written), missing cells stay empty strings
rather than NaN so contract checks report them as such.
"""

from __future__ import annotations

import io
import os
import warnings

import pandas as pd

from include.recsys.contracts import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, require_columns
from include.recsys.csvsafe import escape_cell

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
        # A row with more cells than the header is an unquoted comma or a broken file. Left to pandas, it
        # silently shifts every cell into the wrong column (first row) or drops the extra cells
        # (index_col=False, with a warning): neither is a rejection with a reason, so it is an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(handle, dtype=str, keep_default_na=False, encoding="utf-8", index_col=False)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what or name} must be UTF-8 CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what or name} is empty: expected a CSV header with {', '.join(COLUMNS[name])}") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise ValueError(f"{what or name} is not well-formed CSV (rows must match the header): {exc}") from None
    require_columns(frame.columns, COLUMNS[name], what=what or name)
    extra = [c for c in frame.columns if c not in COLUMNS[name] and c != REASON]
    return frame.drop(columns=extra)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_table(frame: pd.DataFrame, path: str, *, for_people: bool = False) -> str:
    """``for_people``: a file operators open (quarantine), so formula-like cells are escaped; data files
    the platform reads back stay byte-exact."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(to_csv_bytes(frame.map(escape_cell) if for_people else frame))
    return path


def with_timestamps(interactions: pd.DataFrame) -> pd.DataFrame:
    """Adds ``ts`` (UTC datetimes parsed from ``timestamp``) for range expectations."""
    return interactions.assign(ts=pd.to_datetime(interactions["timestamp"], utc=True, format="ISO8601"))
