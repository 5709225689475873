"""The deploy transaction's refusal rule, without a database: protect_newer_live keeps a newer or undated live
model in front of an older one (tests/integration/test_recsys_api.py proves the same through the API)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.recsys.api.deploys import refuse_candidate_of_live, refuse_older
from include.recsys.api.errors import ApiError

NOV_10, NOV_11 = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC)


def live(version: str, logical_date: datetime | None) -> dict:
    return {"id": "d1", "version": version, "logical_date": logical_date}


@pytest.mark.parametrize(
    ("current", "version", "logical_date"),
    [
        (None, "v1", None),  # nothing live yet
        (live("v1", NOV_10), "v2", NOV_11),  # a newer day replaces an older one
        (live("v1", NOV_10), "v2", NOV_10),  # the same day again (a rerun) replaces it too
        (live("v1", None), "v1", None),  # the live version itself, redeployed, replaces nothing
    ],
)
def test_a_newer_or_equal_model_or_the_live_version_itself_may_deploy(current, version, logical_date):
    refuse_older(current, version=version, logical_date=logical_date)  # raises nothing


def test_an_older_model_is_refused_naming_both_dates():
    with pytest.raises(ApiError) as refused:
        refuse_older(live("v2", NOV_11), version="v1", logical_date=NOV_10)
    assert (refused.value.status, refused.value.code) == (409, "live_model_newer")
    assert refused.value.extra == {"live_version": "v2", "live_logical_date": NOV_11.isoformat()}
    assert NOV_11.isoformat() in refused.value.message and NOV_10.isoformat() in refused.value.message


def test_an_undated_model_cannot_replace_a_dated_one():
    with pytest.raises(ApiError) as refused:
        refuse_older(live("v2", NOV_11), version="v1", logical_date=None)
    assert refused.value.code == "live_model_newer" and "(no logical date)" in refused.value.message


def test_an_undated_live_model_stays_because_nobody_can_tell_which_is_newer():
    with pytest.raises(ApiError) as refused:
        refuse_older(live("v2", None), version="v3", logical_date=NOV_11)
    assert (refused.value.status, refused.value.code) == (409, "live_model_undated")
    assert refused.value.extra == {"live_version": "v2", "live_logical_date": None}


def test_the_live_version_cannot_also_be_a_candidate():
    refuse_candidate_of_live(live("v1", NOV_10), version="v2", tenant_slug="acme")
    refuse_candidate_of_live(None, version="v2", tenant_slug="acme")
    with pytest.raises(ApiError) as refused:
        refuse_candidate_of_live(live("v2", NOV_10), version="v2", tenant_slug="acme")
    assert (refused.value.status, refused.value.code) == (409, "version_is_live")
