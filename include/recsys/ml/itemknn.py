"""Item-kNN: the classical baseline a model must not lose to (cosine similarity on the user-item matrix).

A user's score for an item is the sum of the item's cosine similarities to the items the user has, each
item keeping only its ``neighbours`` most similar items (implicit's ItemItemRecommender / CosineRecommender
does the same with K=100 by default). Binary interactions: repeated events of a pair are one positive, as
for LightGCN. Deterministic: no randomness at all, ties broken by item code.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

DEFAULT_NEIGHBOURS = 100


class ItemKNN:
    def __init__(self, *, neighbours: int = DEFAULT_NEIGHBOURS) -> None:
        if neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {neighbours}")
        self.neighbours = neighbours
        self._user_items: sp.csr_matrix | None = None
        self._similarity: sp.csr_matrix | None = None

    def fit(self, *, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> ItemKNN:
        """Fit on distinct (user code, item code) pairs."""
        ones = np.ones(len(users), dtype=np.float32)
        user_items = sp.csr_matrix((ones, (users, items)), shape=(n_users, n_items), dtype=np.float32)
        user_items.data[:] = 1.0  # duplicates summed by the constructor are still one positive
        norms = np.sqrt(np.asarray(user_items.sum(axis=0)).ravel())
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        normalized = user_items @ sp.diags(inverse.astype(np.float32))
        similarity = (normalized.T @ normalized).tocsr()
        similarity.setdiag(0.0)
        similarity.eliminate_zeros()
        self._user_items, self._similarity = user_items, _keep_top(similarity, self.neighbours)
        return self

    def score(self, users: np.ndarray) -> torch.Tensor:
        """[len(users), n_items] scores: each user's items' similarity to every catalog item, summed."""
        if self._user_items is None or self._similarity is None:
            raise RuntimeError("ItemKNN.score called before fit")
        # The pruned similarity holds row i -> its neighbours j; a user with item i scores each neighbour j.
        dense = (self._user_items[users] @ self._similarity).toarray()
        return torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))


def _keep_top(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's k largest entries (ties: lower column first); the rest dropped."""
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    keep = np.zeros(len(data), dtype=bool)
    for row in range(matrix.shape[0]):
        start, end = indptr[row], indptr[row + 1]
        if end - start <= k:
            keep[start:end] = True
            continue
        order = np.lexsort((indices[start:end], -data[start:end]))[:k]
        keep[start + order] = True
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))[keep]
    return sp.csr_matrix((data[keep], (rows, indices[keep])), shape=matrix.shape, dtype=np.float32)
