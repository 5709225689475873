"""The Journey UI's HTML: plain server-rendered pages of what report.json holds, every value escaped.

Pages link with absolute paths under the app's mount point (``root``, e.g. ``/journey``), which the app takes
from the request, so they work under any ``[api] base_url`` path and inside the Airflow UI's iframe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from plugins.journey.pages import run_path
from plugins.journey.rejections import SOURCE_ROW
from plugins.validation import describe_failure

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2rem;color:#1b1f24;background:#fff}
h1{font-size:1.35rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;margin:.3rem 0 1rem;font-size:.9rem}th,td{border:1px solid #d0d7de;padding:.3rem .55rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.success,.passed{color:#1a7f37;font-weight:600}.failed{color:#cf222e;font-weight:600}.muted{color:#656d76}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}pre{white-space:pre-wrap}
nav a{margin-right:1rem}img.plot{max-width:100%;border:1px solid #d0d7de;margin:.4rem 0}
"""


def _e(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value, default=str))
    return escape(str(value))


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    return escape(f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _status(status: Any) -> str:
    return f'<span class="{escape(str(status))}">{_e(status)}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(*, title: str, root: str, body: str) -> str:
    nav = f'<nav><a href="{escape(root)}/">All journeys</a></nav>'
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )


def _href(root: str, run_id: str, tenant: str | None = None, suffix: str = "") -> str:
    # run_path starts with the plugin's own prefix; the request's mount point replaces it.
    path = run_path(run_id, tenant).split("/", 2)[2]
    return escape(f"{root}/{path}{suffix}")


def run_type(run_id: str) -> str:
    return run_id.split("__", 1)[0] if "__" in run_id else "-"


def _runs_table(reports: Sequence[Mapping[str, Any]], *, root: str) -> str:
    if not reports:
        return "<p>No journey has written a report yet.</p>"
    rows = []
    for r in reports:
        model, recs = r.get("model") or {}, r.get("recommendations") or {}
        rows.append(
            [
                _e((r.get("logical_date") or "")[:10] or None),
                f'<a href="{escape(root)}/tenants/{quote(r["tenant"], safe="")}">{_e(r["tenant"])}</a>',
                f'<a href="{_href(root, r["run_id"], r["tenant"])}">{_e(r["run_id"])}</a>',
                _e(run_type(r["run_id"])),
                _status("passed" if r.get("success") else "failed"),
                _e(r.get("failed_stage")),
                _num(model.get("ndcg_at_10")),
                _num(recs.get("p95_ms"), 2),
                _e(r.get("written")),
            ]
        )
    headers = ("date", "tenant", "run", "run type", "result", "failed stage", "NDCG@10", "p95 ms", "report written")
    return _table(headers, rows, numeric=(6, 7))


def index(reports: Sequence[Mapping[str, Any]], *, root: str) -> str:
    return page(title="Journeys", root=root, body=_runs_table(reports, root=root))


def run_tenants(run_id: str, tenants: Sequence[str], *, root: str) -> str:
    if not tenants:
        body = "<p>This run has written no report yet (its report task writes one when the journey ends).</p>"
    else:
        items = "".join(f'<li><a href="{_href(root, run_id, t)}">{_e(t)}</a></li>' for t in tenants)
        body = f"<p>Tenants validated in this run:</p><ul>{items}</ul>"
    return page(title=f"Run {run_id}", root=root, body=body)


def _stages(report: Mapping[str, Any]) -> str:
    rows = []
    for stage in report.get("stages") or []:
        validation = stage.get("validation") or {}
        checked = (
            f"{validation['evaluated'] - validation['unsuccessful']}/{validation['evaluated']}" if validation else "-"
        )
        counts = stage.get("counts") or {}
        rows.append(
            [
                _e(stage["name"]),
                _status(stage["status"]),
                _num(stage.get("duration_s")),
                escape(checked),
                "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in counts.items()) or "-",
                _e(stage.get("error")),
            ]
        )
    return "<h2>Stages</h2>" + _table(
        ("stage", "status", "seconds", "expectations", "counts", "error"), rows, numeric=(2, 3)
    )


def _failures(report: Mapping[str, Any]) -> str:
    rows = []
    for stage in report.get("stages") or []:
        for failure in (stage.get("validation") or {}).get("failed_expectations") or []:
            where = failure.get("batch", "") + (f"[{failure['column']}]" if failure.get("column") else "")
            kwargs = ", ".join(f"{k}={v}" for k, v in (failure.get("kwargs") or {}).items())
            observed = failure.get("observed_value")
            if observed is None and failure.get("unexpected_count") is not None:
                observed = f"{failure['unexpected_count']} unexpected, e.g. {failure.get('partial_unexpected_list')}"
            rows.append(
                [
                    _e(stage["name"]),
                    _e(where),
                    f"<code>{_e(failure['expectation_type'])}</code>",
                    _e(kwargs),
                    f'<span class="observed">{_e(observed)}</span>',
                    _e(describe_failure(failure)),
                ]
            )
    if not rows:
        return ""
    headers = ("stage", "batch[column]", "expectation", "expected", "observed value", "as the task log says it")
    return '<h2 class="failed">Failed expectations</h2>' + _table(headers, rows)


