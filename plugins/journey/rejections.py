"""Why rows were rejected, counted: the top reasons per table, each with its count and one example row.

The same summary goes into seed_data's XCom (so the report has it), and as lines into the validation result and
failure message of a stage that fails because of rejected rows (so the alert and the task log have it), written by
:func:`describe`, e.g. ``items: 1682 of 1682 rows rejected: price must be a number (1682, e.g. row 1: ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from include.recsys.contract.schema import reason_kind
from plugins.journey.tables import COLUMNS, REASON

TOP_REASONS = 5
SOURCE_ROW = "source_row"
_MAX_CELL = 60
HEADER = "rejected rows:"
ITEM_PREFIX = "  * "


def summarize(rejected: pd.DataFrame, *, total: int, top: int = TOP_REASONS) -> dict[str, Any]:
    """``rejected`` carries a ``reason`` per row (and ``source_row``, its 1-based row in the tenant's file)."""
    reasons: list[dict[str, Any]] = []
    if len(rejected):
        kinds = rejected[REASON].map(reason_kind)
        counts = kinds.value_counts(sort=False)
        # Most frequent first; ties in the order the rows came, so the summary reproduces.
        first_seen = {kind: position for position, kind in reversed(list(enumerate(kinds)))}
        ordered = sorted(counts.index, key=lambda kind: (-counts[kind], first_seen[kind]))
        for kind in ordered[:top]:
            example = rejected.iloc[first_seen[kind]]
            reasons.append({"reason": kind, "count": int(counts[kind]), "example": _example(example)})
        left = len(ordered) - top
    else:
        left = 0
    return {"rows": int(total), "rejected": int(len(rejected)), "reasons": reasons, "more_reasons": max(left, 0)}


def _example(row: pd.Series) -> dict[str, str]:
    return {str(k): _cell(v) for k, v in row.items()}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def describe_table(name: str, summary: Mapping[str, Any]) -> str:
    head = f"{name}: {summary['rejected']} of {summary['rows']} rows rejected"
    if not summary["reasons"]:
        return head
    parts = []
    for entry in summary["reasons"]:
        example = dict(entry["example"])
        where = f"row {example.pop(SOURCE_ROW)}: " if SOURCE_ROW in example else ""
        example.pop(REASON, None)
        # The contract's column order (XCom does not keep a dict's order): ids first.
        order = COLUMNS.get(name, ())
        keys = sorted(example, key=lambda k: order.index(k) if k in order else len(order))
        shown = ", ".join(f"{k}={example[k]!r}" for k in keys if example[k] != "")
        parts.append(f"{entry['reason']} ({entry['count']}, e.g. {where}{shown})")
    more = f"; and {summary['more_reasons']} more reasons" if summary.get("more_reasons") else ""
    return f"{head}: " + "; ".join(parts) + more


def describe(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per table with rejected rows (none when nothing was rejected)."""
    return [describe_table(name, s) for name, s in summaries.items() if s["rejected"]]


def failure_text(lines: list[str]) -> str:
    """The block a failing stage appends to its message for :func:`describe`'s lines, or "" for none."""
    return "\n".join([HEADER, *(ITEM_PREFIX + line for line in lines)]) if lines else ""
