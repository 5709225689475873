"""resilience's pure logic: a drill's reconciliation (expected vs landed, missing, duplicated), its named checks,
and the frames its suite checks. The drills themselves break the real stack (tests/integration/test_fault_drills.py)."""

from __future__ import annotations

import pandas as pd

from plugins.journey import resilience
from plugins.journey.resilience import DRILLS, drill_tenant, frames, outcome, reconciliation
from plugins.journey.run import JourneyRun
from tests.unit.stage_inputs import INPUTS


def test_reconciliation_counts_missing_and_duplicated_events():
    expected = pd.Series(["e1", "e2", "e3", "e4"])
    landed = pd.DataFrame({"event_id": ["e1", "e2", "e2", "e9"]})
    assert reconciliation(expected, landed) == {"expected": 4, "landed": 4, "missing": 2, "duplicates": 1}


def test_reconciliation_compares_ids_as_text():
    # The database may hand back ids of another type than the generator's: 7 and "7" are one event.
    assert reconciliation(pd.Series([7, 8]), pd.DataFrame({"event_id": ["7", "8"]}))["missing"] == 0


def test_a_check_s_outcome_names_drill_check_and_what_failed():
    assert outcome("api_down", "served_after", True) == {
        "drill": "api_down",
        "check": "served_after",
        "outcome": "api_down.served_after: ok",
    }
    assert outcome("api_down", "served_after", False, "HTTP 503")["outcome"] == "api_down.served_after: FAILED HTTP 503"


def test_frames_keep_the_suite_s_columns_of_each_drill():
    summary = {
        "drills": [
            {
                "drill": "api_down",
                "broken": "recsys-api",
                "outage_s": 3.0,
                "expected": 10,
                "landed": 10,
                "missing": 0,
                "duplicates": 0,
                "retried": 4,
            }
        ],
        "checks": [outcome("api_down", "served_after", True)],
    }
    found = frames(summary)
    assert found["drills"].columns.tolist() == [
        "drill",
        "broken",
        "outage_s",
        "expected",
        "landed",
        "missing",
        "duplicates",
    ]
    assert found["checks"]["outcome"].tolist() == ["api_down.served_after: ok"]
    assert set(found) == set(INPUTS["resilience"]()[0])  # the batches the suite expects


def test_the_drills_are_an_explicit_mapping_of_functions_of_the_module():
    assert list(DRILLS) == [
        "object_store_down_during_upload",
        "broker_down_during_feed",
        "worker_killed_mid_batch",
        "database_down_for_api",
        "api_down",
        "cache_down",
    ]
    assert all(getattr(resilience, name) is drill for name, drill in DRILLS.items())


def test_the_drills_tenant_is_a_valid_slug_for_any_tenant_name():
    from datetime import UTC, datetime

    def journey(tenant):
        day = datetime(2026, 1, 1, tzinfo=UTC)
        return JourneyRun(dag_id="d", run_id="r", tenant=tenant, window_start=day, window_end=day)

    assert drill_tenant(journey("acme")) == "acme-drills"
    assert len(drill_tenant(journey("a" * 63))) == 63
