"""A tenant's tables in the contract's layout: its own column names mapped, absent optional columns derived, values
normalised, so nobody rewrites their files.

``columns`` maps each contract column to the file's column (``{"interactions": {"user_id": "userId"}}``); a
contract column it does not map is looked up under its own name, and other columns are ignored. Only user_id and
item_id (interactions) and item_id (items) must exist. For interactions:

- ``event_id`` absent: derived from tenant + user + item + timestamp and the ordinal of exact duplicates, so a
  re-run reproduces the same ids and duplicates of one event share their stem (``ev-<digest>-0``, ``-1``, ...).
- ``timestamp``: ISO-8601 with an offset, naive ISO-8601 (taken in the ``timezone`` param, an IANA name; without
  it the run fails saying so), or epoch seconds / milliseconds (numbers below 1e11 are seconds); written out in
  UTC. Absent: every event gets the run's data-interval start as a stand-in, and the notes say so.
- ``interaction_type``: the tenant's values are mapped by ``interaction_type_map`` (compared as strings); without
  a map they must be the contract's own. Absent: ``default_interaction_type``.

A value that cannot be normalised keeps its raw text and gets a reason, so the row is quarantined as written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from include.recsys.contract.schema import (
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    ITEM_COLUMNS,
    ContractError,
    parse_timestamp,
    require_columns,
)

CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {"interactions": INTERACTION_COLUMNS, "items": ITEM_COLUMNS}
REQUIRED: dict[str, tuple[str, ...]] = {"interactions": ("user_id", "item_id"), "items": ("item_id",)}
# Epoch numbers at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
EPOCH_MS_FROM = 1e11
EPOCH_MS_UNTIL = 1e14
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Layout:
    """How a tenant's files map to the contract: the bring-your-own-data params."""

    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    interaction_type_map: Mapping[str, str] | None = None
    default_interaction_type: str | None = "view"
    timezone: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Layout:
        layout = cls(
            columns=params.get("columns") or {},
            interaction_type_map=params.get("interaction_type_map") or None,
            default_interaction_type=params.get("default_interaction_type", cls.default_interaction_type),
            timezone=params.get("timezone") or None,
        )
        layout.check()
        return layout

    def check(self) -> None:
        """The params' own consistency (the DAG's param schema says the same to the trigger form)."""
        for table, mapping in self.columns.items():
            if table not in CONTRACT_COLUMNS:
                raise ValueError(f"columns maps tables {', '.join(CONTRACT_COLUMNS)}; got {table!r}")
            unknown = [name for name in mapping if name not in CONTRACT_COLUMNS[table]]
            if unknown:
                raise ValueError(
                    f"columns.{table} maps the contract's columns {', '.join(CONTRACT_COLUMNS[table])}; got {', '.join(map(repr, unknown))}"
                )
        for value, target in (self.interaction_type_map or {}).items():
            if target not in INTERACTION_TYPES:
                raise ValueError(
                    f"interaction_type_map maps to {', '.join(INTERACTION_TYPES)}; got {value!r}: {target!r}"
                )
        if self.default_interaction_type is not None and self.default_interaction_type not in INTERACTION_TYPES:
            raise ValueError(
                f"default_interaction_type must be one of {', '.join(INTERACTION_TYPES)}, got {self.default_interaction_type!r}"
            )
        self.zone()

    def zone(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if self.timezone is None:
            return None
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone must be an IANA name such as 'Europe/Berlin', got {self.timezone[:64]!r}"
            ) from None


@dataclass(frozen=True)
class Normalized:
    """A table in the contract's columns (index: the row's position in the tenant's file), a reason for each row
    that could not be normalised (None elsewhere), and how each contract column was obtained."""

    frame: pd.DataFrame
    reasons: pd.Series
    notes: dict[str, str]


