"""trend: each run's figures against the tenant's trailing baseline, the median of its last N successful days.

A figure more than ``threshold`` (default 20%, the platform's benchmarking rule) worse than its baseline, in the
figure's own direction, is a regression. Each figure also has a noise floor, an absolute change too small to
mean anything (a stage of 0.4 s taking 0.6 s is +50% and noise), below which no move is a regression. Nothing
is compared before ``min_runs`` successful days exist: a median of one or two days is not a baseline.

Figures are read from history rows (plugins/journey/history.py), so today's report and the baseline days are
read the same way.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from plugins.journey import STAGES

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Figure:
    name: str
    better: str  # HIGHER or LOWER
    noise_floor: float


# Model figures first, then serving, then time. A model metric not named here is stored in the history but not
# trended: whether more of it is better is for whoever adds it to say. The lift over popularity is not trended:
# it moves with the popularity baseline of each day's data (measured: 1.59 against a median of 2.31 on a day whose
# NDCG@10 was 3% above its baseline), and the lift gate already holds it every day.
FIGURES: tuple[Figure, ...] = (
    Figure("ndcg_at_10", HIGHER, 0.005),
    Figure("recall_at_10", HIGHER, 0.005),
    Figure("p50_ms", LOWER, 5.0),
    Figure("p95_ms", LOWER, 5.0),
    Figure("p99_ms", LOWER, 5.0),
    Figure("error_rate", LOWER, 0.001),
    *(Figure(f"{stage}_s", LOWER, 1.0) for stage in STAGES),
    Figure("total_s", LOWER, 2.0),
)
MODEL_FIGURES = ("ndcg_at_10", "recall_at_10")
SERVING_FIGURES = ("p50_ms", "p95_ms", "p99_ms", "error_rate")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures(row: dict[str, Any]) -> dict[str, float]:
    """The trended figures of one history row (those it has)."""
    found: dict[str, float | None] = {}
    model, recs, stages = row.get("model") or {}, row.get("recommendations") or {}, row.get("stages") or {}
    found.update({name: _number(model.get(name)) for name in MODEL_FIGURES})
    found.update({name: _number(recs.get(name)) for name in SERVING_FIGURES})
    durations = {stage: _number((stages.get(stage) or {}).get("duration_s")) for stage in STAGES}
    found.update({f"{stage}_s": seconds for stage, seconds in durations.items()})
    # The journey's time only when every stage ran: a day that stopped early is not faster.
    found["total_s"] = round(sum(durations.values()), 3) if all(v is not None for v in durations.values()) else None
    return {name: value for name, value in found.items() if value is not None}


def worse_by(figure: Figure, *, value: float, baseline: float) -> float:
    """How much worse ``value`` is than ``baseline``, in the figure's units (negative: better)."""
    return baseline - value if figure.better == HIGHER else value - baseline


def compare(
    current: dict[str, float], baseline_rows: list[dict[str, Any]], *, threshold: float, min_runs: int, window: int
) -> dict[str, Any]:
    """report.json's ``trend`` section: per figure value, baseline, relative change, n_baseline, regression."""
    days = sorted(str(row["logical_date"]) for row in baseline_rows)
    past = [figures(row) for row in baseline_rows]
    section: dict[str, Any] = {
        "window": {"runs": window, "min_runs": min_runs, "threshold": threshold, "days": days},
        "figures": {},
        "regressions": [],
    }
    for figure in FIGURES:
        value = current.get(figure.name)
        values = [p[figure.name] for p in past if figure.name in p]
        if value is None:
            continue
        entry: dict[str, Any] = {
            "value": value,
            "baseline": None,
            "relative_change": None,
            "n_baseline": len(values),
            "better": figure.better,
            "regression": False,
        }
        if len(values) >= min_runs:
            baseline = statistics.median(values)
            worse = worse_by(figure, value=value, baseline=baseline)
            entry["baseline"] = round(baseline, 6)
            entry["relative_change"] = round((value - baseline) / baseline, 4) if baseline else None
            relative_worse = worse / abs(baseline) if baseline else float("inf") if worse > 0 else 0.0
            entry["regression"] = worse > figure.noise_floor and relative_worse > threshold
        section["figures"][figure.name] = entry
        if entry["regression"]:
            section["regressions"].append(figure.name)
    if len(baseline_rows) < min_runs:
        section["note"] = (
            f"no baseline yet: {len(baseline_rows)} successful run(s) before this day at this scale, {min_runs} needed"
        )
    return section


def describe(name: str, entry: dict[str, Any], window: dict[str, Any]) -> str:
    """One regression, as an alert and a failed run name it: the figure, both numbers and the baseline window."""
    days = window["days"]
    span = f"{days[0]}..{days[-1]}" if days else "none"
    change = entry["relative_change"]
    pct = f"{change:+.1%}" if change is not None else "from a baseline of 0"
    return (
        f"{name} {entry['value']:g} vs baseline {entry['baseline']:g} ({pct}; {entry['better']} is better;"
        f" threshold {window['threshold']:.0%}; median of {entry['n_baseline']} successful runs {span})"
    )


def trend_lines(trend: dict[str, Any] | None) -> list[str]:
    """One line per figure that has a baseline: what `make demo` prints."""
    if not trend:
        return []
    lines = []
    for name, entry in trend["figures"].items():
        if entry["baseline"] is None:
            continue
        change = entry["relative_change"]
        flag = "  REGRESSION" if entry["regression"] else ""
        pct = f"{change:+.1%}" if change is not None else "n/a"
        lines.append(
            f"{name:<28}{entry['value']:>12g}  baseline {entry['baseline']:>10g}  {pct:>8}  n={entry['n_baseline']}{flag}"
        )
    return lines
