"""report: one report.json and one GX Data Docs site for every run, passed or failed, stored locally
(``<reports>/<run_id>/<tenant>/``, with ``latest`` pointing at the newest) and in the reports bucket."""

from __future__ import annotations

import json
import os
from typing import Any

from include.config import REPORTS_BUCKET
from plugins.journey import ALL_STAGES, STAGES
from plugins.journey.run import JourneyRun, reports_root, safe_name
from plugins.journey.tasks import FAILURE_KEY, VALIDATION_KEY, pull

MODEL_FIELDS = ("ndcg_at_10", "recall_at_10", "popularity_ndcg_at_10", "popularity_recall_at_10", "ndcg_lift", "train_seconds")
# Catalog fields nothing downstream depends on: their absence is in the report's input section, not its notes.
DESCRIPTIVE = ("title", "price", "image_url")
RECOMMENDATION_FIELDS = ("requests", "errors", "p50_ms", "p95_ms", "p99_ms")


def _counts(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The numbers of a stage's summary (one level deep), without bulky lists."""
    counts: dict[str, Any] = {}
    for key, value in (summary or {}).items():
        if isinstance(value, bool) or key == "duration_s":
            continue
        if isinstance(value, (int, float)):
            counts[key] = value
        elif isinstance(value, dict):
            nested = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if nested:
                counts[key] = nested
    return counts


def stage_entry(stage: str, *, summary: Any, failure: Any, validation: Any) -> dict[str, Any]:
    if failure and not summary:
        status = "failed"
    elif validation is not None:
        status = "success" if validation["success"] else "failed"
    else:
        status = "skipped" if summary is None else "unvalidated"
    entry = {
        "name": stage,
        "status": status,
        "duration_s": (summary or failure or {}).get("duration_s"),
        "counts": _counts(summary),
        "validation": None,
    }
    if summary and "drills" in summary:
        # Fault drills: what was broken, for how long, what was retried, and the reconciliation, per drill.
        entry["drills"] = summary["drills"]
    if failure and not summary:
        entry["error"] = failure["error"]
    if validation is not None:
        entry["validation"] = {
            k: validation.get(k) for k in ("suite", "success", "evaluated", "unsuccessful", "failed_expectations")
        }
        entry["validation"]["duration_s"] = validation.get("duration_s")
    return entry


def build(run: JourneyRun, ti: Any, *, logical_date: Any) -> dict[str, Any]:
    stages = [
        stage_entry(
            stage,
            summary=pull(ti, f"{stage}.run"),
            failure=pull(ti, f"{stage}.run", key=FAILURE_KEY),
            validation=pull(ti, f"{stage}.validate", key=VALIDATION_KEY),
        )
        for stage in (ALL_STAGES if run.params.get("fault_drills") else STAGES)
    ]
    seeded = pull(ti, "seed_data.run") or {}
    trained = pull(ti, "train_model.run") or {}
    queried = pull(ti, "query_recommendations.run") or {}
    # What the checks could not see: derived ids, stand-in timestamps, a default type, a catalog without categories.
    notes = [f"{table}.{column}: {how}" for table, columns in (seeded.get("columns") or {}).items()
             for column, how in columns.items() if how.startswith("absent") and column not in DESCRIPTIVE]  # fmt: skip
    if queried.get("note"):
        notes.append(f"query_recommendations: {queried['note']}")
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "tenant": run.tenant,
        "run_key": run.run_key,
        "logical_date": logical_date.isoformat() if logical_date else None,
        "data_interval": [run.window_start.isoformat(), run.window_end.isoformat()],
        "success": all(s["status"] == "success" for s in stages),
        "failed_stage": next((s["name"] for s in stages if s["status"] == "failed"), None),
        "stages": stages,
        "input": {"mode": seeded.get("mode"), "columns": seeded.get("columns"), "categories": seeded.get("categories")},
        "rejections": seeded.get("rejections"),
        "notes": notes,
        "model": {
            "version": trained.get("version"),
            **{k: (trained.get("metrics") or {}).get(k) for k in MODEL_FIELDS},
            "gates": trained.get("gates"),
        },
        "recommendations": {k: queried.get(k) for k in RECOMMENDATION_FIELDS},
        "data_docs": None,
    }


def write(run: JourneyRun, report: dict[str, Any]) -> str:
    """Data Docs, report.json, the ``latest`` link, and a copy of both in the reports bucket."""
    from plugins.hooks.minio import MinioHook
    from plugins.validation import build_data_docs

    docs_dir = os.path.join(run.report_dir, "data_docs")
    if os.path.isdir(run.gx_dir):
        report["data_docs"] = build_data_docs(run.gx_dir, docs_dir)
    path = os.path.join(run.report_dir, "report.json")
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    latest = os.path.join(reports_root(), "latest")
    tmp_link = f"{latest}.tmp"
    if os.path.lexists(tmp_link):
        os.remove(tmp_link)
    os.symlink(run.report_dir, tmp_link)
    os.replace(tmp_link, latest)  # atomic: readers never see a missing link

    minio = MinioHook()
    prefix = f"{run.tenant}/{run.run_key}/{safe_name(run.run_id)}/"
    minio.put_file(bucket=REPORTS_BUCKET, key=prefix + "report.json", path=path, content_type="application/json")
    if report["data_docs"]:
        for root, _, files in os.walk(docs_dir):
            for name in files:
                local = os.path.join(root, name)
                key = prefix + "data_docs/" + os.path.relpath(local, docs_dir)
                minio.put_file(bucket=REPORTS_BUCKET, key=key, path=local, content_type=_content_type(name))
    return path


def _content_type(name: str) -> str:
    return {".html": "text/html", ".css": "text/css", ".js": "application/javascript", ".json": "application/json"}.get(
        os.path.splitext(name)[1], "application/octet-stream"
    )


def summary_table(report: dict[str, Any]) -> str:
    """The per-stage table `make demo` prints."""
    lines = [f"{'stage':<24}{'status':<12}{'seconds':>9}  {'expectations':>12}"]
    for stage in report["stages"]:
        validation = stage["validation"] or {}
        checked = f"{validation.get('evaluated', 0) - validation.get('unsuccessful', 0)}/{validation.get('evaluated', 0)}" if validation else "-"
        duration = stage["duration_s"]
        lines.append(f"{stage['name']:<24}{stage['status']:<12}{duration if duration is not None else '-':>9}  {checked:>12}")
    return "\n".join(lines)


def write_for_context(context: Any, *, tenant: str) -> str:
    """The report task's body: write everything, then fail the run if the tenant's journey did not pass."""
    from airflow.sdk.exceptions import AirflowFailException

    run = JourneyRun.from_context(context, tenant=tenant)
    report = build(run, context["ti"], logical_date=context.get("logical_date"))
    path = write(run, report)
    print(summary_table(report))
    print(f"report: {path}")
    if not report["success"]:
        # The report itself is the DAG's last task: without this the run would look green.
        raise AirflowFailException(f"{tenant}'s journey failed at {report['failed_stage']}; report at {path}")
    return path
