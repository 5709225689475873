"""tenant_model_training's retraining decision: deploy a new version only when it beats the serving one."""

from __future__ import annotations

from plugins.ops.retraining import decide


def _model(version, ndcg):
    return {"version": version, "metrics": {"ndcg_at_10": ndcg} if ndcg is not None else {}}


def test_nothing_deployed_deploys():
    assert decide(candidate=_model("rt-b", 0.31), deployed=None, margin=0.01) == (
        True,
        "no version was deployed; rt-b has NDCG@10 0.3100",
    )


def test_the_same_version_is_never_redeployed_even_if_it_would_win():
    deploy, why = decide(candidate=_model("rt-a", 0.9), deployed=_model("rt-a", 0.1), margin=0.0)
    assert deploy is False and why == "rt-a is already the deployed version (same tenant, data and config)"


def test_a_deployed_version_without_a_recorded_ndcg_is_replaced():
    deploy, why = decide(candidate=_model("rt-b", 0.2), deployed=_model("rt-a", None), margin=0.05)
    assert deploy is True and "rt-a has no recorded NDCG@10" in why


def test_the_margin_is_inclusive_and_both_figures_are_named():
    # 0.30 + 0.02 = 0.32: exactly the margin deploys, a hair below keeps the deployed version.
    deploy, why = decide(candidate=_model("rt-b", 0.32), deployed=_model("rt-a", 0.30), margin=0.02)
    assert deploy is True
    assert why == "rt-b NDCG@10 0.3200 vs deployed rt-a 0.3000 + margin 0.02: good enough, deploying"
    deploy, why = decide(candidate=_model("rt-b", 0.3199), deployed=_model("rt-a", 0.30), margin=0.02)
    assert deploy is False and why.endswith("not good enough, keeping rt-a")


def test_a_worse_model_with_no_margin_is_kept_out():
    assert decide(candidate=_model("rt-b", 0.25), deployed=_model("rt-a", 0.30), margin=0.0)[0] is False
