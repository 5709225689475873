"""`make demo`: run the whole onboarding journey once on the local stack and print what it proved.

Runs ``airflow dags test onboarding_journey <date>`` (a real Airflow run, in one process). Airflow's own log
(hundreds of lines) goes to a file whose path is printed first; the terminal gets one progress line per stage as
it finishes (name, status, seconds, expectations), then the per-stage table, the figures and the report page URL
from the run's report.json. Extra DAG params may be passed as JSON:
``python -m include.demo --date 2026-11-20 --conf '{"tenant": "acme"}'``. A run validates every tenant in
``tenants`` (default: the canaries in include/config.py) and prints one table per tenant.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime

from include.config import local_dir, reports_root
from plugins.journey.pages import report_url
from plugins.journey.rejections import describe
from plugins.journey.report import NEWEST_LINK, model_table, summary_table
from plugins.journey.tasks import PROGRESS
from plugins.journey.trend import trend_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default=date.today().isoformat(), help="logical date (YYYY-MM-DD), default today")
    parser.add_argument("--conf", default="{}", help="DAG params as JSON")
    args = parser.parse_args(argv)
    json.loads(args.conf)  # fail here, clearly, rather than inside Airflow

    newest = os.path.join(reports_root(), NEWEST_LINK)
    before = os.path.realpath(newest) if os.path.lexists(newest) else None
    log_path = os.path.join(local_dir(), "logs", f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    print(f"onboarding_journey for {args.date}: Airflow's full log in {log_path}")
    returncode = run_airflow(["dags", "test", "onboarding_journey", args.date, "-c", args.conf], log_path=log_path)
    if not os.path.lexists(newest) or os.path.realpath(newest) == before:
        # Never a success: a run that wrote no report validated nothing.
        print(
            f"FAILED: the journey for {args.date} wrote no report (airflow exited {returncode}), so nothing"
            f" was validated; see {log_path} for the task that did not run",
            file=sys.stderr,
        )
        return returncode or 1
    # newest points at one tenant's report; the run validated every tenant whose directory sits beside it.
    run_dir = os.path.dirname(os.path.realpath(newest))
    reports = []
    for report_path in sorted(glob.glob(os.path.join(run_dir, "*", "report.json"))):
        with open(report_path) as fh:
            reports.append(json.load(fh))
        _print_report(reports[-1], report_path)
    return 0 if all(report["success"] for report in reports) else 1


def run_airflow(argv: list[str], *, log_path: str) -> int:
    """Run an airflow command with its output in ``log_path``, printing only the stages' progress lines."""
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [airflow, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        for line in process.stdout:
            log.write(line)
            progress = PROGRESS.match(line.rstrip("\n"))
            if progress:
                print(progress_text(progress), flush=True)
        return process.wait()


def progress_text(progress) -> str:
    checked = (
        f"{int(progress['evaluated']) - int(progress['unsuccessful'])}/{progress['evaluated']} expectations"
        if progress["evaluated"]
        else (progress["rest"] or "")[:120]
    )
    return f"  {progress['stage']:<22} {progress['tenant']:<12} {progress['status']:<8} {float(progress['seconds']):>7.2f} s  {checked}"


def _print_report(report: dict, report_path: str) -> None:
    print()
    print(
        f"onboarding_journey for tenant {report['tenant']} ({report['run_key']}): {'PASSED' if report['success'] else 'FAILED'}"
    )
    print(summary_table(report))
    model, recs = report["model"], report["recommendations"]
    for line in describe(report.get("rejections") or {}):
        print(f"rejected: {line}")
    for note in report.get("notes") or []:
        print(f"note: {note}")
    if model.get("ndcg_at_10") is not None:
        gates = model.get("gates") or {}
        threshold = gates.get("ndcg_threshold")
        print(
            f"model {model['version']}: NDCG@10 {model['ndcg_at_10']:.3f} (popularity {model['popularity_ndcg_at_10']:.3f},"
            f" lift {model['ndcg_lift']:.2f}x; item-kNN {model['knn_ndcg_at_10']:.3f}, ratio {model['knn_ratio']:.2f}, 95% interval up to {model['knn_ratio_ci_high']:.2f}), Recall@10 {model['recall_at_10']:.3f}, trained in {model['train_seconds']:.1f} s;"
            f" gates: NDCG@10 >= {threshold if threshold is not None else 'none'}, lift >= {gates.get('min_lift')},"
            f" item-kNN ratio >= {gates.get('min_ratio_over_knn')} (top of its 95% interval)"
        )
        print(model_table(model))
        if model.get("epochs") is not None:
            print(
                f"training: {model['epochs']:g} epochs ({model['steps']:.0f} steps, batch {model['batch_size']:.0f}), kept epoch"
                f" {model['early_stopping_epoch'] or 0:g} (validation NDCG@10 {model['validation_ndcg_at_10'] or 0:.3f}),"
                f" stopped by {model['stopped_by']}"
            )
    if recs.get("requests"):
        print(
            f"recommendations: {recs['requests']} requests, {recs['errors']} errors, p50 {recs['p50_ms']} ms, p95 {recs['p95_ms']} ms"
        )
    load = report.get("load") or {}
    if load.get("requests"):
        hit = load.get("cache_hit_rate")
        print(
            f"load ({load['mode']}, k6): {load['requests']} requests, {load['rps']} req/s, p95 {load['p95_ms']} ms,"
            f" p99 {load['p99_ms']} ms, error rate {load['error_rate']:.2%} {load['errors_by_status'] or ''},"
            f" cache hit rate {'-' if hit is None else f'{hit:.1%}'}"
        )
    if load.get("knee"):
        print(f"stress knee: {load['knee']['vus']} VUs, {load['knee']['rps']} req/s (p95 {load['knee']['p95_ms']} ms)")
    if (load.get("rss") or {}).get("growth") is not None:
        print(
            f"soak: API RSS {load['rss']['first_mb']} -> {load['rss']['last_mb']} MB, growth {load['rss']['growth']}x"
        )
    if (report.get("deployment") or {}).get("reason"):
        print(f"deployment: {report['deployment']['reason']}")
    # Only figures with a baseline: a tenant's first days have nothing to compare with.
    trend = report.get("trend") or {}
    for line in trend_lines(trend):
        print(f"trend: {line}")
    if trend.get("note"):
        print(f"trend: {trend['note']}")
    print(f"report: {report_path}")
    print(f"data docs: {report.get('data_docs')}")
    if report.get("plots"):
        print(f"history plots: {report['plots']['files']['index']}")
    print(f"report page: {report_url(report['run_id'], report['tenant'])}")


if __name__ == "__main__":
    sys.exit(main())
