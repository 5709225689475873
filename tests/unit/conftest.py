"""One small planted data set with known taste structure, shared by the ML engine's tests.

It comes from the seed generator itself (600 users, 300 items, 12K events): users draw most events
from two taste clusters, so a model that learns collaborative signal clearly beats popularity, and
the same events with user-item links permuted carry no signal beyond popularity.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from include.recsys.datagen import SeedData, generate
from include.recsys.ml.lightgcn import TrainConfig

PLANTED_START = datetime(2026, 1, 1, tzinfo=UTC)
PLANTED_END = PLANTED_START + timedelta(days=1)


@pytest.fixture(scope="session")
def planted() -> SeedData:
    return generate(
        tenant="planted",
        interval_start=PLANTED_START,
        interval_end=PLANTED_END,
        seed=1,
        n_users=600,
        n_items=300,
        n_interactions=12_000,
    )


@pytest.fixture(scope="session")
def shuffled_interactions(planted: SeedData) -> pd.DataFrame:
    """The planted events with items permuted across rows: same activity and popularity, no taste."""
    shuffled = planted.interactions.copy()
    shuffled["item_id"] = np.random.default_rng(0).permutation(shuffled["item_id"].to_numpy())
    return shuffled


@pytest.fixture(scope="session")
def small_config() -> TrainConfig:
    return TrainConfig(dim=32, epochs=200, batch_size=1024, seed=0, time_budget_seconds=120.0)


@pytest.fixture()
def compare_digest_calls(monkeypatch) -> list[tuple]:
    """Every (a, b) that include.recsys.api.auth passes to hmac.compare_digest, which still answers."""
    from include.recsys.api import auth

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    return calls