def _rejections(report: Mapping[str, Any], *, root: str) -> str:
    rejections = report.get("rejections") or {}
    quarantine = report.get("quarantine") or {}
    rows = []
    for table, summary in rejections.items():
        if not summary.get("rejected"):
            continue
        link = "-"
        if table in quarantine:
            href = _href(root, report["run_id"], report["tenant"], f"/quarantine/{quote(table, safe='')}")
            link = f'<a href="{href}">{_e(quarantine[table]["key"])}</a>'
        for entry in summary.get("reasons") or []:
            example = {k: v for k, v in (entry.get("example") or {}).items() if v != ""}
            where = f"row {example.pop(SOURCE_ROW)}: " if SOURCE_ROW in example else ""
            example.pop("reason", None)
            rows.append([_e(table), _e(entry["reason"]), _num(entry["count"]), _e(where + json.dumps(example)), link])
    if not rows:
        return "<h2>Quarantine</h2><p>No input row was rejected.</p>"
    return "<h2>Quarantine</h2>" + _table(
        ("table", "reason", "rows", "example", "quarantine object"), rows, numeric=(2,)
    )


def _model(report: Mapping[str, Any]) -> str:
    model = report.get("model") or {}
    if not model.get("version"):
        return ""
    fields = [(k, _num(v)) for k, v in model.items() if k not in ("gates", "version")]
    gates = ", ".join(f"{k} {v}" for k, v in (model.get("gates") or {}).items())
    rows = [["version", _e(model["version"])], *[[_e(k), v] for k, v in fields], ["gates", _e(gates or None)]]
    deployment = report.get("deployment") or {}
    if deployment.get("reason"):
        rows.append(["deployment", _e(deployment["reason"])])
    return "<h2>Model</h2>" + _table(("metric", "value"), rows)


def _recommendations(report: Mapping[str, Any]) -> str:
    recs = report.get("recommendations") or {}
    if not recs.get("requests"):
        return ""
    latency = [
        [_e(k), _num(recs.get(k), 2)]
        for k in ("requests", "errors", "fallback", "p50_ms", "p95_ms", "p99_ms")
        if k in recs
    ]
    probes = [[_e(name), _e(got)] for name, got in (recs.get("probes") or {}).items()]
    return (
        "<h2>Recommendations</h2>"
        + _table(("figure", "value"), latency)
        + (_table(("probe", "status answered"), probes) if probes else "")
    )


def _drills(report: Mapping[str, Any]) -> str:
    rows = []
    for stage in report.get("stages") or []:
        for drill in stage.get("drills") or []:
            rows.append(
                [
                    _e(drill.get("name") or drill.get("drill")),
                    f"<pre>{_e(json.dumps(drill, indent=1, default=str))}</pre>",
                ]
            )
    return "<h2>Fault drills</h2>" + _table(("drill", "what happened"), rows) if rows else ""


def report_page(report: Mapping[str, Any], *, root: str) -> str:
    run_id, tenant = report["run_id"], report["tenant"]
    verdict = "passed" if report.get("success") else "failed"
    interval = " to ".join(report.get("data_interval") or []) or "-"
    docs = _href(root, run_id, tenant, "/data_docs/index.html") if report.get("data_docs") else None
    summary = (
        f"<p>Result: {_status(verdict)}"
        + (f" at <b>{_e(report['failed_stage'])}</b>" if report.get("failed_stage") else "")
        + f" &middot; logical date {_e(report.get('logical_date'))} &middot; data interval {_e(interval)}"
        + f" &middot; run key <code>{_e(report.get('run_key'))}</code></p>"
        + (
            f'<p><a href="{docs}">GX Data Docs of this run</a> &middot; '
            if docs
            else "<p>No Data Docs were built. &middot; "
        )
        + f'<a href="{escape(root)}/tenants/{quote(tenant, safe="")}">{_e(tenant)}\'s history</a></p>'
    )
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.get("notes") or [])
    body = (
        summary
        + _failures(report)
        + _stages(report)
        + _rejections(report, root=root)
        + _model(report)
        + _recommendations(report)
        + _drills(report)
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
    )
    return page(title=f"{tenant}: {run_id} ({verdict})", root=root, body=body)


def tenant_page(tenant: str, reports: Sequence[Mapping[str, Any]], plots: Sequence[str], *, root: str) -> str:
    if plots:
        history = "".join(
            f'<img class="plot" alt="{_e(p)}" src="{escape(root)}/tenants/{quote(tenant, safe="")}/plots/{quote(p, safe="")}">'
            for p in plots
        )
    else:
        history = f"<p>No history yet: no run has recorded {_e(tenant)}'s figures across days.</p>"
    body = "<h2>History</h2>" + history + "<h2>Recent runs</h2>" + _runs_table(reports, root=root)
    return page(title=f"Tenant {tenant}", root=root, body=body)


def not_found(message: str, *, root: str) -> str:
    return page(title="Not found", root=root, body=f"<p>{_e(message)}</p>")
