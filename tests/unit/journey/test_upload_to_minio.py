"""upload_to_minio's pure logic: the row accounting (clean + quarantined == every input row) its suite checks."""

from __future__ import annotations

import pandas as pd
import pytest

from plugins.journey.upload_to_minio import accounting_row
from plugins.validation import validate_stage
from tests.unit.stage_inputs import INPUTS


def test_every_input_row_is_accounted_for_as_good_or_quarantined():
    row = accounting_row(name="interactions", clean=95, rejected=5, read_back=95, quarantined=5, max_bad_share=0.1)
    assert row == {
        "name": "interactions",
        "rows_total": 100,
        "rows_good": 95,
        "rows_quarantined": 5,
        "bad_share": 0.05,
        "max_bad_share": 0.1,
    }


def test_an_empty_table_has_no_bad_share():
    assert (
        accounting_row(name="items", clean=0, rejected=0, read_back=0, quarantined=0, max_bad_share=0.0)["bad_share"]
        == 0.0
    )


def test_the_bad_share_counts_what_quarantine_holds_not_what_seed_data_meant_to_reject():
    # seed_data rejected 10 rows but only 4 reached quarantine: the share and the total tell them apart.
    row = accounting_row(name="items", clean=90, rejected=10, read_back=90, quarantined=4, max_bad_share=0.0)
    assert row["rows_total"] == 100 and row["rows_good"] + row["rows_quarantined"] == 94
    assert row["bad_share"] == pytest.approx(0.04)


def test_a_lost_row_fails_the_suite_s_accounting(tmp_path):
    frames, params = INPUTS["upload_to_minio"]()
    lost = accounting_row(name="items", clean=200, rejected=0, read_back=199, quarantined=0, max_bad_share=0.0)
    accounting = frames["rows_accounting"]
    frames = {**frames, "rows_accounting": pd.concat([accounting[accounting["name"] != "items"], pd.DataFrame([lost])])}
    result = validate_stage("upload_to_minio", frames, parameters=params, results_dir=tmp_path, run_name="t")
    assert not result.success
    assert any(f["batch"] == "rows_accounting" for f in result.failed_expectations)
