"""report: one report.json and one GX Data Docs site for every run, passed or failed, stored locally
(``<reports>/<run_id>/<tenant>/``) and in the reports bucket.

Every report also carries what the tenant's past says (plugins/journey/history.py): ``trend`` (today's figures
against the trailing baseline), ``drift`` (the upload against the previous one, from upload_to_minio's suite) and
``plots`` (the tenant's history as PNGs and an HTML index in ``history/`` beside report.json); the run's row in
the history store is written before the report, so the plots include the day.

Two kinds of link point at the newest reports: ``<reports>/latest/<tenant>`` at each tenant's, and
``<reports>/newest`` at the last one written for any tenant. Every writer replaces a link through a temporary
link of its own (``os.replace`` is atomic), so tenants finishing at once never fail and readers never find a
link missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any

from include.config import REPORTS_BUCKET, reports_root, safe_name
from plugins.journey import ALL_STAGES, DRILLS_STAGE, LOAD_STAGE, STAGES
from plugins.journey.history import PLOTS_DIR
from plugins.journey.run import JourneyRun
from plugins.journey.tasks import FAILURE_KEY, pull, task_states
from plugins.validation import VALIDATION_KEY

LATEST_DIR = "latest"
NEWEST_LINK = "newest"
DEPLOYMENT_FIELDS = ("role", "version", "live_version", "reason")
AGREEMENT_FIELDS = ("serving_agreement", "agreement_users", "agreement_disagreeing")

MODEL_FIELDS = (
    "ndcg_at_10",
    "recall_at_10",
    "popularity_ndcg_at_10",
    "popularity_recall_at_10",
    "knn_ndcg_at_10",
    "knn_recall_at_10",
    "ndcg_lift",
    "knn_ratio",
    "knn_ratio_ci_low",
    "knn_ratio_ci_high",
    "train_seconds",
    "epochs",
    "steps",
    "max_epochs",
    "early_stopping_epoch",
    "validation_ndcg_at_10",
    "stopped_by",
    "batch_size",
    "lr",
)
# The three models side by side: (row name, metrics prefix).
MODEL_ROWS = (("model", ""), ("item-kNN", "knn_"), ("popularity", "popularity_"))
# Per model: accuracy and the figures beyond it, all on the same holdout.
MODEL_COLUMNS = (
    "ndcg_at_10",
    "recall_at_10",
    "coverage_at_10",
    "popularity_bias",
    "exposure_gini",
    "cold_start_ndcg_at_10",
)
# Catalog fields nothing downstream depends on: their absence is in the report's input section, not its notes.
DESCRIPTIVE = ("title", "price", "image_url")
RECOMMENDATION_FIELDS = ("requests", "errors", "p50_ms", "p95_ms", "p99_ms", "fallback", "probes")
REPORT_FILE = "report.json"
DATA_DOCS_DIR = "data_docs"


def bucket_prefix(*, tenant: str, run_key: str, run_id: str) -> str:
    """Where one run's report and Data Docs live in the reports bucket (plugins/hooks/reports.py reads them)."""
    return f"{tenant}/{run_key}/{safe_name(run_id)}/"


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


def stage_entry(stage: str, *, summary: Any, failure: Any, validation: Any, state: str | None = None) -> dict[str, Any]:
    """``state`` is the stage's run task's Airflow state: a stage that never ran says why, in the UI's words
    (``upstream_failed`` below a failed stage, ``skipped`` for the fault drills when not asked for)."""
    if failure and not summary:
        status = "failed"
    elif validation is not None:
        status = "success" if validation["success"] else "failed"
    elif summary is None:
        status = state if state in ("upstream_failed", "skipped") else "skipped"
    else:
        status = "unvalidated"
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


LOAD_FIELDS = (
    "mode",
    "requests",
    "rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "error_rate",
    "errors",
    "errors_by_status",
    "cache_hit_rate",
    "filtered",
    "unfiltered",
    "users",
    "think_s",
    "plan",
    "profile",
    "knee",
    "knee_reached",
    "beyond_knee",
    "steps",
    "rss",
)