def mapped_columns(raw: pd.DataFrame, *, table: str, layout: Layout, what: str) -> dict[str, str]:
    """contract column -> the file's column, for the contract columns the file has; required ones must be there."""
    mapping = dict(layout.columns.get(table) or {})
    present = set(raw.columns)
    missing_mapped = {name: source for name, source in mapping.items() if source not in present}
    if missing_mapped:
        found = ", ".join(str(c)[:40] for c in list(raw.columns)[:20])
        wanted = ", ".join(f"{source!r} (for {name})" for name, source in missing_mapped.items())
        raise ContractError(f"{what} has no column {wanted}, as params columns.{table} says; found: {found}")
    found = {name: mapping.get(name, name) for name in CONTRACT_COLUMNS[table] if mapping.get(name, name) in present}
    if any(name not in found for name in REQUIRED[table]):
        require_columns(
            raw.columns,
            [mapping.get(name, name) for name in REQUIRED[table]],
            what=f"{what} (other names map with params columns.{table})",
        )
    return found


def _strip(series: pd.Series) -> pd.Series:
    return series.str.strip()


def normalize_items(raw: pd.DataFrame, *, layout: Layout, what: str) -> Normalized:
    found = mapped_columns(raw, table="items", layout=layout, what=what)
    frame = pd.DataFrame(index=raw.index)
    notes = {}
    for name in ITEM_COLUMNS:
        if name in found:
            # Ids stay as written; descriptive text loses stray spaces, so " Drama" and "Drama" are one category.
            frame[name] = raw[found[name]] if name == "item_id" else _strip(raw[found[name]])
            notes[name] = _from(found[name], name)
        else:
            frame[name] = ""
            notes[name] = "absent"
    return Normalized(frame=frame, reasons=pd.Series(None, index=raw.index, dtype=object), notes=notes)


def normalize_interactions(
    raw: pd.DataFrame, *, tenant: str, layout: Layout, stand_in: datetime, what: str
) -> Normalized:
    """``stand_in``: the timestamp of every event when the file has none (the run's data-interval start)."""
    found = mapped_columns(raw, table="interactions", layout=layout, what=what)
    frame = pd.DataFrame(index=raw.index)
    frame["user_id"] = raw[found["user_id"]]
    frame["item_id"] = raw[found["item_id"]]
    reasons = pd.Series(None, index=raw.index, dtype=object)
    notes = {"user_id": _from(found["user_id"], "user_id"), "item_id": _from(found["item_id"], "item_id")}

    if "timestamp" in found:
        frame["timestamp"], problems = _timestamps(raw[found["timestamp"]], zone=layout.zone(), what=what)
        reasons = reasons.where(reasons.notna(), problems)
        notes["timestamp"] = _from(found["timestamp"], "timestamp")
    else:
        frame["timestamp"] = stand_in.astimezone(UTC).isoformat()
        notes["timestamp"] = (
            f"absent: every event stamped {frame['timestamp'].iloc[0] if len(frame) else stand_in.isoformat()} (the run's data-interval start); time-based checks are vacuous"
        )

    if "interaction_type" in found:
        values = _strip(raw[found["interaction_type"]])
        if layout.interaction_type_map:
            mapping = {str(k): v for k, v in layout.interaction_type_map.items()}
            mapped = values.map(mapping)
            unmapped = mapped.isna()
            frame["interaction_type"] = mapped.where(~unmapped, values)
            reasons = reasons.where(
                reasons.notna() | ~unmapped,
                "interaction_type not in interaction_type_map, got " + values.str.slice(0, 40).map(repr),
            )
            notes["interaction_type"] = (
                f"{_from(found['interaction_type'], 'interaction_type')}, mapped by interaction_type_map"
            )
        else:
            frame["interaction_type"] = values
            notes["interaction_type"] = _from(found["interaction_type"], "interaction_type")
    elif layout.default_interaction_type is not None:
        frame["interaction_type"] = layout.default_interaction_type
        notes["interaction_type"] = (
            f"absent: every event {layout.default_interaction_type!r} (default_interaction_type)"
        )
    else:
        raise ContractError(
            f"{what} has no interaction_type column: map one with params columns.interactions.interaction_type"
            f" or set default_interaction_type to one of {', '.join(INTERACTION_TYPES)}"
        )

    if "event_id" in found:
        frame["event_id"] = raw[found["event_id"]]
        notes["event_id"] = _from(found["event_id"], "event_id")
    else:
        frame["event_id"] = derived_event_ids(frame, tenant=tenant)
        repeats = int((~frame["event_id"].str.endswith("-0")).sum())
        notes["event_id"] = "absent: derived from tenant, user, item and timestamp" + (
            f"; {repeats} exact repeats of an event kept with their ordinal" if repeats else ""
        )
    return Normalized(
        frame=frame[list(INTERACTION_COLUMNS)], reasons=reasons.astype(object).where(reasons.notna(), None), notes=notes
    )


