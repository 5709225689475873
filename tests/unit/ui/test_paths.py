"""Path parameters of the Journey UI: what a run id, a tenant and a Data Docs file may be."""

from __future__ import annotations

import pytest

from plugins.ui import paths


@pytest.mark.parametrize(
    "value", ["manual__2026-11-28T04:10:30.951393+00:00", "scheduled__2026-11-27T00:00:00+00:00", "backfill__x.y~z"]
)
def test_airflow_run_ids_are_accepted(value):
    assert paths.run_id(value) == value


@pytest.mark.parametrize("value", ["..", ".", "a/b", "a\\b", "run id", "", "x" * 251, "%2e%2e", "a\x00b"])
def test_run_ids_that_could_leave_the_prefix_are_refused(value):
    with pytest.raises(paths.InvalidPath, match="run id must match"):
        paths.run_id(value)


@pytest.mark.parametrize("value", ["Acme", "a", "../acme", "acme/x", "-acme"])
def test_tenants_must_be_slugs(value):
    with pytest.raises(paths.InvalidPath, match="tenant must match"):
        paths.tenant(value)


@pytest.mark.parametrize(
    "value",
    [
        "index.html",
        "validations/seed_data.items/manual__2026-11-28T04_10_30/20261128T041030.951393Z/abc123.html",
        "static/styles/data_docs_custom_styles_template.css",
    ],
)
def test_data_docs_files_are_accepted(value):
    assert paths.docs_file(value) == value


def test_an_empty_docs_path_is_the_index():
    assert paths.docs_file("") == "index.html"


@pytest.mark.parametrize(
    "value",
    [
        "../report.json",
        "a/../../b",
        "./index.html",
        "%2e%2e/report.json",
        "%252e%252e/x",
        "a//b",
        "/etc/passwd",
        "a\\..\\b",
        "..%2f..%2fsecrets",
    ],
)
def test_docs_paths_that_leave_the_site_are_refused_however_encoded(value):
    with pytest.raises(paths.InvalidPath, match="none '.' or '..'"):
        paths.docs_file(value)