def load_section(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The k6 load test's figures (None when it did not run): percentiles, throughput, errors by status, cache
    hit rate; a stress run's steps and knee; a soak's RSS growth."""
    if not summary:
        return None
    return {k: summary[k] for k in LOAD_FIELDS if k in summary}


def _pull_if(ti: Any, states: dict[str, str], task_id: str, when: tuple[str, ...], *, key: str = "return_value") -> Any:
    """The XCom, if the task's state says it was written (a successful run's return value, a failure, a validation)."""
    return pull(ti, task_id, key=key) if states.get(task_id) in when else None


def build(run: JourneyRun, ti: Any, *, logical_date: Any) -> dict[str, Any]:
    states = task_states(ti)
    from plugins.journey.load_test import mode as load_mode

    asked = {LOAD_STAGE: load_mode(run.params) is not None, DRILLS_STAGE: bool(run.params.get("fault_drills"))}
    names = [stage for stage in ALL_STAGES if stage in STAGES or asked[stage]]
    summaries = {stage: _pull_if(ti, states, f"{stage}.run", ("success",)) for stage in names}
    stages = [
        stage_entry(
            stage,
            summary=summaries[stage],
            failure=_pull_if(ti, states, f"{stage}.run", ("failed",), key=FAILURE_KEY),
            validation=_pull_if(ti, states, f"{stage}.validate", ("success", "failed"), key=VALIDATION_KEY),
            state=states.get(f"{stage}.run"),
        )
        for stage in names
    ]
    seeded = summaries["seed_data"] or {}
    trained = summaries["train_model"] or {}
    queried = summaries["query_recommendations"] or {}
    deployed = summaries["deploy_model"] or {}
    cleaned = _pull_if(ti, states, "cleanup", ("success",)) or {"status": states.get("cleanup")}
    # What the checks could not see: derived ids, stand-in timestamps, a default type, a catalog without categories.
    notes = [
        f"{table}.{column}: {how}"
        for table, columns in (seeded.get("columns") or {}).items()
        for column, how in columns.items()
        if how.startswith("absent") and column not in DESCRIPTIVE
    ]
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
        # The quarantined rows' objects (key, sha256, rows) per table, so the report page can link them.
        "quarantine": seeded.get("quarantined"),
        "notes": notes,
        "model": {
            "version": trained.get("version"),
            **{k: (trained.get("metrics") or {}).get(k) for k in MODEL_FIELDS},
            "gates": trained.get("gates"),
            # deploy_model's training/serving agreement: the served top 10 against the registered embeddings'.
            **{k: deployed.get(k) for k in AGREEMENT_FIELDS},
            **model_section(trained),
        },
        "recommendations": {k: queried.get(k) for k in RECOMMENDATION_FIELDS},
        "load": load_section(summaries.get(LOAD_STAGE)),
        # Live, or validated as a candidate behind a newer live model, and why.
        "deployment": {k: deployed.get(k) for k in DEPLOYMENT_FIELDS},
        "cleanup": cleaned,
        # The upload's objects and their SHA-256: the history keeps them, the next day's drift check reads them.
        "checksums": {
            name: {k: o.get(k) for k in ("key", "sha256", "rows")}
            for name, o in ((summaries["upload_to_minio"] or {}).get("objects") or {}).items()
        }
        or None,
        "drift": _drift(run),
        "trend": None,
        "plots": None,
        "data_docs": None,
    }


def _drift(run: JourneyRun) -> dict[str, Any] | None:
    """What upload_to_minio's suite found against the previous upload (None when that stage did not validate)."""
    from plugins.journey.upload_to_minio import drift_path

    try:
        with open(drift_path(run)) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def write(run: JourneyRun, report: dict[str, Any]) -> str:
    """Data Docs, report.json, the latest links, and a copy of both in the reports bucket."""
    from plugins.hooks.minio import MinioHook
    from plugins.validation import build_data_docs

    docs_dir = os.path.join(run.report_dir, DATA_DOCS_DIR)
    if os.path.isdir(run.gx_dir):
        report["data_docs"] = build_data_docs(run.gx_dir, docs_dir)
    path = os.path.join(run.report_dir, REPORT_FILE)
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    link_latest(report_dir=run.report_dir, tenant=run.tenant)

    minio = MinioHook()
    prefix = bucket_prefix(tenant=run.tenant, run_key=run.run_key, run_id=run.run_id)
    minio.put_file(bucket=REPORTS_BUCKET, key=prefix + REPORT_FILE, path=path, content_type="application/json")
    for name, directory in ((DATA_DOCS_DIR, docs_dir), (PLOTS_DIR, os.path.join(run.report_dir, PLOTS_DIR))):
        if name == DATA_DOCS_DIR and not report["data_docs"]:
            continue
        for root, _, files in os.walk(directory):
            for file_name in files:
                local = os.path.join(root, file_name)
                key = prefix + f"{name}/" + os.path.relpath(local, directory)
                minio.put_file(bucket=REPORTS_BUCKET, key=key, path=local, content_type=content_type(file_name))
    return path


def replace_link(link: str, target: str) -> None:
    """Point ``link`` at ``target`` atomically. The temporary link is this writer's own (pid and a random
    suffix): a name shared by writers is what one removes while another renames it."""
    tmp = f"{link}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    os.symlink(os.path.relpath(target, os.path.dirname(link)), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def link_latest(*, report_dir: str, tenant: str, root: str | None = None) -> None:
    """``latest/<tenant>`` and ``newest`` -> ``report_dir``."""
    root = root or reports_root()
    latest = os.path.join(root, LATEST_DIR)
    if os.path.islink(latest):
        # Earlier versions kept one ``latest`` link here; it becomes the directory of per-tenant links.
        # Another writer may have replaced it already: then there is nothing (or a directory) to remove.
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.remove(latest)
    os.makedirs(latest, exist_ok=True)
    replace_link(os.path.join(latest, tenant), report_dir)
    replace_link(os.path.join(root, NEWEST_LINK), report_dir)


