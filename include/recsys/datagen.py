"""Deterministic seed data for a tenant: a catalog, users and a day of interactions.

The same (tenant, interval_start, seed) always gives byte-identical CSVs, on any machine with the
pinned numpy, so a backfill of a past day reproduces that day's data and checksums. Everything is
drawn from one numpy Generator keyed by a SHA-256 of those inputs (never Python's salted hash()).

Planted taste structure, so a model that learns collaborative signal beats popularity and a model
that learns nothing does not:
- items fall into small taste clusters (~40 items), each inside one category;
- users belong to segments that prefer two categories; each user favours two clusters of those
  categories (a main and a side taste) and draws most events from them;
- within a cluster, and between clusters, popularity is skewed (Zipf-like / log-normal);
- a share of events is cross-cluster noise drawn from global popularity, as real browsing is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from include.recsys.contract.schema import (
    CATEGORIES,
    INTERACTION_COLUMNS,
    INTERACTION_TYPES,
    ITEM_COLUMNS,
    USER_COLUMNS,
)

ITEMS_PER_CLUSTER = 40
N_SEGMENTS = 20
TASTE_SHARE = 0.85  # events drawn from the user's own clusters; the rest is cross-cluster browsing
MAIN_TASTE_SHARE = 0.85  # of taste events, how many come from the main (vs side) cluster
WITHIN_CLUSTER_ZIPF = 1.2
MIN_EVENTS_PER_USER = 3
INTERACTION_MIX = dict(zip(INTERACTION_TYPES, (0.72, 0.18, 0.07, 0.03), strict=True))  # mostly views
COUNTRIES = {
    "US": 30,
    "DE": 12,
    "GB": 11,
    "FR": 9,
    "IN": 9,
    "BR": 7,
    "JP": 6,
    "CA": 5,
    "ES": 4,
    "IT": 3,
    "NL": 2,
    "PL": 2,
}  # relative weights; fmt: skip
MAX_SIGNUP_AGE_DAYS = 1095

# category -> (product noun, typical price in USD, brands)
_CATALOG: Mapping[str, tuple[str, float, tuple[str, ...]]] = {
    "smartphones": ("Smartphone", 650.0, ("Apex", "Novu", "Lumio", "Orbit", "Zenfo")),
    "laptops": ("Laptop", 1100.0, ("Corebook", "Vantix", "Lumio", "Stratos", "Quill")),
    "tablets": ("Tablet", 450.0, ("Slate", "Novu", "Paperly", "Orbit", "Tabula")),
    "audio": ("Headphones", 150.0, ("Sonora", "Bassline", "Echo", "Auralis", "Tempo")),
    "cameras": ("Camera", 800.0, ("Optix", "Fotona", "Lensa", "Shutterly", "Prism")),
    "gaming": ("Controller", 70.0, ("Pixel Forge", "Arcadia", "Quest", "Nexa", "Rumble")),
    "wearables": ("Smartwatch", 250.0, ("Pulse", "Stride", "Orbit", "Vita", "Kinetic")),
    "smart_home": ("Smart Speaker", 90.0, ("Hearth", "Nestle", "Domo", "Lumio", "Haven")),
    "tv": ("4K TV", 700.0, ("Vistara", "Panora", "Cinemax", "Lumio", "Brightline")),
    "accessories": ("USB-C Charger", 30.0, ("Voltix", "Cablo", "Anchor", "Juicebox", "Linkit")),
}
_MODEL_LETTERS = np.array(list("AEGKLMPRSTVXZ"))
_MODEL_SUFFIXES = np.array(["", "", "", " Pro", " Max", " Lite", " Mini", " Plus", " Ultra", " SE"])
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]


@dataclass(frozen=True)
class SeedData:
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame


def generate(
    *,
    tenant: str,
    interval_start: datetime,
    interval_end: datetime,
    seed: int,
    n_users: int = 10_000,
    n_items: int = 5_000,
    n_interactions: int = 100_000,
) -> SeedData:
    """Generate a tenant's catalog, users and interactions inside [interval_start, interval_end)."""
    start, end = _utc(interval_start, "interval_start"), _utc(interval_end, "interval_end")
    if not tenant:
        raise ValueError("tenant must be a non-empty string")
    if end <= start:
        raise ValueError(f"interval_end must be after interval_start, got [{start.isoformat()}, {end.isoformat()})")
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_interactions", n_interactions)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    seconds = int((end - start).total_seconds())
    run_key = f"{tenant}|{start.isoformat()}|{seed}"
    rng = np.random.default_rng(_key_int(run_key))

    item_cat = rng.integers(0, len(CATEGORIES), size=n_items)
    items = _items(rng, tenant=tenant, item_cat=item_cat)
    users = _users(rng, n_users=n_users, start=start)

    counts = _events_per_user(rng, n_users=n_users, n_interactions=n_interactions)
    if counts.max() > seconds:
        raise ValueError(
            f"interval [{start.isoformat()}, {end.isoformat()}) has {seconds} whole seconds; need at least"
            f" one per event of the busiest user ({counts.max()}) to keep per-user timestamps strictly increasing"
        )
    user_idx = np.repeat(np.arange(n_users), counts)
    item_idx = _draw_items(rng, item_cat=item_cat, user_idx=user_idx, n_users=n_users)
    offsets = _per_user_increasing_seconds(rng, user_idx=user_idx, counts=counts, seconds=seconds)
    kind = rng.choice(len(INTERACTION_MIX), size=n_interactions, p=list(INTERACTION_MIX.values()))

    # The log is chronological (ties broken by user, then the user's own order), as a platform stores it.
    order = np.lexsort((np.arange(n_interactions), user_idx, offsets))
    id_key = f"{run_key}|{n_users}|{n_items}|{n_interactions}|event_id"
    interactions = pd.DataFrame(
        {
            "event_id": _uuids(id_key, n_interactions),
            "user_id": users["user_id"].to_numpy()[user_idx[order]],
            "item_id": items["item_id"].to_numpy()[item_idx[order]],
            "interaction_type": np.array(list(INTERACTION_MIX))[kind[order]],
            "timestamp": _iso_seconds(start, offsets[order]),
        },
        columns=list(INTERACTION_COLUMNS),
    )
    return SeedData(items=items, users=users, interactions=interactions)


