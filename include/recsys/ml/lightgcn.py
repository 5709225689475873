"""LightGCN (He et al., SIGIR 2020) behind a small fit / recommend / save / load interface.

Embeddings are propagated over the symmetric-normalized user-item graph D^-1/2 A D^-1/2 (built once
per fit) for K layers and averaged with the layer-0 (ego) embeddings; training minimizes BPR loss on
(user, seen item, uniformly sampled item) triples with L2 on the batch's ego embeddings.

Early stopping: with a validator (train.py passes validation NDCG@10 on items carved out of train)
the fit measures every ``eval_every_steps`` steps, stops after ``patience`` measurements without gain
and keeps the best embeddings; without one it runs its epoch cap.

Determinism: initial weights, batch order and negatives come from generators seeded by
``TrainConfig.seed``, and every op in the training step and in validation is deterministic on CPU, so a
CPU fit with the same data and seed repeats bit for bit, early stopping included (tested). Not covered:
CUDA kernels (atomic adds), and a fit cut short by its time budget, which stops after a
machine-dependent number of steps.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse
import torch

from include.recsys.contract.schema import ContractError, require_columns
from include.recsys.ml.adam import Adam

log = logging.getLogger(__name__)
# A long fit logs its epoch, loss and last validation NDCG this often (a few lines, not one per step).
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a tenant's training run, in one place; defaults chosen on the generator and on
    the real-shaped logs of tests/data/tenant_logs.py (sweep in the README)."""

    dim: int = 64
    layers: int = 3
    lr: float = 0.01
    l2: float = 1e-4
    # An upper bound: early stopping on the validation NDCG@10 decides how many epochs a tenant's data gets.
    epochs: int = 200
    batch_size: int = 4096
    # Each step propagates over the whole graph, so a step costs about the same whatever the batch and
    # the time budget buys a number of steps, not of epochs. Larger graphs therefore get larger batches,
    # at most this many steps per epoch, with the learning rate scaled by sqrt(batch growth) (the
    # square-root rule for Adam). Measured at 1M interactions, 50 s budget, loaded 2-core machine: 4096
    # pairs per batch ended inside the first epoch (NDCG@10 < 0.30); 20 steps per epoch, 67 steps, 0.284;
    # 10 steps per epoch, 71 steps, 0.337. At the default scale (80K pairs, batch 8000) 30 epochs reach
    # the NDCG@10 of 4096-pair batches (0.341) in half the steps.
    max_steps_per_epoch: int = 10
    # Small logs get small batches too, so they see as many steps per epoch as large ones (a 2.5K-pair log
    # trained 1 step per epoch with 4096-pair batches and stayed below item-kNN).
    min_batch_size: int = 256
    # Epochs scale with the data: a small log has few steps per epoch and gets more epochs, up to this
    # many steps in all (and ``epochs``), whichever early stopping or the time budget does not end first.
    max_steps: int = 600
    seed: int = 0
    time_budget_seconds: float = 30.0  # include/config.py's TRAIN_TIME_BUDGET_SECONDS: why 30
    holdout_fraction: float = 0.2
    min_user_items: int = 3  # users with fewer distinct items are only trained on, never evaluated
    # Early stopping: validation NDCG@10 on items carved out of train (up to ``validation_users`` users,
    # ``holdout_fraction`` of each one's items), measured every ``eval_every_steps`` steps (at an epoch's
    # end); training stops after ``patience`` measurements without a gain above ``min_delta`` and keeps
    # the best embeddings.
    validation_users: int = 1000
    eval_every_steps: int = 10
    patience: int = 5
    min_delta: float = 1e-4
    knn_neighbours: int = 100  # the item-kNN baseline's neighbours per item
    # Held-out metrics (the model's and both baselines') are means over a seeded sample of at most this many
    # users with held-out items. Ranking the whole catalog for every user of three models was 66 of 87 s of
    # a 1M-interaction fit; over 10,000 users the standard error of NDCG@10 is ~0.003. At the default scale
    # (10K users) every user is evaluated.
    eval_users: int = 10_000

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def scaled_for(self, n_pairs: int) -> tuple[int, float]:
        """(batch size, learning rate) for ``n_pairs`` training pairs: ``max_steps_per_epoch`` steps per epoch
        (batches no smaller than ``min_batch_size``), the learning rate grown by sqrt(batch / batch_size)
        above ``batch_size`` and never shrunk below ``lr``."""
        batch = max(self.min_batch_size, -(-n_pairs // max(1, self.max_steps_per_epoch)))
        return batch, self.lr * math.sqrt(max(1.0, batch / self.batch_size))

    def epochs_for(self, batches_per_epoch: int) -> int:
        """The epoch cap for a graph of ``batches_per_epoch`` steps per epoch."""
        return max(1, min(self.epochs, self.max_steps // max(1, batches_per_epoch)))


# Validation NDCG of (user embeddings, item embeddings); higher is better.
Validator = Callable[[torch.Tensor, torch.Tensor], float]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def dedupe_pairs(user_codes: np.ndarray, item_codes: np.ndarray, *, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs sorted by user then item: repeated events are one positive."""
    keys = np.unique(user_codes.astype(np.int64) * n_items + item_codes)
    return keys // n_items, keys % n_items


class NormalizedAdjacency:
    """D^-1/2 A D^-1/2 of the bipartite user-item graph, kept as its users x items block R: A is
    [[0, R], [R^T, 0]] over the n_users + n_items nodes, users first.

    ``A @ x`` goes block by block. Users take R @ x_items through torch's CSR kernel, which gathers item
    rows (a catalog's embeddings stay in cache). Items take R^T @ x_users as a scatter over R's rows
    through scipy's CSC kernel, which reads each user row once; gathering user rows instead misses the
    cache on every edge. Measured at 100K users, 20K items, 1.4M edges, 64 dims, 2 cores: 24 ms per
    product against 78 ms for the whole of A as one torch CSR tensor (45 ms of it the item rows).
    On CUDA both blocks are torch CSR tensors.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, *, n_users: int, n_items: int) -> None:
        # Pairs are distinct (dedupe_pairs), so a node's degree is its number of edges.
        degree_users = np.bincount(users, minlength=n_users).astype(np.float32)
        degree_items = np.bincount(items, minlength=n_items).astype(np.float32)
        values = 1.0 / np.sqrt(degree_users[users] * degree_items[items])
        self.n_users = n_users
        self.block = scipy.sparse.csr_matrix((values, (users, items)), shape=(n_users, n_items), dtype=np.float32)
        self._by_user = _torch_csr(self.block)
        self._by_item: torch.Tensor | None = None  # R^T as torch CSR, on CUDA only

    def to(self, dev: torch.device) -> NormalizedAdjacency:
        self._by_user = self._by_user.to(dev)
        self._by_item = None if dev.type == "cpu" else _torch_csr(self.block.T.tocsr()).to(dev)
        return self

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()  # a gradient may arrive strided
        x_users, x_items = x[: self.n_users], x[self.n_users :]
        to_users = torch.sparse.mm(self._by_user, x_items)
        if self._by_item is not None:
            to_items = torch.sparse.mm(self._by_item, x_users)
        else:
            to_items = torch.from_numpy(self.block.T @ x_users.detach().numpy())
        return torch.cat([to_users, to_items])

    def to_dense(self) -> np.ndarray:
        """The whole of A, for tests on small graphs."""
        return scipy.sparse.bmat([[None, self.block], [self.block.T, None]]).toarray()


def _torch_csr(matrix: scipy.sparse.csr_matrix) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data),
            size=matrix.shape,
            check_invariants=False,  # scipy built it canonical: sorted, in range
        )


class _SymmetricSpMM(torch.autograd.Function):
    """A @ x for a symmetric sparse A: the gradient is A @ grad, so autograd never transposes A.

    Measured on 15K nodes x 64 dims, 3 layers forward + backward: 16 ms vs 450 ms for CSR and
    47 ms for COO through torch's generic sparse autograd.
    """

    @staticmethod
    def forward(ctx, adjacency: NormalizedAdjacency, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adjacency @ grad


class LightGCN:
    def __init__(self, config: TrainConfig = TrainConfig()) -> None:
        self.config = config
        self.user_ids: pd.Index = pd.Index([], dtype=str)
        self.item_ids: pd.Index = pd.Index([], dtype=str)
        self.user_embeddings = np.zeros((0, config.dim), dtype=np.float32)
        self.item_embeddings = np.zeros((0, config.dim), dtype=np.float32)
        # Seen (user, item) code pairs sorted by user; recommend() excludes them.
        self.seen_users = np.zeros(0, dtype=np.int64)
        self.seen_items = np.zeros(0, dtype=np.int64)
        self.epochs_run: float = 0  # fractional when the time budget stopped training mid-epoch
        self.steps_run = 0
        self.best_epoch: float | None = None  # epoch of the kept embeddings, when validated
        self.best_validation_ndcg: float | None = None
        self.stopped_by: str = "epochs"  # epochs | early_stopping | time_budget
        self.train_seconds = 0.0
        self.batch_size, self.lr = config.batch_size, config.lr  # as scaled by the last fit
        self._adjacency: NormalizedAdjacency | None = None  # only alive during fit

    def fit(
        self,
        interactions: pd.DataFrame,
        *,
        user_ids: Sequence[str] | None = None,
        item_ids: Sequence[str] | None = None,
        validator: Validator | None = None,
    ) -> LightGCN:
        """Train on ``interactions`` (user_id, item_id). ``user_ids`` / ``item_ids`` fix the id universe
        (e.g. the whole catalog, so items without interactions still get embeddings). With a ``validator``
        training stops early (see TrainConfig) and keeps the embeddings it scored best."""
        require_columns(interactions.columns, ("user_id", "item_id"), what="interactions")
        if interactions.empty:
            raise ContractError("interactions must have at least one row, got 0")
        self.user_ids = universe(interactions["user_id"], user_ids)
        self.item_ids = universe(interactions["item_id"], item_ids)
        users, items = self.codes(interactions)
        return self.fit_pairs(*dedupe_pairs(users, items, n_items=len(self.item_ids)), validator=validator)

    def fit_pairs(self, users: np.ndarray, items: np.ndarray, *, validator: Validator | None = None) -> LightGCN:
        """Train on distinct (user, item) code pairs sorted by user (dedupe_pairs' output) over the id universe
        already in ``user_ids`` / ``item_ids``: what :meth:`fit` does once it has its codes."""
        self.seen_users, self.seen_items = users, items
        started = time.perf_counter()
        ego = self._train(validator)
        self.train_seconds = time.perf_counter() - started
        with torch.no_grad():
            final = self._propagate(ego).cpu().numpy()
        self.user_embeddings = np.ascontiguousarray(final[: len(self.user_ids)], dtype=np.float32)
        self.item_embeddings = np.ascontiguousarray(final[len(self.user_ids) :], dtype=np.float32)
        self._adjacency = None
        return self

    def codes(self, interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the frame's user_id / item_id in this model; unknown ids are an error."""
        return (
            _indexer(self.user_ids, interactions["user_id"], what="user_id"),
            _indexer(self.item_ids, interactions["item_id"], what="item_id"),
        )

    def recommend(
        self, user_ids: Sequence[str], k: int = 10, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item ids and their inner-product scores per user, best first: arrays of shape [n, k]."""
        users = _indexer(self.user_ids, pd.Series(list(user_ids), dtype=str), what="user_id")
        scores = torch.from_numpy(self.user_embeddings[users] @ self.item_embeddings.T)
        if exclude_seen:
            rows, cols = seen_rows(self.seen_users, self.seen_items, users, n_users=len(self.user_ids))
            scores[rows, cols] = -torch.inf
        top = torch.topk(scores, min(k, len(self.item_ids)), dim=1)
        return self.item_ids.to_numpy()[top.indices.numpy()], top.values.numpy()

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        np.savez(
            os.path.join(directory, "lightgcn.npz"),
            user_embeddings=self.user_embeddings,
            item_embeddings=self.item_embeddings,
            seen_users=self.seen_users,
            seen_items=self.seen_items,
        )
        state = {
            "config": self.config.to_dict(),
            "user_ids": self.user_ids.tolist(),
            "item_ids": self.item_ids.tolist(),
            "epochs_run": self.epochs_run,
            "train_seconds": self.train_seconds,
        }
        with open(os.path.join(directory, "lightgcn.json"), "w", encoding="utf-8") as handle:
            json.dump(state, handle)

    @classmethod
    def load(cls, directory: str) -> LightGCN:
        with open(os.path.join(directory, "lightgcn.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        model = cls(TrainConfig(**state["config"]))
        model.user_ids = pd.Index(state["user_ids"], dtype=str)
        model.item_ids = pd.Index(state["item_ids"], dtype=str)
        model.epochs_run, model.train_seconds = state["epochs_run"], state["train_seconds"]
        with np.load(os.path.join(directory, "lightgcn.npz")) as arrays:
            model.user_embeddings, model.item_embeddings = arrays["user_embeddings"], arrays["item_embeddings"]
            model.seen_users, model.seen_items = arrays["seen_users"], arrays["seen_items"]
        return model

    def _train(self, validator: Validator | None) -> torch.Tensor:
        cfg, dev = self.config, device()
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        adjacency = NormalizedAdjacency(self.seen_users, self.seen_items, n_users=n_users, n_items=n_items)
        self._adjacency = adjacency.to(dev)
        generator = torch.Generator().manual_seed(cfg.seed)
        ego = torch.nn.Parameter((torch.randn(n_users + n_items, cfg.dim, generator=generator) * 0.1).to(dev))
        self.batch_size, self.lr = cfg.scaled_for(len(self.seen_users))
        optimizer = Adam(ego, lr=self.lr)
        rng = np.random.default_rng(cfg.seed)
        pairs_users = torch.from_numpy(self.seen_users).to(dev)
        pairs_items = torch.from_numpy(self.seen_items).to(dev)
        deadline = time.perf_counter() + cfg.time_budget_seconds
        batches_per_epoch = -(-len(self.seen_users) // self.batch_size)
        max_epochs = cfg.epochs_for(batches_per_epoch)
        steps, last_eval, since_best = 0, 0, 0
        best: tuple[float, float, torch.Tensor] | None = None  # (validation NDCG, epoch, ego)
        self.stopped_by = "epochs"
        started = time.perf_counter()
        next_progress, ndcg = started + PROGRESS_EVERY_S, None
        for epoch in range(1, max_epochs + 1):
            order = torch.from_numpy(rng.permutation(len(self.seen_users))).to(dev)
            for batch in order.split(self.batch_size):
                # Checked per step, not per epoch: at 1M interactions one epoch alone can exceed the budget.
                if steps and time.perf_counter() >= deadline:
                    self.stopped_by = "time_budget"
                    break
                users, positives = pairs_users[batch], pairs_items[batch] + n_users
                negatives = torch.randint(n_items, (len(batch),), generator=generator).to(dev) + n_users
                nodes = torch.cat([users, positives, negatives])
                # index_select: its backward (index_add_) is deterministic on CPU, unlike
                # advanced indexing's index_put_, and measured 2x faster here.
                u, p, n = self._propagate(ego).index_select(0, nodes).split(len(batch))
                bpr = torch.nn.functional.softplus(-((u * p).sum(1) - (u * n).sum(1))).mean()
                l2 = ego.index_select(0, nodes).square().sum()
                loss = bpr + cfg.l2 * l2 / (2 * len(batch))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                if time.perf_counter() >= next_progress:
                    log.info(
                        "epoch %d of at most %d, step %d, loss %.4f, last validation NDCG@10 %s, %.0f s",
                        epoch,
                        max_epochs,
                        steps,
                        loss.item(),
                        "-" if ndcg is None else f"{ndcg:.4f}",
                        time.perf_counter() - started,
                    )
                    next_progress = time.perf_counter() + PROGRESS_EVERY_S
            self.steps_run, self.epochs_run = steps, round(steps / batches_per_epoch, 2)
            if self.stopped_by == "time_budget":
                break
            if validator is None or (steps - last_eval < cfg.eval_every_steps and epoch < max_epochs):
                continue
            last_eval = steps
            with torch.no_grad():
                final = self._propagate(ego)
                ndcg = validator(final[:n_users].cpu(), final[n_users:].cpu())
            if best is None or ndcg > best[0] + cfg.min_delta:
                best, since_best = (ndcg, self.epochs_run, ego.detach().clone()), 0
            else:
                since_best += 1
                if since_best >= cfg.patience:
                    self.stopped_by = "early_stopping"
                    break
        log.info(
            "trained %s epochs (%d steps) in %.1f s, stopped by %s; best validation NDCG@10 %s",
            self.epochs_run,
            steps,
            time.perf_counter() - started,
            self.stopped_by,
            "-" if best is None else f"{best[0]:.4f} at epoch {best[1]}",
        )
        if best is None:
            return ego.detach()
        self.best_validation_ndcg, self.best_epoch = best[0], best[1]
        # The time budget may cut training after a better measurement than any before: measure it too.
        if self.stopped_by == "time_budget":
            with torch.no_grad():
                final = self._propagate(ego)
                if validator(final[:n_users].cpu(), final[n_users:].cpu()) > best[0]:
                    return ego.detach()
        return best[2]

    def _propagate(self, ego: torch.Tensor) -> torch.Tensor:
        layer, total = ego, ego
        for _ in range(self.config.layers):
            layer = _SymmetricSpMM.apply(self._adjacency, layer)
            total = total + layer
        return total / (self.config.layers + 1)


def seen_rows(
    seen_users: np.ndarray, seen_items: np.ndarray, users: np.ndarray, *, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row in ``users``, item) for every seen pair of the given users; seen pairs sorted by user."""
    indptr = np.searchsorted(seen_users, np.arange(n_users + 1))
    starts, counts = indptr[users], indptr[users + 1] - indptr[users]
    rows = np.repeat(np.arange(len(users)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, seen_items[np.repeat(starts, counts) + offsets]


def universe(column: pd.Series, given: Sequence[str] | None) -> pd.Index:
    """The ids a model numbers: ``given`` in its order (unique, or an error), else the column's distinct ids
    sorted."""
    if given is None:
        if isinstance(column.dtype, pd.CategoricalDtype):
            # A categorical's distinct ids are its used categories: no pass over a 10M-row column of strings.
            codes = column.cat.codes.to_numpy()
            distinct = column.cat.categories[np.unique(codes[codes >= 0])].astype(str).to_numpy()
        else:
            distinct = column.astype(str).unique()
        return pd.Index(np.sort(distinct), dtype=str)
    index = pd.Index(list(given), dtype=str)
    if index.has_duplicates:
        duplicated = index[index.duplicated()].unique()[:5].tolist()
        raise ContractError(f"ids given to fit must be unique; duplicated: {duplicated}")
    return index


def positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Each value's position in ``index``, -1 where absent. A categorical column is looked up once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        by_category = index.get_indexer(values.cat.categories.astype(str))
        return np.where(codes >= 0, by_category[codes], -1).astype(np.int64)
    return index.get_indexer(values.astype(str)).astype(np.int64)


def _indexer(index: pd.Index, values: pd.Series, *, what: str) -> np.ndarray:
    codes = positions(index, values)
    if (codes < 0).any():
        unknown = pd.unique(values[codes < 0].astype(str))
        raise ContractError(f"{len(unknown)} {what} value(s) not known to the model, e.g. {unknown[:5].tolist()}")
    return codes
