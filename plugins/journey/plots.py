"""plots: a tenant's run history at a glance, as PNGs next to each run's report with a short HTML index.

- ``calendar.png``: one square per day, weeks as columns: passed, failed, or no run;
- ``ndcg_p95.png``: NDCG@10 and the recommendation p95 per day, with the trailing baseline band (the min..max
  and median of the successful days before each day, the window the trend compares with);
- ``durations.png``: each stage's duration per day.
"""

from __future__ import annotations

import html
import os
import statistics
from datetime import date, timedelta
from typing import Any

from plugins.journey import STAGES
from plugins.journey.trend import figures

DEFAULT_WINDOW = 7
INDEX = "index.html"
PASS, FAIL, NONE = "#2e7d32", "#c62828", "#eeeeee"


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def bands(rows: list[dict[str, Any]], name: str, *, window: int) -> list[tuple[date, float, float, float] | None]:
    """Per row: (day, low, median, high) of ``name`` over the ``window`` successful rows before it, or None."""
    out: list[tuple[date, float, float, float] | None] = []
    for i, current in enumerate(rows):
        past = [figures(r).get(name) for r in rows[:i] if r["success"]][-window:]
        past = [v for v in past if v is not None]
        out.append((_day(current["logical_date"]), min(past), statistics.median(past), max(past)) if past else None)
    return out


def _calendar(ax: Any, rows: list[dict[str, Any]]) -> None:
    from matplotlib.patches import Rectangle

    verdict = {_day(r["logical_date"]): r["success"] for r in rows}
    first, last = min(verdict), max(verdict)
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    for offset in range((last - start).days + 1):
        day = start + timedelta(days=offset)
        color = NONE if day not in verdict else PASS if verdict[day] else FAIL
        ax.add_patch(Rectangle((offset // 7, 6 - day.weekday()), 0.9, 0.9, color=color))
    ax.set_xlim(-0.2, weeks + 0.1)
    ax.set_ylim(-0.2, 7.1)
    ax.set_yticks([6.45 - i for i in range(7)], ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_xticks(
        [w + 0.45 for w in range(weeks)], [f"{start + timedelta(weeks=w):%m-%d}" for w in range(weeks)], rotation=45
    )
    ax.set_title(f"pass (green) / fail (red) by day, {first} .. {last}")
    ax.set_aspect("equal")


def _with_band(ax: Any, rows: list[dict[str, Any]], name: str, *, label: str, window: int) -> None:
    days = [_day(r["logical_date"]) for r in rows]
    values = [figures(r).get(name) for r in rows]
    band = [b for b in bands(rows, name, window=window) if b is not None]
    if band:
        ax.fill_between(
            [b[0] for b in band], [b[1] for b in band], [b[3] for b in band], alpha=0.25, label="baseline min..max"
        )
        ax.plot([b[0] for b in band], [b[2] for b in band], linestyle="--", label="baseline median")
    shown = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    ax.plot([d for d, _ in shown], [v for _, v in shown], marker="o", label=label)
    failed = [
        (d, v)
        for (d, v), r in zip(zip(days, values, strict=True), rows, strict=True)
        if v is not None and not r["success"]
    ]
    if failed:
        ax.scatter([d for d, _ in failed], [v for _, v in failed], color=FAIL, zorder=3, label="failed day")
    ax.set_title(label)
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=45)


def render(rows: list[dict[str, Any]], *, out_dir: str, tenant: str, window: int = DEFAULT_WINDOW) -> dict[str, Any]:
    """Write the PNGs and index.html for ``rows`` (history rows, oldest first); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError(f"no history rows for tenant {tenant}: nothing to plot")
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(6, 3))
    _calendar(ax, rows)
    written["calendar"] = _save(fig, out_dir, "calendar.png")

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    _with_band(top, rows, "ndcg_at_10", label="NDCG@10", window=window)
    _with_band(bottom, rows, "p95_ms", label="recommendation p95 (ms)", window=window)
    written["ndcg_p95"] = _save(fig, out_dir, "ndcg_p95.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    days = [_day(r["logical_date"]) for r in rows]
    for stage in STAGES:
        seconds = [((r["stages"] or {}).get(stage) or {}).get("duration_s") for r in rows]
        shown = [(d, s) for d, s in zip(days, seconds, strict=True) if s is not None]
        if shown:
            ax.plot([d for d, _ in shown], [s for _, s in shown], marker=".", label=stage)
    ax.set_ylabel("seconds")
    ax.set_title("stage durations")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=45)
    written["durations"] = _save(fig, out_dir, "durations.png")

    written["index"] = os.path.join(out_dir, INDEX)
    with open(written["index"], "w") as fh:
        fh.write(
            _index(
                rows,
                tenant=tenant,
                images=[os.path.basename(written[k]) for k in ("calendar", "ndcg_p95", "durations")],
            )
        )
    return {"days": len(rows), "files": written}


def _save(fig: Any, out_dir: str, name: str) -> str:
    import matplotlib.pyplot as plt

    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _index(rows: list[dict[str, Any]], *, tenant: str, images: list[str]) -> str:
    cells = []
    for r in reversed(rows[-14:]):
        found = figures(r)
        ndcg, p95 = found.get("ndcg_at_10"), found.get("p95_ms")
        regressions = ", ".join((r.get("trend") or {}).get("regressions") or []) or "-"
        cells.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    _day(r["logical_date"]),
                    r["run_type"],
                    "passed" if r["success"] else f"failed at {r['failed_stage']}",
                    f"{ndcg:.3f}" if ndcg is not None else "-",
                    f"{p95:g}" if p95 is not None else "-",
                    regressions,
                )
            )
            + "</tr>"
        )
    title = f"Validation history: {html.escape(tenant)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"
        + "".join(f"<p><img src='{html.escape(name)}' alt='{html.escape(name)}'></p>" for name in images)
        + "<table border='1' cellpadding='3'><tr><th>day</th><th>run type</th><th>verdict</th><th>NDCG@10</th>"
        "<th>p95 ms</th><th>regressions</th></tr>" + "".join(cells) + "</table></body></html>\n"
    )
