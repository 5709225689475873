"""deploy_model's pure logic: the exact top 10 from embeddings and the training/serving overlap."""

from __future__ import annotations

import numpy as np
import pytest

from include.recsys.contract.artifacts import TrainResult
from include.recsys.ml.serving import TenantModel
from plugins.journey.deploy_model import candidate_reason, exact_top, serving_agreement, user_overlaps


def _result(*, users: int = 6, items: int = 30, dim: int = 8, seed: int = 3) -> TrainResult:
    rng = np.random.default_rng(seed)
    return TrainResult(
        user_ids=[f"u{i}" for i in range(users)],
        item_ids=[f"i{i:02d}" for i in range(items)],
        user_embeddings=rng.normal(size=(users, dim)).astype(np.float32),
        item_embeddings=rng.normal(size=(items, dim)).astype(np.float32),
        popular_items=[f"i{i:02d}" for i in range(items)],
        metrics={},
        config={},
    )


def test_exact_top_by_hand() -> None:
    # Two items per axis: u0 points at x, so i_x1 (2.0) beats i_x0 (1.0) and both beat the y items (0).
    result = TrainResult(
        user_ids=["u0"],
        item_ids=["x0", "x1", "y0", "neg"],
        user_embeddings=np.array([[1.0, 0.0]], dtype=np.float32),
        item_embeddings=np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32),
        popular_items=[],
        metrics={},
        config={},
    )
    assert exact_top(result, users=["u0"], history={}, k=3) == {"u0": ["x1", "x0", "y0"]}
    # Seen x1 is left out; an item the model does not know in the history changes nothing.
    assert exact_top(result, users=["u0"], history={"u0": ["x1", "unknown"]}, k=3) == {"u0": ["x0", "y0", "neg"]}
    # Fewer unseen items than k: all that are left.
    assert exact_top(result, users=["u0"], history={"u0": ["x0", "x1", "y0"]}, k=3) == {"u0": ["neg"]}


def test_exact_top_matches_the_served_model() -> None:
    """The API's own model (FAISS, seen items excluded) answers what exact_top computes."""
    result = _result()
    history = {"u0": ["i01", "i05"], "u3": [f"i{i:02d}" for i in range(25)]}
    model = TenantModel.build(result, version="v1", categories={}, history=history)
    exact = exact_top(result, users=result.user_ids, history=history)
    served = {u: [r.item_id for r in model.recommend(u, count=10)[0]] for u in result.user_ids}
    assert served == exact
    assert len(exact["u3"]) == 5  # 30 items, 25 seen
    assert serving_agreement(served, exact) == 1.0


def test_another_versions_index_disagrees() -> None:
    ours, other = _result(seed=3), _result(seed=4)
    served_model = TenantModel.build(other, version="v1", categories={}, history={})
    served = {u: [r.item_id for r in served_model.recommend(u, count=10)[0]] for u in ours.user_ids}
    assert serving_agreement(served, exact_top(ours, users=ours.user_ids, history={})) < 0.7


def test_overlap_maths_by_hand() -> None:
    exact = {"a": ["1", "2", "3", "4"], "b": ["5", "6"], "c": []}
    served = {"a": ["4", "3", "9", "8"], "b": ["5", "6"], "c": []}
    # a: 2 of 4 (order aside), b: 2 of 2, c: nothing to recommend and nothing served.
    assert user_overlaps(served, exact) == {"a": 0.5, "b": 1.0, "c": 1.0}
    assert serving_agreement(served, exact) == pytest.approx(2.5 / 3)
    # Something served where nothing was left to recommend disagrees.
    assert user_overlaps({"c": ["1"]}, {"c": []}) == {"c": 0.0}


def test_overlap_refuses_missing_answers_and_empty_samples() -> None:
    with pytest.raises(ValueError, match=r"no served answer for 1 sampled users, e.g. \['b'\]"):
        serving_agreement({"a": ["1"]}, {"a": ["1"], "b": ["2"]})
    with pytest.raises(ValueError, match="no sampled users"):
        serving_agreement({}, {})
    with pytest.raises(ValueError, match="user 'ghost' has no embedding"):
        exact_top(_result(), users=["ghost"], history={})


def test_candidate_reason_names_the_live_model() -> None:
    refusal = {"code": "live_model_newer", "live_version": "v9", "live_logical_date": "2026-11-30T00:00:00+00:00"}
    assert candidate_reason(refusal, logical_date="2026-11-01T00:00:00+00:00") == (
        "validated as candidate; live model v9 left in place"
        " (its logical date 2026-11-30T00:00:00+00:00 is newer than this model's 2026-11-01T00:00:00+00:00)"
    )
    undated = {"code": "live_model_undated", "live_version": "v0", "live_logical_date": None}
    assert "it has no logical date" in candidate_reason(undated, logical_date="x")
