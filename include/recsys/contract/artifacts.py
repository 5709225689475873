"""A trained model version as files: the contract between training and serving.

Under ``<tenant_slug>/<version>/`` in the models bucket (or a local directory):
item_embeddings.npy / user_embeddings.npy (float32 [n, dim], np.save format), item_ids.json /
user_ids.json (row order of the embeddings), config.json, metrics.json and popular_items.json
(item ids by training popularity, descending; serving's fallback). In the object store each object
carries its content SHA-256 as user metadata (x-amz-meta-sha256), checked again on load.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from include.checksums import sha256_bytes
from include.recsys import storage

if TYPE_CHECKING:
    from minio import Minio

ARRAY_FILES = ("item_embeddings.npy", "user_embeddings.npy")
JSON_FILES = ("item_ids.json", "user_ids.json", "config.json", "metrics.json", "popular_items.json")
ARTIFACT_FILES = ARRAY_FILES + JSON_FILES


@dataclass(frozen=True, eq=False)
class TrainResult:
    user_ids: list[str]
    item_ids: list[str]
    user_embeddings: np.ndarray  # float32 [n_users, dim], final propagated embeddings
    item_embeddings: np.ndarray  # float32 [n_items, dim]
    popular_items: list[str]
    metrics: dict[str, Any]
    config: dict[str, Any]


def encode(result: TrainResult) -> dict[str, bytes]:
    """File name -> bytes; identical results give identical bytes (and so identical checksums)."""
    files = {}
    arrays = {"item_embeddings.npy": result.item_embeddings, "user_embeddings.npy": result.user_embeddings}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
        files[name] = buffer.getvalue()
    for name, value in (
        ("item_ids.json", result.item_ids),
        ("user_ids.json", result.user_ids),
        ("config.json", result.config),
        ("metrics.json", result.metrics),
        ("popular_items.json", result.popular_items),
    ):
        files[name] = (json.dumps(value, sort_keys=True, indent=None if isinstance(value, list) else 2) + "\n").encode()
    return files


def decode(files: Mapping[str, bytes], *, where: str) -> TrainResult:
    missing = [name for name in ARTIFACT_FILES if name not in files]
    if missing:
        raise FileNotFoundError(
            f"model artifacts at {where} must include {', '.join(ARTIFACT_FILES)}; missing: {', '.join(missing)}"
        )
    arrays = {name: np.load(io.BytesIO(files[name]), allow_pickle=False) for name in ARRAY_FILES}
    values = {name: json.loads(files[name]) for name in JSON_FILES}
    result = TrainResult(
        user_ids=values["user_ids.json"],
        item_ids=values["item_ids.json"],
        user_embeddings=arrays["user_embeddings.npy"],
        item_embeddings=arrays["item_embeddings.npy"],
        popular_items=values["popular_items.json"],
        metrics=values["metrics.json"],
        config=values["config.json"],
    )
    for kind in ("user", "item"):
        ids, embeddings = getattr(result, f"{kind}_ids"), getattr(result, f"{kind}_embeddings")
        if embeddings.ndim != 2 or embeddings.shape[0] != len(ids):
            raise ValueError(
                f"model artifacts at {where}: {kind}_embeddings.npy must have one row per id in {kind}_ids.json"
                f" ({len(ids)}), got shape {embeddings.shape}"
            )
    return result


def save_artifacts(result: TrainResult, *, client: Minio, bucket: str, prefix: str) -> dict[str, Any]:
    """Upload every artifact file under ``prefix``; returns {"artifact_uri", "files": {name: sha256}}."""
    prefix = _prefix(prefix)
    checksums = {}
    for name, data in encode(result).items():
        checksums[name] = sha256_bytes(data)
        client.put_object(
            bucket,
            prefix + name,
            io.BytesIO(data),
            length=len(data),
            content_type="application/octet-stream" if name.endswith(".npy") else "application/json",
            metadata={storage.SHA256_META: checksums[name]},
        )
    return {"artifact_uri": f"s3://{bucket}/{prefix}", "files": checksums}


def load_artifacts(*, client: Minio, bucket: str, prefix: str) -> TrainResult:
    """Download and verify a model version; a checksum mismatch or missing checksum is an error."""
    prefix = _prefix(prefix)
    files = {}
    for name in ARTIFACT_FILES:
        data, headers = storage.read_object(client, bucket, prefix + name)
        expected = headers.get(f"x-amz-meta-{storage.SHA256_META}")
        actual = sha256_bytes(data)
        if expected != actual:
            raise ValueError(
                f"s3://{bucket}/{prefix}{name}: expected x-amz-meta-sha256 {expected}, content hashes to {actual}"
            )
        files[name] = data
    return decode(files, where=f"s3://{bucket}/{prefix}")


def save_artifacts_dir(result: TrainResult, directory: str) -> dict[str, Any]:
    """The same files in a local directory (tests, the CLI); same return shape as save_artifacts."""
    os.makedirs(directory, exist_ok=True)
    checksums = {}
    for name, data in encode(result).items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)
        checksums[name] = sha256_bytes(data)
    return {"artifact_uri": "file://" + os.path.abspath(directory) + "/", "files": checksums}


def load_artifacts_dir(directory: str) -> TrainResult:
    files = {}
    for name in ARTIFACT_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, "rb") as handle:
                files[name] = handle.read()
    return decode(files, where=directory)


def _prefix(prefix: str) -> str:
    if not prefix.strip("/"):
        raise ValueError(f"prefix must name a model version like '<tenant>/<version>/', got {prefix!r}")
    return prefix.strip("/") + "/"