def content_type(name: str) -> str:
    """The Content-Type a Data Docs file is stored and served with."""
    types = {
        ".html": "text/html",
        ".css": "text/css",
        ".js": "application/javascript",
        ".json": "application/json",
        ".png": "image/png",
        ".svg": "image/svg+xml",
        ".ico": "image/x-icon",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".csv": "text/csv",
    }
    return types.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def model_section(trained: dict[str, Any]) -> dict[str, Any]:
    """The three models on the same split, each gate with its observed figure, the protocol, and the tenant's
    previous model version's figures (as the platform recorded them) beside this one's."""
    from plugins.journey.train_model import gate_table

    metrics = trained.get("metrics") or {}
    if not metrics:
        return {}
    previous = trained.get("previous") or {}
    return {
        "models": {name: {c: metrics.get(prefix + c) for c in MODEL_COLUMNS} for name, prefix in MODEL_ROWS},
        "cold_start_users": metrics.get("cold_start_users"),
        "gate_results": gate_table(metrics, trained.get("gates") or {}),
        "protocol": trained.get("protocol"),
        "previous_version": {
            "version": previous.get("version"),
            **{c: (previous.get("metrics") or {}).get(c) for c in MODEL_COLUMNS},
        }
        if previous
        else None,
    }


def model_table(model: dict[str, Any]) -> str:
    """Model, item-kNN and popularity (and the previous version) as the small table `make demo` prints."""
    header = ["NDCG@10", "Recall@10", "cov@10", "pop.bias", "gini", "cold NDCG"]
    lines = [f"{'':<22}" + "".join(f"{h:>11}" for h in header)]
    rows = list((model.get("models") or {}).items())
    if model.get("previous_version"):
        rows.append((f"previous {model['previous_version']['version']}"[:21], model["previous_version"]))
    for name, figures in rows:
        cells = (figures.get(c) for c in MODEL_COLUMNS)
        lines.append(
            f"{name:<22}" + "".join(f"{v:>11.3f}" if isinstance(v, (int, float)) else f"{'-':>11}" for v in cells)
        )
    return "\n".join(lines)


def summary_table(report: dict[str, Any]) -> str:
    """The per-stage table `make demo` prints."""
    lines = [f"{'stage':<24}{'status':<12}{'seconds':>9}  {'expectations':>12}"]
    for stage in report["stages"]:
        validation = stage["validation"] or {}
        checked = (
            f"{validation.get('evaluated', 0) - validation.get('unsuccessful', 0)}/{validation.get('evaluated', 0)}"
            if validation
            else "-"
        )
        duration = stage["duration_s"]
        lines.append(
            f"{stage['name']:<24}{stage['status']:<12}{duration if duration is not None else '-':>9}  {checked:>12}"
        )
    return "\n".join(lines)


def write_for_context(context: Any, *, tenant: str) -> str:
    """The report task's body: compare with the tenant's history and record the day, write everything, then fail
    the run if the tenant's journey did not pass (or regressed, under regression_policy=fail)."""
    from airflow.sdk.exceptions import AirflowFailException

    from plugins import alerts
    from plugins.journey import history, trend

    run = JourneyRun.from_context(context, tenant=tenant)
    report = build(run, context["ti"], logical_date=context.get("logical_date"))
    run_type = context["dag_run"].run_type
    try:
        regressions, history_error = (
            history.record(run, report, run_type=str(getattr(run_type, "value", run_type))),
            None,
        )
    except Exception as exc:  # the report is written for every run, even when the history store is down
        regressions, history_error = [], f"{type(exc).__name__}: {exc}"[:1000]
        report["history_error"] = history_error
    path = write(run, report)
    print(summary_table(report))
    for line in trend.trend_lines(report["trend"]):
        print(f"trend: {line}")
    if report["deployment"]["reason"]:
        print(f"model {report['deployment']['version']}: {report['deployment']['reason']}")
    print(f"report: {path}")
    if regressions:
        message = f"{tenant}'s figures regressed against the trailing baseline: " + "; ".join(regressions)
        if report["failed_stage"] == history.TREND_STAGE:
            raise AirflowFailException(f"{message}; report at {path}")  # the failure callback alerts
        alerts.on_warning(context, message=f"{message}; report at {path}", kind="regression")
    if not report["success"]:
        # The report itself is the DAG's last task: without this the run would look green.
        raise AirflowFailException(f"{tenant}'s journey failed at {report['failed_stage']}; report at {path}")
    if history_error:
        # Not an AirflowFailException: an unreachable history store is worth the task's retry.
        raise RuntimeError(f"the run history could not be recorded for {tenant} ({history_error}); report at {path}")
    return path
