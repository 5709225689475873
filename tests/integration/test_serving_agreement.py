"""deploy_model's training/serving agreement on the real platform and object store: the top 10 the API serves,
pinned to a candidate version behind another live one, against the exact top 10 of the registered embeddings;
then the registered artifacts hold another version's embeddings (a stale index: the platform serves what it
loaded at deploy time) and the suite fails naming the expectation and the observed overlap."""

from __future__ import annotations

import numpy as np
import pytest

from include.config import MODELS_BUCKET
from include.recsys.contract.artifacts import TrainResult, save_artifacts
from plugins.journey.deploy_model import (
    agreement_sample,
    check,
    deployment_row,
    measure_agreement,
    registered_artifacts,
)
from plugins.validation import ValidationFailed

N_ITEMS = 120


def _model(seed: int) -> TrainResult:
    rng = np.random.default_rng(seed)
    return TrainResult(
        user_ids=[f"user-{i:03d}" for i in range(80)],
        item_ids=[f"item-{i:03d}" for i in range(N_ITEMS)],
        user_embeddings=rng.normal(size=(80, 16)).astype(np.float32),
        item_embeddings=rng.normal(size=(N_ITEMS, 16)).astype(np.float32),
        popular_items=[f"item-{i:03d}" for i in range(N_ITEMS)],
        metrics={},
        config={},
    )


def test_a_stale_index_fails_the_agreement(new_tenant, s3, tmp_path) -> None:
    from plugins.hooks.recsys_api import RecsysApiHook

    run_key = "serving-agreement-test"
    tenant = new_tenant("agreement", run_key=run_key)
    tenant_id = tenant["tenant_id"]
    api = RecsysApiHook(run_key=run_key)
    live, candidate = _model(seed=1), _model(seed=2)
    for version, model in (("va", live), ("vb", candidate)):
        stored = save_artifacts(model, client=s3, bucket=MODELS_BUCKET, prefix=f"{tenant['slug']}/{version}/")
        api.register_model(tenant_id, version=version, artifact_uri=stored["artifact_uri"])
    api.deploy(tenant_id, "va", traffic_percent=100)
    api.deploy(tenant_id, "vb", traffic_percent=0)  # a candidate: only requests pinned to vb reach it

    def measured() -> dict:
        artifacts = registered_artifacts(api, tenant_id=tenant_id, version="vb")
        return measure_agreement(
            api,
            tenant_id=tenant_id,
            version="vb",
            artifacts=artifacts,
            history={},
            users=agreement_sample(artifacts.user_ids, size=50, seed=42),
            key_name="agreement test",
        )

    def validated(agreement: dict):
        row = deployment_row(
            api, tenant_id=tenant_id, version="vb", role="candidate", expected_live_version="va", catalog_size=N_ITEMS
        )
        return check(
            row, agreement=agreement, min_serving_agreement=0.99, results_dir=str(tmp_path), run_name="agreement"
        )

    agreed = measured()
    assert agreed == {"serving_agreement": 1.0, "agreement_users": 50, "agreement_disagreeing": []}
    assert validated(agreed).success
    # The agreement's key is revoked within the measurement: nothing left for the run's cleanup to count.
    assert api.api_keys(tenant_id, active=True) == []

    # The registered artifacts now hold the live version's embeddings, which the candidate never loaded.
    save_artifacts(live, client=s3, bucket=MODELS_BUCKET, prefix=f"{tenant['slug']}/vb/")
    stale = measured()
    assert stale["serving_agreement"] < 0.5 and len(stale["agreement_disagreeing"]) == 5
    result = validated(stale)
    assert not result.success and result.unsuccessful == 1
    with pytest.raises(ValidationFailed) as failed:
        result.raise_for_failure()
    message = str(failed.value)
    assert "expect_column_min_to_be_between" in message and "serving_agreement" in message
    assert f"observed {stale['serving_agreement']}" in message
    assert api.api_keys(tenant_id, active=True) == []
