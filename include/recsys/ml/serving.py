"""FAISS serving of a tenant's deployed model.

Artifacts follow the contract in include/recsys/contract/artifacts.py (shared with training); scores are
inner products user . item over an IndexFlatIP of every item embedding.

A deployed model is immutable once built: the index over every item embedding, the user rows, the
users' interaction history (loaded in bulk at deploy time, so requests never touch the database) and
the popularity fallback. Deploying swaps one reference, so a request sees either the old model or the
new one, never a mix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import faiss
import numpy as np
from minio import Minio
from minio.error import S3Error

from include.recsys import storage
from include.recsys.contract import artifacts
from include.recsys.contract.artifacts import TrainResult

# One query vector per request: OpenMP's thread start-up would cost more than the search itself.
faiss.omp_set_num_threads(1)


class ArtifactError(ValueError):
    """Model artifacts that are missing, corrupt or unfit to serve."""


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    category: str | None


def load_artifacts(s3: Minio, artifact_uri: str) -> TrainResult:
    """Reads a model version (checksums verified by the artifacts contract) and checks it can be served."""
    bucket, prefix = storage.parse_s3_uri(artifact_uri)
    try:
        result = artifacts.load_artifacts(client=s3, bucket=bucket, prefix=prefix)
    except S3Error as exc:
        raise storage.StorageError(f"cannot read model artifacts under {artifact_uri}: {exc.code}") from None
    check_servable(result, where=artifact_uri)
    return result


def check_servable(result: TrainResult, *, where: str) -> None:
    """What serving needs beyond the file contract: float32, finite, matching dims, unique ids."""
    for name, array in (
        ("item_embeddings.npy", result.item_embeddings),
        ("user_embeddings.npy", result.user_embeddings),
    ):
        if array.ndim != 2 or array.dtype != np.float32:
            raise ArtifactError(f"{where}{name} must be float32 [n, dim], got {array.dtype} {list(array.shape)}")
        if not np.isfinite(array).all():
            raise ArtifactError(f"{where}{name} contains NaN or infinite values")
    if result.item_embeddings.shape[0] == 0:
        raise ArtifactError(f"{where}item_embeddings.npy has no rows")
    if result.item_embeddings.shape[1] != result.user_embeddings.shape[1]:
        raise ArtifactError(
            f"{where} item dim {result.item_embeddings.shape[1]} != user dim {result.user_embeddings.shape[1]}"
        )
    for name, ids in (("item_ids.json", result.item_ids), ("user_ids.json", result.user_ids)):
        if len(set(ids)) != len(ids):
            raise ArtifactError(f"{where}{name} has duplicate ids")


@dataclass(frozen=True)
class Popularity:
    """Items by popularity, descending; the fallback for users the model cannot score.

    Fallback scores are 1/(1+rank) over the whole list, so they stay descending after filtering.
    """

    item_ids: tuple[str, ...]
    categories: Mapping[str, str]

    def top(self, count: int, *, category: str | None, exclude: Iterable[str] = ()) -> list[Recommendation]:
        skip = set(exclude)
        out: list[Recommendation] = []
        for rank, item_id in enumerate(self.item_ids):
            item_category = self.categories.get(item_id)
            if item_id in skip or (category is not None and item_category != category):
                continue
            out.append(Recommendation(item_id, 1.0 / (1 + rank), item_category))
            if len(out) == count:
                break
        return out


@dataclass
class TenantModel:
    version: str
    index: faiss.IndexFlatIP
    item_ids: list[str]
    item_categories: list[str | None]
    user_rows: dict[str, int]
    user_embeddings: np.ndarray
    history: dict[str, frozenset[int]]
    popularity: Popularity
    loaded_at: float = field(default_factory=time.time)
    # Per category: (item count, search parameters, selector), built once so a filtered search costs
    # no more than an unfiltered one. SearchParameters does not own its selector, hence the third slot.
    category_search: dict[str, tuple[int, faiss.SearchParameters, faiss.IDSelectorBatch]] = field(default_factory=dict)

    @property
    def index_size(self) -> int:
        return self.index.ntotal

    @classmethod
    def build(
        cls,
        result: TrainResult,
        *,
        version: str,
        categories: Mapping[str, str],
        history: Mapping[str, Iterable[str]],
    ) -> TenantModel:
        """``categories`` is the tenant's catalog (item_id -> category); ``history`` user -> items seen."""
        index = faiss.IndexFlatIP(result.item_embeddings.shape[1])
        index.add(result.item_embeddings)
        item_row = {item_id: row for row, item_id in enumerate(result.item_ids)}
        item_categories = [categories.get(item_id) for item_id in result.item_ids]
        by_category: dict[str, list[int]] = {}
        for row, category in enumerate(item_categories):
            if category is not None:
                by_category.setdefault(category, []).append(row)
        category_search = {}
        for category, rows in by_category.items():
            selector = faiss.IDSelectorBatch(np.asarray(rows, dtype=np.int64))
            category_search[category] = (len(rows), faiss.SearchParameters(sel=selector), selector)
        return cls(
            version=version,
            index=index,
            item_ids=result.item_ids,
            item_categories=item_categories,
            user_rows={user_id: row for row, user_id in enumerate(result.user_ids)},
            user_embeddings=result.user_embeddings,
            history={user: frozenset(item_row[i] for i in items if i in item_row) for user, items in history.items()},
            popularity=Popularity(tuple(result.popular_items), dict(categories)),
            category_search=category_search,
        )

    def recommend(self, user_id: str, *, count: int, category: str | None = None) -> tuple[list[Recommendation], bool]:
        """(recommendations, fallback): best unseen items by inner product, or popular items for a
        user the model does not know."""
        seen = self.history.get(user_id, frozenset())
        row = self.user_rows.get(user_id)
        if row is None:
            return self.popularity.top(count, category=category, exclude=(self.item_ids[r] for r in seen)), True
        if category is None:
            eligible, params = self.index.ntotal, None
        else:
            eligible, params, _selector = self.category_search.get(category, (0, None, None))
            if eligible == 0:
                return [], False
        k = min(eligible, count + len(seen))
        scores, rows = self.index.search(self.user_embeddings[row : row + 1], k, params=params)
        out: list[Recommendation] = []
        for score, item_row in zip(scores[0].tolist(), rows[0].tolist(), strict=True):
            if item_row < 0 or item_row in seen:
                continue
            out.append(Recommendation(self.item_ids[item_row], score, self.item_categories[item_row]))
            if len(out) == count:
                break
        return out, False


