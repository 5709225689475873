"""The journey's fault drills, one by one, on the real local stack: each breaks a component for real and
must lose nothing. The database drill needs a served model: tests/dags/test_onboarding_journey.py runs it
(with all the others) through the DAG's resilience stage.

These stop and kill the stack's own processes and bring them back; nothing else may use the stack meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.usefixtures("stack_env")

DAY = datetime(2026, 11, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def drill():
    from include.stack.faults import LocalStackFaults
    from plugins.journey import resilience
    from plugins.journey.run import JourneyRun

    run = JourneyRun(
        dag_id="onboarding_journey",
        run_id="it-fault-drills",
        tenant="it-faults",
        window_start=DAY,
        window_end=DAY.replace(day=7),
        params={"seed": 42, "fault_drills": True},
    )
    ctx = resilience.context(run, journey_tenant_id=None)
    faults = LocalStackFaults()

    def run_drill(name: str) -> dict:
        record, checks = getattr(resilience, name)(run, faults, ctx)
        assert [c["outcome"] for c in checks if not c["outcome"].endswith(": ok")] == []
        assert record["outage_s"] > 0
        return record

    return run_drill


def test_upload_fails_cleanly_while_s3_is_down_and_completes_identically_after(drill):
    record = drill("object_store_down_during_upload")
    assert record["landed"] == record["expected"] == 1
    assert record["error"].startswith("MaxRetryError")  # urllib3 gave up: a transient error, retried by the task


def test_every_event_lands_exactly_once_through_a_broker_outage(drill):
    record = drill("broker_down_during_feed")
    assert record["retried"] > 0  # the outage really caught sends in flight
    assert record["acked"] == record["landed"] == record["expected"]
    assert record["missing"] == record["duplicates"] == record["failed_sends"] == 0


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(drill):
    record = drill("worker_killed_mid_batch")
    assert 0 < record["landed_at_kill"] < record["expected"]
    assert record["landed"] == record["expected"] and record["missing"] == record["duplicates"] == 0


def test_api_outage_is_named_and_a_tenant_without_a_model_gets_flagged_fallback(drill):
    from plugins.hooks.recsys_api import RecsysApiHook

    record = drill("api_down")
    assert f"recsys API unreachable at {RecsysApiHook().base_url}" in record["error"]
    assert record["landed"] == 1
