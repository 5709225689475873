"""Reading and writing the journey's CSV tables with the contract's types.

Ids are read as strings (so 'item_007' and '007' survive as written), missing cells stay empty strings
rather than NaN so contract checks report them as such.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from include.recsys.contract.csvsafe import escape_cell
from include.recsys.contract.schema import INTERACTION_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, require_columns

COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ITEM_COLUMNS,
    "users": USER_COLUMNS,
    "interactions": INTERACTION_COLUMNS,
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
REASON = "reason"
RECORDS_CHUNK_ROWS = 50_000


def parse_delimited(
    source: str | bytes, *, what: str, sep: str = ",", quoting: int = csv.QUOTE_MINIMAL
) -> pd.DataFrame:
    """Every column of a delimited text file (a path or its bytes) as strings, strictly: a file that is not
    UTF-8 or whose rows do not match its header is an error saying so, never a silently shifted table."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # A row with more cells than the header is an unquoted comma or a broken file. Left to pandas, it
        # silently shifts every cell into the wrong column (first row) or drops the extra cells
        # (index_col=False, with a warning): neither is a rejection with a reason, so it is an error.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # utf-8-sig: spreadsheets write a byte-order mark, which would otherwise become part of the first column's name.
            return pd.read_csv(
                handle,
                sep=sep,
                quoting=quoting,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                index_col=False,
            )
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} must be UTF-8 text: {exc}") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} is empty: expected a header row naming its columns") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise ValueError(
            f"{what} is not well-formed {'TSV' if sep == chr(9) else 'CSV'} (rows must match the header): {exc}"
        ) from None


def read_table(source: str | bytes, name: str, *, what: str | None = None) -> pd.DataFrame:
    """A table in the contract's layout from a path or CSV bytes, reduced to the contract's columns (extra
    columns are ignored)."""
    frame = parse_delimited(source, what=what or name)
    require_columns(frame.columns, COLUMNS[name], what=what or name)
    extra = [c for c in frame.columns if c not in COLUMNS[name] and c != REASON]
    return frame.drop(columns=extra)


def read_arrow(source: Any, name: str, *, columns: tuple[str, ...] | None = None) -> pa.Table:
    """A table the journey wrote (a path, or a file-like stream such as an object's body) as Arrow strings, read
    as it arrives: ``columns`` of the contract's (all of them by default). At 10M interactions ~1.5 GB, where
    the bytes and a pandas frame of them had held ~8 GB. Empty cells stay empty strings, as read_table keeps
    them."""
    from pyarrow import csv as pa_csv

    wanted = list(columns or COLUMNS[name])
    try:
        return pa_csv.read_csv(
            source,
            # An id may hold a quoted line break: the contract does not forbid one.
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"{name} must be CSV with the columns {wanted}: {exc}") from None


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write_table(frame: pd.DataFrame, path: str, *, for_people: bool = False) -> str:
    """``for_people``: a file operators open (quarantine), so formula-like cells are escaped; data files
    the platform reads back stay byte-exact."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(to_csv_bytes(frame.map(escape_cell) if for_people else frame))
    return path


def records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The frame's rows as dicts, made RECORDS_CHUNK_ROWS at a time: 10M rows as dicts at once are several GB,
    where the frame's columns hold them in a fraction of that."""
    for start in range(0, len(frame), RECORDS_CHUNK_ROWS):
        yield from frame.iloc[start : start + RECORDS_CHUNK_ROWS].to_dict("records")


def with_timestamps(interactions: pd.DataFrame) -> pd.DataFrame:
    """Adds ``ts`` (UTC datetimes parsed from ``timestamp``) for range expectations."""
    return interactions.assign(ts=pd.to_datetime(interactions["timestamp"], utc=True, format="ISO8601"))
