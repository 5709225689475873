"""history: what the report task adds to a run from the tenant's past, and the row it leaves for the future.

For every run, passed or failed, the report task (trigger rule all_done) calls :func:`record`: it reads the
tenant's trailing baseline from the history store, puts the ``trend`` section in the report, applies
``regression_policy`` (``warn``: an alert; ``fail``: the run fails too, naming the figure, both numbers and the
baseline window), upserts the day's row and renders the tenant's history plots next to the report.
"""

from __future__ import annotations

from typing import Any

from plugins.journey.run import JourneyRun

STAGE_FIELDS = ("status", "duration_s", "counts")
TREND_STAGE = "trend"  # the failed stage a regression under regression_policy=fail names
PLOTS_DIR = "history"


def scale(run: JourneyRun) -> dict[str, Any] | None:
    """What makes two days' figures comparable: generated data's sizes; a tenant's own files have none."""
    if run.byod:
        return None
    return {name: int(run.params[name]) for name in ("n_users", "n_items", "n_interactions")}


def row(report: dict[str, Any], *, run: JourneyRun, run_type: str) -> dict[str, Any]:
    """The history row of one report (report.json's figures, flattened per stage)."""
    stages = {}
    drills = None
    for stage in report["stages"]:
        validation = stage.get("validation") or {}
        stages[stage["name"]] = {
            **{k: stage.get(k) for k in STAGE_FIELDS},
            "evaluated": validation.get("evaluated"),
            "unsuccessful": validation.get("unsuccessful"),
        }
        drills = stage.get("drills", drills)
    recs = dict(report.get("recommendations") or {})
    if recs.get("requests"):
        recs["error_rate"] = round((recs.get("errors") or 0) / recs["requests"], 6)
    drift = report.get("drift") or {}
    return {
        "dag_id": report["dag_id"],
        "tenant": report["tenant"],
        "logical_date": run.window_start.date(),
        "run_id": report["run_id"],
        "run_type": run_type,
        "run_key": report["run_key"],
        "success": report["success"],
        "failed_stage": report["failed_stage"],
        "scale": scale(run),
        "stages": stages,
        "model": report.get("model") or {},
        "recommendations": recs,
        "drills": drills,
        "checksums": report.get("checksums"),
        "upload": {"profile": drift["profile"], "drift": {k: v for k, v in drift.items() if k != "profile"}}
        if drift.get("profile")
        else None,
        "trend": report.get("trend"),
    }


def record(run: JourneyRun, report: dict[str, Any], *, run_type: str) -> list[str]:
    """Trend, policy, row and plots; returns the regressions described (empty: none). Mutates ``report``."""
    from plugins.hooks.history import HistoryHook
    from plugins.journey import plots, trend

    hook = HistoryHook()
    window, min_runs = int(run.params["baseline_runs"]), int(run.params["baseline_min_runs"])
    today = row(report, run=run, run_type=run_type)
    baseline = hook.baseline(
        dag_id=run.dag_id, tenant=run.tenant, before=today["logical_date"], limit=window, scale=today["scale"]
    )
    section = trend.compare(
        trend.figures(today),
        baseline,
        threshold=float(run.params["regression_threshold"]),
        min_runs=min_runs,
        window=window,
    )
    section["policy"] = run.params["regression_policy"]
    report["trend"] = section
    regressions = [trend.describe(name, section["figures"][name], section["window"]) for name in section["regressions"]]
    if regressions and section["policy"] == "fail" and report["success"]:
        report["success"], report["failed_stage"] = False, TREND_STAGE
    hook.upsert_run(row=row(report, run=run, run_type=run_type))
    history = hook.runs(dag_id=run.dag_id, tenant=run.tenant, through=today["logical_date"])
    report["plots"] = plots.render(history, out_dir=f"{run.report_dir}/{PLOTS_DIR}", tenant=run.tenant)
    return regressions
