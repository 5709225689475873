"""query_recommendations' pure logic: the categories it probes, the users it samples, the count a correct
answer holds and the frames its suite checks."""

from __future__ import annotations

import pandas as pd
import pytest

from plugins.journey.query_recommendations import expected_count, frames, probe_categories, sample_users


def test_the_most_common_categories_of_any_taxonomy_come_first():
    catalog = pd.DataFrame(
        {"category": ["Comedy|Drama", "Drama", "Drama", "Film-Noir", "Comedy|Drama", "Drama", None, ""]}
    )
    assert probe_categories(catalog) == ["Drama", "Comedy|Drama", "Film-Noir"]
    assert probe_categories(catalog, limit=1) == ["Drama"]


def test_a_catalog_without_categories_has_no_probes():
    assert probe_categories(pd.DataFrame({"category": [None, None]})) == []
    assert probe_categories(pd.DataFrame({"category": pd.Series([], dtype=object)})) == []


CATALOG = pd.DataFrame(
    {
        "item_id": ["i1", "i2", "i3", "i4", "i5", "i6"],
        "category": ["audio", "audio", "audio", "video", "video", None],
    }
)


def test_expected_count_is_the_request_unless_the_user_has_seen_all_but_fewer_eligible_items():
    assert expected_count(requested=3, category=None, seen=set(), catalog=CATALOG) == 3
    # 3 audio items, 2 of them seen: one left to recommend.
    assert expected_count(requested=3, category="audio", seen={"i1", "i2", "i4"}, catalog=CATALOG) == 1
    # Everything seen: nothing is owed; a category nobody sells owes nothing either.
    assert expected_count(requested=10, category=None, seen=set(CATALOG["item_id"]), catalog=CATALOG) == 0
    assert expected_count(requested=10, category="books", seen=set(), catalog=CATALOG) == 0
    # Seen items of another category do not shrink this one.
    assert expected_count(requested=2, category="video", seen={"i1", "i2", "i3"}, catalog=CATALOG) == 2


def _request(request_id, user, category, items, *, status=200, count=3, latency=10.0):
    body = {"items": items, "model_version": "v1", "fallback": False} if status == 200 else {"error": "x"}
    return {
        "request_id": request_id,
        "user_id": user,
        "filter_category": category,
        "count_requested": count,
        "status": status,
        "latency_ms": latency,
        "body": body,
    }


def test_frames_lay_out_each_answer_with_the_catalog_s_categories_and_the_expected_counts():
    recorded = {
        "requests": [
            _request(
                "r1", "u1", None, [{"item_id": "i3", "score": 0.9}, {"item_id": "zz", "score": 0.5}], latency=10.0
            ),
            _request("r2", "u2", "audio", [{"item_id": "i4", "score": 0.8}], latency=30.0),
            _request("r3", "u2", None, [], status=500, latency=50.0),
        ],
        "probes": [{"probe": "401 without key", "expected_status": 401, "actual_status": 401}],
    }
    frames_ = frames(recorded, catalog=CATALOG, history={"u2": {"i1", "i2"}})
    recs = frames_["recommendations"]
    assert recs[["request_id", "rank", "item_id"]].values.tolist() == [
        ["r1", 1, "i3"],
        ["r1", 2, "zz"],
        ["r2", 1, "i4"],
    ]
    # The category is the catalog's, not the answer's: i4 is video, so the audio filter was not honoured.
    assert recs["category"].fillna("none").tolist() == ["audio", "none", "video"]
    assert recs["in_catalog"].tolist() == [True, False, True]
    assert recs["prev_score"].isna().tolist() == [True, False, True] and recs["prev_score"].iloc[1] == 0.9
    requests = frames_["requests"].set_index("request_id")
    # u2 has seen 2 of the 3 audio items: one is owed.
    assert requests["count_expected"].to_dict() == {"r1": 3, "r2": 1, "r3": 3}
    assert requests["count_returned"].to_dict() == {"r1": 2, "r2": 1, "r3": 0}
    assert requests["filtered"].tolist() == [False, True, False]
    assert pd.isna(requests.loc["r3", "model_version"]) and requests.loc["r1", "model_version"] == "v1"
    latency = frames_["latency"].iloc[0]
    assert latency["p50_ms"] == 30.0 and latency["error_rate"] == pytest.approx(1 / 3)
    assert frames_["probes"]["actual_status"].tolist() == [401]


def test_sample_users_is_deterministic_and_bounded():
    users = [f"u{i}" for i in range(30)] + ["u1", "u2"]
    first = sample_users(users, size=5, seed=7)
    assert first == sample_users(list(reversed(users)), size=5, seed=7)  # order of the input does not matter
    assert len(set(first)) == 5 and first == sorted(first)
    assert sample_users(users, size=100, seed=7) == sorted(set(users))
