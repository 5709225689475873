"""The Journey UI's pages say what report.json says: failed expectations with their observed values first,
quarantine counts linked to their objects, and nothing a report holds is ever rendered as markup."""

from __future__ import annotations

from plugins.ui import pages

RUN_ID = "manual__2026-11-20T00:00:00+00:00"


def failed_report() -> dict:
    return {
        "run_id": RUN_ID,
        "tenant": "acme",
        "run_key": "2026-11-20-abcd1234",
        "success": False,
        "failed_stage": "train_model",
        "logical_date": "2026-11-20T00:00:00+00:00",
        "data_interval": ["2026-11-20T00:00:00+00:00", "2026-11-21T00:00:00+00:00"],
        "data_docs": "/x/data_docs/index.html",
        "stages": [
            {
                "name": "seed_data",
                "status": "success",
                "duration_s": 1.2,
                "counts": {"counts": {"items": 200}},
                "validation": {
                    "suite": "seed_data",
                    "success": True,
                    "evaluated": 26,
                    "unsuccessful": 0,
                    "failed_expectations": [],
                },
            },
            {
                "name": "train_model",
                "status": "failed",
                "duration_s": 0.4,
                "counts": {},
                "validation": {
                    "suite": "train_model",
                    "success": False,
                    "evaluated": 9,
                    "unsuccessful": 1,
                    "failed_expectations": [
                        {
                            "batch": "metrics",
                            "expectation_type": "expect_column_min_to_be_between",
                            "column": "ndcg_at_10",
                            "kwargs": {"min_value": "$ndcg_threshold=0.99"},
                            "observed_value": 0.3121,
                        }
                    ],
                },
            },
            {"name": "deploy_model", "status": "upstream_failed", "duration_s": None, "counts": {}, "validation": None},
        ],
        "rejections": {
            "items": {
                "rows": 9,
                "rejected": 2,
                "more_reasons": 0,
                "reasons": [
                    {
                        "reason": "price must be a number",
                        "count": 2,
                        "example": {"source_row": "3", "item_id": "<script>x</script>", "price": "12,99"},
                    }
                ],
            }
        },
        "quarantine": {
            "items": {"key": "acme/2026-11-20-abcd1234/items.quarantine.csv", "sha256": "0" * 64, "rows": 2}
        },
        "model": {"version": "v20261120abcd1234", "ndcg_at_10": 0.3121, "gates": {"ndcg_threshold": 0.99}},
        "recommendations": {"requests": 40, "errors": 0, "p95_ms": 1.5, "probes": {"no_key": 401}},
        "notes": [],
    }


def test_a_failed_run_shows_the_failed_expectation_and_its_observed_value():
    html = pages.report_page(failed_report(), root="/journey")
    failed = html.index("Failed expectations")
    assert failed < html.index("<h2>Stages</h2>"), "the failure must be the first thing on the page"
    assert "expect_column_min_to_be_between" in html and "$ndcg_threshold=0.99" in html
    assert '<span class="observed">0.3121</span>' in html
    assert 'href="/journey/runs/manual__2026-11-20T00%3A00%3A00%2B00%3A00/acme/data_docs/index.html"' in html
    assert "upstream_failed" in html


def test_quarantine_counts_by_reason_link_the_object_and_escape_tenant_data():
    html = pages.report_page(failed_report(), root="/base/journey")
    assert "price must be a number" in html
    assert 'href="/base/journey/runs/manual__2026-11-20T00%3A00%3A00%2B00%3A00/acme/quarantine/items"' in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_a_passed_run_has_no_failure_section():
    report = failed_report() | {"success": True, "failed_stage": None}
    report["stages"] = report["stages"][:1]
    html = pages.report_page(report, root="/journey")
    assert "Failed expectations" not in html and 'class="passed">passed' in html


def test_index_lists_runs_with_their_verdict_and_figures():
    html = pages.index([failed_report() | {"written": "2026-11-20T01:00:00"}], root="/journey")
    assert ">train_model<" in html and ">failed<" in html and ">manual<" in html and ">0.312<" in html


def test_a_tenant_without_history_says_so():
    assert "No history yet" in pages.tenant_page("acme", [], [], root="/journey")
    assert 'src="/journey/tenants/acme/plots/calendar.png"' in pages.tenant_page(
        "acme", [], ["calendar.png"], root="/journey"
    )