class Registry:
    """The models this process serves: one live model per tenant, plus candidates (loaded for validation,
    reached only by requests that pin their version). Readers take no lock: a deploy replaces the whole
    mapping with one reference assignment."""

    def __init__(self) -> None:
        self._models: dict[str, TenantModel] = {}
        self._candidates: dict[tuple[str, str], TenantModel] = {}
        self._write_lock = threading.Lock()

    def get(self, tenant_id: str) -> TenantModel | None:
        """The tenant's live model."""
        return self._models.get(tenant_id)

    def get_version(self, tenant_id: str, version: str) -> TenantModel | None:
        """The tenant's model of this version, live or candidate; None if this process does not serve it."""
        live = self._models.get(tenant_id)
        if live is not None and live.version == version:
            return live
        return self._candidates.get((tenant_id, version))

    def put(self, tenant_id: str, model: TenantModel) -> None:
        """Make ``model`` the tenant's live model; a candidate of the same version is promoted, not kept twice."""
        with self._write_lock:
            self._models = {**self._models, tenant_id: model}
            if (tenant_id, model.version) in self._candidates:
                self._candidates = {k: v for k, v in self._candidates.items() if k != (tenant_id, model.version)}

    def put_candidate(self, tenant_id: str, model: TenantModel) -> None:
        with self._write_lock:
            self._candidates = {**self._candidates, (tenant_id, model.version): model}

    def drop_candidate(self, tenant_id: str, version: str) -> bool:
        with self._write_lock:
            if (tenant_id, version) not in self._candidates:
                return False
            self._candidates = {k: v for k, v in self._candidates.items() if k != (tenant_id, version)}
            return True

    def versions(self) -> dict[str, str]:
        """Live versions per tenant (what /metrics reports as serving)."""
        return {tenant: model.version for tenant, model in self._models.items()}
