"""The bench's pure logic: summaries of repetitions, figures against ceilings and targets, the regression
check against a baseline, and the printed table. No I/O here, so tests/unit covers it."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# A figure this much worse than the baseline is flagged (never failed: the machines are shared).
REGRESSION_TOLERANCE = 0.20


@dataclass(frozen=True)
class Stat:
    """Median, min and max of one figure's repetitions."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Iterable[float]) -> Stat:
        values = [float(v) for v in samples]
        if not values:
            raise ValueError("a figure needs at least one sample, got none")
        return cls(median=statistics.median(values), min=min(values), max=max(values), n=len(values))

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stat:
        return cls(median=data["median"], min=data["min"], max=data["max"], n=data["n"])


@dataclass(frozen=True)
class Target:
    """``value <= limit`` (op "<="), ``value >= limit`` (">="), or the same on the ratio to the ceiling."""

    op: str
    limit: float
    on: str = "value"  # or "ratio"

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">=") or self.on not in ("value", "ratio"):
            raise ValueError(f"a target is '<=' or '>=' on 'value' or 'ratio', got {self.op!r} on {self.on!r}")

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def describe(self, unit: str) -> str:
        what = "ratio" if self.on == "ratio" else ""
        suffix = "" if self.on == "ratio" else f" {unit}".rstrip()
        return f"{what} {self.op} {self.limit:g}{suffix}".strip()


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    value: Stat
    higher_is_better: bool
    ceiling: Stat | None = None
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How close the figure comes to its ceiling, 1.0 = as good as the bare tool, whichever the direction."""
        if self.ceiling is None or not self.value.median or not self.ceiling.median:
            return None
        if self.higher_is_better:
            return self.value.median / self.ceiling.median
        return self.ceiling.median / self.value.median

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(self.ratio if self.target.on == "ratio" else self.value.median)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "value": self.value.to_dict(),
            "higher_is_better": self.higher_is_better,
            "ceiling": self.ceiling.to_dict() if self.ceiling else None,
            "ratio": self.ratio,
            "target": None
            if self.target is None
            else {"op": self.target.op, "limit": self.target.limit, "on": self.target.on},
            "pass": self.passed,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        target = data.get("target")
        return cls(
            name=data["name"],
            unit=data["unit"],
            value=Stat.from_dict(data["value"]),
            higher_is_better=data["higher_is_better"],
            ceiling=Stat.from_dict(data["ceiling"]) if data.get("ceiling") else None,
            target=Target(**target) if target else None,
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class Regression:
    name: str
    unit: str
    baseline: float
    current: float
    worse_by: float  # 0.25 = 25 % worse, in the figure's own bad direction
    ratio_steady: bool  # the ratio to the ceiling held: the machine, not the code, got slower

    def describe(self) -> str:
        cause = " (ceiling moved as much: machine noise, not the code)" if self.ratio_steady else ""
        now, then = f"{self.current:.4g} {self.unit}".strip(), f"{self.baseline:.4g} {self.unit}".strip()
        return f"{self.name}: {now} vs baseline {then}, {self.worse_by:.0%} worse{cause}"


def worse_by(current: float, baseline: float, *, higher_is_better: bool) -> float:
    """Relative change in the bad direction: > 0 is worse, < 0 is better."""
    if not baseline:
        return 0.0
    change = (current - baseline) / abs(baseline)
    return -change if higher_is_better else change


def regressions(
    current: Sequence[Figure], baseline: Sequence[Figure], *, tolerance: float = REGRESSION_TOLERANCE
) -> list[Regression]:
    """Figures more than ``tolerance`` worse than the baseline's median. A figure with a ceiling whose ratio
    held within the tolerance is still listed, marked as noise, so both numbers are always on record."""
    by_name = {f.name: f for f in baseline}
    found = []
    for figure in current:
        base = by_name.get(figure.name)
        if base is None:
            continue
        worse = worse_by(figure.value.median, base.value.median, higher_is_better=figure.higher_is_better)
        if worse <= tolerance:
            continue
        steady = (
            figure.ratio is not None
            and base.ratio is not None
            and worse_by(figure.ratio, base.ratio, higher_is_better=True) <= tolerance
        )
        found.append(Regression(figure.name, figure.unit, base.value.median, figure.value.median, worse, steady))
    return found


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def _spread(stat: Stat | None) -> str:
    if stat is None:
        return "-"
    if stat.n == 1:
        return _num(stat.median)
    return f"{_num(stat.median)} [{_num(stat.min)}..{_num(stat.max)}]"


def render_table(figures: Sequence[Figure]) -> str:
    """figure | value (median [min..max]) | ceiling | ratio | target | pass/fail."""
    header = ("figure", "unit", "value (median [min..max])", "ceiling (same run)", "ratio", "target", "result")
    rows = [header]
    for f in figures:
        verdict = {True: "pass", False: "FAIL", None: "-"}[f.passed]
        rows.append(
            (
                f.name,
                f.unit,
                _spread(f.value),
                _spread(f.ceiling),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.target.describe(f.unit) if f.target else "-",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
