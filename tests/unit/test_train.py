from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from include.recsys.contract.artifacts import (
    ARTIFACT_FILES,
    load_artifacts,
    load_artifacts_dir,
    save_artifacts,
    save_artifacts_dir,
)
from include.recsys.contract.schema import ContractError
from include.recsys.datagen import write_csv
from include.recsys.ml.train import main, train_tenant


@pytest.fixture(scope="module")
def result(planted, small_config):
    return train_tenant(planted.interactions, item_ids=[*planted.items["item_id"], "item_new"], config=small_config)


def test_model_clearly_beats_popularity_on_planted_taste(result):
    metrics = result.metrics
    assert metrics["ndcg_at_10"] >= 2 * metrics["popularity_ndcg_at_10"], metrics
    assert metrics["ndcg_at_10"] - metrics["popularity_ndcg_at_10"] >= 0.15, metrics
    assert metrics["recall_at_10"] > metrics["popularity_recall_at_10"], metrics


def test_categorical_ids_train_the_same_model_as_strings(result, planted, small_config):
    # What train_model reads from the database: the landed ids as categoricals, with unused categories too.
    interactions = planted.interactions.sample(frac=1.0, random_state=3)
    categorical = interactions.assign(
        user_id=pd.Categorical(interactions["user_id"], categories=["nobody", *planted.users["user_id"]]),
        item_id=interactions["item_id"].astype("category"),
    )
    again = train_tenant(categorical, item_ids=[*planted.items["item_id"], "item_new"], config=small_config)
    assert again.user_ids == result.user_ids and again.item_ids == result.item_ids
    assert again.popular_items == result.popular_items
    np.testing.assert_array_equal(again.item_embeddings, result.item_embeddings)
    timing = ("train_seconds", "knn_seconds", "total_seconds")
    assert {k: v for k, v in again.metrics.items() if k not in timing} == {
        k: v for k, v in result.metrics.items() if k not in timing
    }


def test_shuffled_links_give_no_lift_over_popularity(shuffled_interactions, small_config):
    metrics = train_tenant(shuffled_interactions, config=small_config).metrics
    assert metrics["ndcg_at_10"] <= metrics["popularity_ndcg_at_10"] + 0.02, metrics


def test_result_embeds_every_catalog_item_and_user(result, planted, small_config):
    assert result.item_ids[-1] == "item_new" and len(result.item_ids) == planted.items.shape[0] + 1
    assert result.user_embeddings.shape == (planted.users.shape[0], small_config.dim)
    assert result.item_embeddings.shape == (len(result.item_ids), small_config.dim)
    assert result.item_embeddings.dtype == np.float32 and np.isfinite(result.item_embeddings).all()
    counts = planted.interactions["item_id"].value_counts()
    assert result.popular_items[0] == counts.index[0] and result.popular_items[-1] == "item_new"
    assert sorted(result.popular_items) == sorted(result.item_ids)
    metrics = result.metrics
    assert (metrics["n_users"], metrics["n_items"], metrics["n_interactions"]) == (600, 301, 12_000)
    assert 0 < metrics["epochs"] <= small_config.epochs and metrics["train_seconds"] > 0
    assert result.config["dim"] == small_config.dim and result.config["seed"] == small_config.seed