def derived_event_ids(frame: pd.DataFrame, *, tenant: str) -> pd.Series:
    """``ev-<digest of tenant, user, item, timestamp>-<n>``: n counts exact repeats in file order, so the same file
    always gets the same ids and repeats of one event stay recognisable by their shared stem."""
    keys = tenant + "\x1f" + frame["user_id"] + "\x1f" + frame["item_id"] + "\x1f" + frame["timestamp"]
    ordinal = keys.groupby(keys, sort=False).cumcount().astype(str)
    stems = keys.map(lambda key: hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()[:24])
    return "ev-" + stems + "-" + ordinal


def _timestamps(raw: pd.Series, *, zone: Any, what: str) -> tuple[pd.Series, pd.Series]:
    """(normalised text, reason or None) per row. Naive values without a timezone fail the whole table: they
    are not the rows' fault, and guessing a zone would shift every event."""
    parsed = {value: _timestamp(value, zone=zone) for value in pd.unique(raw)}
    naive = [value for value, (_, problem) in parsed.items() if problem is _NAIVE]
    if naive:
        count = int(raw.isin(naive).sum())
        raise ContractError(
            f"{what}: {count} timestamps carry no UTC offset (e.g. {naive[0][:40]!r}); set the timezone param to the"
            " IANA zone they were recorded in (e.g. 'Europe/Berlin'), or give them an offset"
        )
    values = raw.map(lambda v: parsed[v][0])
    problems = raw.map(lambda v: parsed[v][1])
    return values, problems.astype(object).where(problems.notna(), None)


_NAIVE = "naive"


def _timestamp(value: str, *, zone: Any) -> tuple[str, str | None]:
    text = value.strip()
    if not text:
        return value, "timestamp must not be empty"
    if _NUMBER.match(text):
        number = float(text)
        if abs(number) >= EPOCH_MS_UNTIL:
            return value, f"epoch timestamp must be in seconds or milliseconds, got {text[:40]!r}"
        seconds = number / 1000 if abs(number) >= EPOCH_MS_FROM else number
        try:
            return datetime.fromtimestamp(seconds, UTC).isoformat(), None
        except (OverflowError, OSError, ValueError):
            return value, f"epoch timestamp out of range, got {text[:40]!r}"
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return value, f"timestamp must be ISO-8601 or epoch seconds/milliseconds, got {text[:40]!r}"
    if ts.tzinfo is None:
        if zone is None:
            return value, _NAIVE
        ts = ts.replace(tzinfo=zone)
    else:
        try:
            parse_timestamp(text)  # the contract's limits (offsets, years) with its own reasons
        except ValueError as exc:
            return value, str(exc)
    # In UTC: text of one instant then sorts like the instant, whichever offsets (or summer time) the log mixed.
    return ts.astimezone(UTC).isoformat(), None


def _from(source: str, name: str) -> str:
    return "given" if source == name else f"from column {source!r}"