def write_csv(seed_data: SeedData, directory: str) -> dict[str, str]:
    """Write items.csv, users.csv, interactions.csv; returns name -> path. Bytes are deterministic."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name in ("items", "users", "interactions"):
        path = os.path.join(directory, f"{name}.csv")
        getattr(seed_data, name).to_csv(path, index=False, lineterminator="\n", float_format="%.2f")
        paths[name] = path
    return paths


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _key_int(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "big")


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(5, len(str(n)))
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _items(rng: np.random.Generator, *, tenant: str, item_cat: np.ndarray) -> pd.DataFrame:
    n = len(item_cat)
    item_ids = _ids("item_", n)
    nouns = np.array([_CATALOG[c][0] for c in CATEGORIES])
    brands = np.array([_CATALOG[c][2] for c in CATEGORIES])[item_cat, rng.integers(0, 5, size=n)]
    model = np.char.add(
        np.char.add(
            _MODEL_LETTERS[rng.integers(0, len(_MODEL_LETTERS), size=n)], rng.integers(1, 100, size=n).astype(str)
        ),
        _MODEL_SUFFIXES[rng.integers(0, len(_MODEL_SUFFIXES), size=n)],
    )
    titles = np.char.add(np.char.add(np.char.add(brands, " "), np.char.add(nouns[item_cat], " ")), model)
    typical = np.array([_CATALOG[c][1] for c in CATEGORIES])[item_cat]
    prices = np.maximum(np.round(typical * rng.lognormal(0.0, 0.35, size=n), 2), 0.99)
    return pd.DataFrame(
        {
            "item_id": item_ids,
            "title": titles,
            "category": np.array(CATEGORIES)[item_cat],
            "price": prices,
            "image_url": np.char.add(np.char.add(f"https://img.example.com/{tenant}/", item_ids), ".jpg"),
        },
        columns=list(ITEM_COLUMNS),
    )


def _users(rng: np.random.Generator, *, n_users: int, start: datetime) -> pd.DataFrame:
    weights = np.array(list(COUNTRIES.values()), dtype=float)
    country = rng.choice(np.array(list(COUNTRIES)), size=n_users, p=weights / weights.sum())
    signup = np.datetime64(start.date(), "D") - rng.integers(1, MAX_SIGNUP_AGE_DAYS + 1, size=n_users)
    return pd.DataFrame(
        {"user_id": _ids("user_", n_users), "country": country, "signup_date": np.datetime_as_string(signup, unit="D")},
        columns=list(USER_COLUMNS),
    )


def _events_per_user(rng: np.random.Generator, *, n_users: int, n_interactions: int) -> np.ndarray:
    """A floor of events per user (everyone shows up when feasible) plus a heavy-tailed activity skew."""
    floor = min(MIN_EVENTS_PER_USER, n_interactions // n_users)
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    return floor + rng.multinomial(n_interactions - floor * n_users, activity / activity.sum())


def _draw_items(rng: np.random.Generator, *, item_cat: np.ndarray, user_idx: np.ndarray, n_users: int) -> np.ndarray:
    n_items = len(item_cat)
    # Clusters: items of one category, shuffled, cut into runs of ~ITEMS_PER_CLUSTER.
    by_cat = np.lexsort((rng.random(n_items), item_cat))
    cat_sorted = item_cat[by_cat]
    pos_in_cat = np.arange(n_items) - np.searchsorted(cat_sorted, cat_sorted)
    cluster_key = cat_sorted * n_items + pos_in_cat // ITEMS_PER_CLUSTER
    _, cluster_sorted = np.unique(cluster_key, return_inverse=True)
    n_clusters = int(cluster_sorted.max()) + 1
    cluster_cat = np.zeros(n_clusters, dtype=np.int64)
    cluster_cat[cluster_sorted] = cat_sorted

    # Items sorted by cluster (by_cat already is); within-cluster Zipf weights over a random rank.
    first_in_cluster = np.searchsorted(cluster_sorted, np.arange(n_clusters))
    rank = np.arange(n_items) - first_in_cluster[cluster_sorted]
    within = 1.0 / (1.0 + rank) ** WITHIN_CLUSTER_ZIPF
    within_sum = np.bincount(cluster_sorted, weights=within, minlength=n_clusters)
    within /= within_sum[cluster_sorted]
    # Per-cluster CDFs laid end to end, cluster c spanning (c, c + 1]: one searchsorted samples any cluster.
    cumulative = np.cumsum(within)
    shifted_cdf = cumulative - (cumulative - within)[first_in_cluster][cluster_sorted] + cluster_sorted
    shifted_cdf[np.r_[first_in_cluster[1:] - 1, n_items - 1]] = np.arange(1, n_clusters + 1)
    cluster_pop = rng.lognormal(0.0, 0.9, size=n_clusters)

    # Segments prefer two categories; each user takes a main and a side cluster from them.
    segment_cats = np.stack([rng.permutation(len(CATEGORIES))[:2] for _ in range(N_SEGMENTS)])
    user_cats = segment_cats[rng.integers(0, N_SEGMENTS, size=n_users)]
    tastes = np.stack([_pick_clusters(rng, cluster_cat, cluster_pop, user_cats[:, j]) for j in range(2)], axis=1)

    n = len(user_idx)
    main = rng.random(n) < MAIN_TASTE_SHARE
    taste_cluster = np.where(main, tastes[user_idx, 0], tastes[user_idx, 1])
    taste_pos = np.searchsorted(shifted_cdf, taste_cluster + rng.random(n), side="right")
    global_weight = within * cluster_pop[cluster_sorted]
    global_cdf = np.cumsum(global_weight / global_weight.sum())
    noise_pos = np.searchsorted(global_cdf, rng.random(n) * global_cdf[-1], side="right")
    pos = np.minimum(np.where(rng.random(n) < TASTE_SHARE, taste_pos, noise_pos), n_items - 1)
    return by_cat[_cover_missing_items(rng, pos, cluster_of=cluster_sorted, is_head=rank == 0)]


def _cover_missing_items(
    rng: np.random.Generator, pos: np.ndarray, *, cluster_of: np.ndarray, is_head: np.ndarray
) -> np.ndarray:
    """Give every item nobody drew one event, taken from a random event on its cluster's head item.

    The taste structure survives (the event stays in the cluster) and a fresh catalog has no
    items without history; a cluster keeps at least one event on its head item, so items of
    clusters nobody likes may stay uncovered.
    """
    n_clusters = int(cluster_of.max()) + 1
    missing = np.flatnonzero(np.bincount(pos, minlength=len(cluster_of)) == 0)  # grouped by cluster
    head_events = rng.permutation(np.flatnonzero(is_head[pos]))
    head_events = head_events[np.argsort(cluster_of[pos[head_events]], kind="stable")]
    per_cluster = np.bincount(cluster_of[pos[head_events]], minlength=n_clusters)
    first = np.cumsum(per_cluster) - per_cluster
    missing_cluster = cluster_of[missing]
    nth = np.arange(len(missing)) - np.searchsorted(missing_cluster, missing_cluster)
    feasible = nth < per_cluster[missing_cluster] - 1
    covered = pos.copy()
    covered[head_events[first[missing_cluster[feasible]] + nth[feasible]]] = missing[feasible]
    return covered


def _pick_clusters(
    rng: np.random.Generator, cluster_cat: np.ndarray, cluster_pop: np.ndarray, want_cat: np.ndarray
) -> np.ndarray:
    """For each user, one cluster of the wanted category, weighted by cluster popularity."""
    order = np.argsort(cluster_cat, kind="stable")
    cat_of = cluster_cat[order]
    cdf = np.cumsum(cluster_pop[order])
    lo = np.searchsorted(cat_of, want_cat, side="left")
    hi = np.searchsorted(cat_of, want_cat, side="right")
    # A category may have no cluster on tiny catalogs; fall back to any cluster then.
    empty = lo == hi
    lo, hi = np.where(empty, 0, lo), np.where(empty, len(order), hi)
    base = np.where(lo > 0, cdf[lo - 1], 0.0)
    target = base + rng.random(len(want_cat)) * (cdf[hi - 1] - base)
    return order[np.minimum(np.searchsorted(cdf, target, side="right"), hi - 1)]


def _per_user_increasing_seconds(
    rng: np.random.Generator, *, user_idx: np.ndarray, counts: np.ndarray, seconds: int
) -> np.ndarray:
    """Distinct whole-second offsets in [0, seconds), increasing within each user's events.

    Sorted draws x_0 <= ... <= x_{n-1} from [0, seconds - n) plus their rank are strictly increasing
    and stay below ``seconds``: a uniform draw of n distinct seconds, without a per-user loop.
    """
    span = seconds - counts[user_idx]
    draws = np.floor(rng.random(len(user_idx)) * span).astype(np.int64)
    draws = draws[np.lexsort((draws, user_idx))]  # user_idx is already grouped by user
    rank = np.arange(len(user_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    return draws + rank


def _iso_seconds(start: datetime, offsets: np.ndarray) -> np.ndarray:
    base = np.datetime64(start.replace(tzinfo=None), "s")
    return np.char.add(np.datetime_as_string(base + offsets, unit="s"), "Z")


def _uuids(key: str, n: int) -> np.ndarray:
    """RFC 9562 version-8 UUIDs from a SHA-256-keyed PCG64 stream: row i of a run always gets the same id.

    uuid5 per row costs seconds at 1M rows; raw PCG64 output is stable across platforms and numpy
    versions, and 122 random bits make collisions across tenants and days negligible.
    """
    raw = np.random.PCG64(_key_int(key)).random_raw(2 * n).astype("<u8").view(np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x80
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 0x0F
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = _HEX[nibbles]
    return text.view("S36").ravel().astype("U36")