def test_artifacts_round_trip_through_a_directory(result, tmp_path):
    saved = save_artifacts_dir(result, str(tmp_path))
    assert saved["artifact_uri"] == f"file://{tmp_path}/"
    assert sorted(saved["files"]) == sorted(ARTIFACT_FILES)
    for name, digest in saved["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    loaded = load_artifacts_dir(str(tmp_path))
    np.testing.assert_array_equal(loaded.item_embeddings, result.item_embeddings)
    np.testing.assert_array_equal(loaded.user_embeddings, result.user_embeddings)
    assert loaded.item_ids == result.item_ids and loaded.user_ids == result.user_ids
    assert loaded.popular_items == result.popular_items
    assert loaded.metrics == result.metrics and loaded.config == result.config
    (tmp_path / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing: metrics.json"):
        load_artifacts_dir(str(tmp_path))


class _Response:
    def __init__(self, data: bytes, metadata: dict[str, str]):
        self.data, self.headers = data, {f"x-amz-meta-{k}": v for k, v in metadata.items()}

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _RecordingClient:
    """The two minio.Minio calls artifacts use, storing objects in memory (real S3: integration tests)."""

    def __init__(self):
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}

    def put_object(self, bucket, name, data, *, length, content_type, metadata):
        payload = data.read()
        assert len(payload) == length
        self.objects[(bucket, name)] = (payload, metadata)

    def get_object(self, bucket, name):
        return _Response(*self.objects[(bucket, name)])


def test_artifacts_carry_and_verify_a_sha256_in_object_metadata(result):
    client = _RecordingClient()
    saved = save_artifacts(result, client=client, bucket="recsys-models", prefix="/acme/v1")
    assert saved["artifact_uri"] == "s3://recsys-models/acme/v1/"
    assert {name for _, name in client.objects} == {f"acme/v1/{f}" for f in ARTIFACT_FILES}
    for (_, name), (payload, metadata) in client.objects.items():
        digest = hashlib.sha256(payload).hexdigest()
        assert metadata == {"sha256": digest} and saved["files"][name.split("/")[-1]] == digest
    loaded = load_artifacts(client=client, bucket="recsys-models", prefix="acme/v1/")
    np.testing.assert_array_equal(loaded.item_embeddings, result.item_embeddings)
    payload, metadata = client.objects[("recsys-models", "acme/v1/item_ids.json")]
    client.objects[("recsys-models", "acme/v1/item_ids.json")] = (payload.replace(b"item_", b"itam_"), metadata)
    with pytest.raises(ValueError, match="item_ids.json: expected x-amz-meta-sha256"):
        load_artifacts(client=client, bucket="recsys-models", prefix="acme/v1")


def test_train_tenant_validates_input(planted, small_config):
    with pytest.raises(ContractError, match="interactions must have columns user_id, item_id; missing: item_id"):
        train_tenant(pd.DataFrame({"user_id": ["u"]}), config=small_config)
    with pytest.raises(ContractError, match=r"1 item_id\(s\) not in item_ids, e.g. \['item_00001'\]"):
        train_tenant(planted.interactions, item_ids=planted.items["item_id"].iloc[1:].tolist(), config=small_config)


def test_cli_prints_metrics_and_writes_artifacts(planted, tmp_path, capsys):
    paths = write_csv(planted, str(tmp_path / "data"))
    exit_code = main(
        [
            "--csv",
            paths["interactions"],
            "--items",
            paths["items"],
            "--out",
            str(tmp_path / "model"),
            "--epochs",
            "2",
            "--dim",
            "8",
        ]
    )
    output = json.loads(capsys.readouterr().out)
    assert exit_code == 0 and output["epochs"] == 2 and output["n_items"] == 300
    assert 0.0 <= output["ndcg_at_10"] <= 1.0
    assert load_artifacts_dir(str(tmp_path / "model")).item_embeddings.shape == (300, 8)


TIMINGS = ("train_seconds", "knn_seconds", "total_seconds")


def test_seeded_training_reproduces_its_metrics_exactly(result, planted, small_config):
    again = train_tenant(planted.interactions, item_ids=[*planted.items["item_id"], "item_new"], config=small_config)
    assert result.metrics["stopped_by"] == "early_stopping"  # the path with validation, not a time cut
    assert {k: v for k, v in again.metrics.items() if k not in TIMINGS} == {
        k: v for k, v in result.metrics.items() if k not in TIMINGS
    }
    np.testing.assert_array_equal(again.item_embeddings, result.item_embeddings)
    np.testing.assert_array_equal(again.user_embeddings, result.user_embeddings)


def test_early_stopping_stops_earlier_on_a_tiny_log_than_on_a_larger_one(result, planted, small_config):
    tiny_log = planted.interactions[planted.interactions["user_id"].isin(planted.users["user_id"][:60])]
    tiny = train_tenant(tiny_log, config=small_config).metrics
    large = result.metrics
    assert tiny["stopped_by"] == large["stopped_by"] == "early_stopping", (tiny, large)
    assert tiny["steps"] < large["steps"], (tiny["steps"], large["steps"])
    assert tiny["early_stopping_epoch"] <= tiny["epochs"] and large["early_stopping_epoch"] <= large["epochs"]


def test_the_model_beats_item_knn_on_planted_taste_and_the_report_states_the_protocol(result):
    metrics = result.metrics
    assert metrics["knn_ndcg_at_10"] > metrics["popularity_ndcg_at_10"], metrics
    assert metrics["ndcg_at_10"] >= 0.95 * metrics["knn_ndcg_at_10"], metrics
    protocol = result.config["protocol"]
    assert (
        protocol["seed"] == 0 and "excluded" in protocol["ranking"] and "0.2 of distinct items" in protocol["holdout"]
    )


def test_held_out_metrics_are_measured_on_a_seeded_sample_of_at_most_eval_users(planted, small_config):
    everyone = train_tenant(planted.interactions, config=replace(small_config, epochs=2))
    sampled = train_tenant(planted.interactions, config=replace(small_config, epochs=2, eval_users=25))
    again = train_tenant(planted.interactions, config=replace(small_config, epochs=2, eval_users=25))
    assert everyone.metrics["evaluated_users"] > 25
    assert sampled.metrics["evaluated_users"] == 25
    # The same users each time, so day-over-day figures compare like with like.
    assert sampled.metrics["ndcg_at_10"] == again.metrics["ndcg_at_10"]
    assert sampled.metrics["knn_ndcg_at_10"] == again.metrics["knn_ndcg_at_10"]
