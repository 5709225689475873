"""Serving: recommendation latency and throughput over loopback with wrk at several concurrencies, against
the same server's /health (the ceiling: the framework's cost with no model work), and the in-process FAISS
search of include/recsys/ml/serving.py against a bare IndexFlatIP search.

The stack's API enforces a per-key rate limit (60 requests per 10 s by default), which a load generator
would hit at once; ``api_rate_limit`` restarts the bench stack's API with a limit set through
RECSYS_RATE_LIMIT for the load test and puts the default back afterwards (the journey's 429 probe needs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from include.recsys.contract.schema import CATEGORIES
from include.stack.settings import DEFAULT_RATE_LIMIT
from plugins.hooks.recsys_api import RecsysApiHook
from plugins.journey.query_recommendations import RECOMMEND_PATH

WRK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk.lua")
BENCH_RATE_LIMIT = "100000000/1"
CONCURRENCY = (1, 8, 32, 64)
FAISS_ITEMS = (5_000, 100_000)
FAISS_DIM = 64  # TrainConfig.dim


@dataclass
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0


def _restart_api(rate_limit: str) -> None:
    env = {**os.environ, "RECSYS_RATE_LIMIT": rate_limit}
    subprocess.run(
        [sys.executable, "-m", "include.stack", "restart", "recsys-api"], env=env, check=True, stdout=subprocess.DEVNULL
    )


@contextlib.contextmanager
def api_rate_limit(rate_limit: str = BENCH_RATE_LIMIT) -> Iterator[None]:
    _restart_api(rate_limit)
    try:
        yield
    finally:
        _restart_api(DEFAULT_RATE_LIMIT)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    return found


def run_wrk(url: str, *, connections: int, seconds: float, env: dict[str, str] | None = None) -> LoadResult:
    threads = min(connections, 2)  # the machine's cores; more threads only fight the server for them
    argv = [
        wrk_binary(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--latency",
        "-s",
        WRK_SCRIPT,
        url,
    ]
    completed = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {completed.stdout[-500:]} {completed.stderr[-500:]}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    errors = sum(raw[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout"))
    return LoadResult(
        requests=raw["requests"],
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )


def request_bodies(user_ids: list[str], path: str, *, count: int = 10) -> str:
    """One JSON body per line: every user without a filter, every other one with a category filter."""
    with open(path, "w") as fh:
        for i, user_id in enumerate(user_ids):
            body: dict[str, Any] = {"user_id": user_id, "count": count}
            if i % 2:
                body["filters"] = {"category": CATEGORIES[i % len(CATEGORIES)]}
            fh.write(json.dumps(body, separators=(",", ":")) + "\n")
    return path


def load_test(
    *, tenant_id: str, user_ids: list[str], repetitions: int, seconds: float, work_dir: str
) -> dict[int, dict[str, list[LoadResult]]]:
    """{concurrency: {"recommend": [...], "health": [...]}}, interleaved so both see the same machine."""
    api = RecsysApiHook(run_key="bench")
    api_key, _ = api.create_api_key(tenant_id, name="bench load test")
    bodies = request_bodies(user_ids, os.path.join(work_dir, "wrk-bodies.jsonl"))
    recommend_env = {"BENCH_BODIES": bodies, "BENCH_AUTH": f"Bearer {api_key}"}
    results: dict[int, dict[str, list[LoadResult]]] = {}
    for connections in CONCURRENCY:
        per = results.setdefault(connections, {"recommend": [], "health": []})
        for _ in range(repetitions):
            per["recommend"].append(
                run_wrk(api.base_url + RECOMMEND_PATH, connections=connections, seconds=seconds, env=recommend_env)
            )
            per["health"].append(
                run_wrk(api.base_url + "/health", connections=connections, seconds=seconds, env={"BENCH_BODIES": ""})
            )
    return results


def faiss_search(*, queries: int = 500, seed: int = 0) -> dict[int, dict[str, float]]:
    """p50 ms of TenantModel.recommend (the API's path: search, skip seen, map ids) vs a bare
    IndexFlatIP.search of the same vectors, for catalogs of 5K and 100K items."""
    from include.recsys.contract.artifacts import TrainResult
    from include.recsys.ml.serving import TenantModel

    rng = np.random.default_rng(seed)
    out = {}
    for n_items in FAISS_ITEMS:
        n_users = 1_000
        items = [f"i{n}" for n in range(n_items)]
        users = [f"u{n}" for n in range(n_users)]
        result = TrainResult(
            user_ids=users,
            item_ids=items,
            user_embeddings=rng.standard_normal((n_users, FAISS_DIM), dtype=np.float32),
            item_embeddings=rng.standard_normal((n_items, FAISS_DIM), dtype=np.float32),
            popular_items=items,
            metrics={},
            config={},
        )
        history = {u: [items[j] for j in rng.choice(n_items, size=10, replace=False)] for u in users}
        categories = {item: CATEGORIES[j % len(CATEGORIES)] for j, item in enumerate(items)}
        model = TenantModel.build(result, version="bench", categories=categories, history=history)
        picks = rng.integers(0, n_users, size=queries)
        served, bare = [], []
        for row in picks:
            start = time.perf_counter()
            model.recommend(users[row], count=10)
            served.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.index.search(result.user_embeddings[row : row + 1], 20)
            bare.append(time.perf_counter() - start)
        out[n_items] = {"served_p50_ms": float(np.median(served)) * 1000, "bare_p50_ms": float(np.median(bare)) * 1000}
    return out
