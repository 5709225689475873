"""Realistic tenants' logs, each in its tenant's own layout, for the bring-your-own-data journey tests.

    python -m tests.data.tenant_logs OUT_DIR [--scale 1.0]     # writes all three, prints the DAG conf of each

None of them looks like the contract or the generator: their own column names, ids, vocabularies and formats,
with the shape real logs have (popularity skewed by a power law, long-tailed user activity, tastes that
concentrate on a few genres / styles / departments, noise from global popularity). Deterministic in a seed.

- **ratings**: a movie-ratings log as TSV (``userId movieId rating timestamp``), integer ratings 1-5 (4 the most
  common), epoch-second timestamps over several years, no event ids; a catalog TSV whose categories are
  pipe-joined genres (``Comedy|Romance``), titles with the year.
- **listening**: a listening log as Parquet (``user`` sha1 hex, ``artist_mbid`` UUID, ``artist_name``, ``plays``),
  one row per user and artist with a play count, no timestamps, no categories; a catalog Parquet of artists.
- **retail**: a web shop's event log as gzip'd CSV (``event_uuid, event_time, customer_no, sku, action,
  order_ref``) with naive local times (Europe/Berlin, across the switch to summer time) and the shop's own
  actions (``detail_view``, ``list_click``, ``basket_add``, ``order``); a gzip'd catalog with departments and
  prices in euros. ``week`` 2 is the next week: some products discontinued, new ones listed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

GENRES = (
    "Drama",
    "Comedy",
    "Thriller",
    "Action",
    "Romance",
    "Adventure",
    "Crime",
    "Sci-Fi",
    "Horror",
    "Children",
    "Animation",
    "Mystery",
    "Fantasy",
    "Documentary",
    "War",
    "Musical",
    "Western",
    "Film-Noir",
)
STYLES = 14  # latent music styles (the listening log names none)
DEPARTMENTS = (
    "Home & Kitchen",
    "Garden",
    "Tools",
    "Lighting",
    "Bathroom",
    "Storage",
    "Textiles",
    "Pet Supplies",
    "Office",
    "Outdoor Living",
)
_WORDS = (
    "night",
    "river",
    "last",
    "silent",
    "golden",
    "city",
    "return",
    "dark",
    "summer",
    "road",
    "blue",
    "heart",
    "winter",
    "secret",
    "lost",
    "iron",
    "wild",
    "glass",
    "stone",
    "paper",
    "echo",
    "velvet",
    "north",
    "fire",
)
SHOP_ACTIONS = ("detail_view", "list_click", "basket_add", "order")
RATINGS_MAP = {"5": "purchase", "4": "add_to_cart", "3": "click", "2": "view", "1": "view"}
RETAIL_MAP = dict(zip(SHOP_ACTIONS, ("view", "click", "add_to_cart", "purchase"), strict=True))


@dataclass(frozen=True)
class TenantLog:
    """One tenant's two files and the DAG params that map them (everything else default)."""

    interactions: str
    items: str
    conf: dict

    def dag_conf(self, inbox: str) -> dict:
        """The conf with the files named relative to ``inbox``, as an operator would give them."""
        rel = {k: os.path.relpath(getattr(self, k), inbox) for k in ("interactions", "items")}
        return {**self.conf, "interactions_uri": rel["interactions"], "items_uri": rel["items"]}


def _activity(rng: np.random.Generator, n_users: int, *, median: float, low: int, high: int) -> np.ndarray:
    """Events per user: log-normal, so most users do little and a few do a lot."""
    return np.clip(np.round(rng.lognormal(np.log(median), 0.9, n_users)), low, high).astype(int)


def _popularity(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Zipf-like weights in a random order, so item ids say nothing about popularity."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights)


def _draw(rng, *, n_users, n_items, item_topic, n_topics, per_user, topics_per_user, noise, exponent):
    """(user, item) draws: each user favours a few topics, picks items in them by popularity, and sometimes
    anything popular. Returns int arrays of equal length."""
    popularity = _popularity(rng, n_items, exponent)
    by_topic = [np.flatnonzero(item_topic == t) for t in range(n_topics)]
    topic_weights = [popularity[ix] / popularity[ix].sum() for ix in by_topic]
    global_weights = popularity / popularity.sum()
    users, items = [], []
    for user in range(n_users):
        n = per_user[user]
        liked = rng.choice(n_topics, size=topics_per_user, replace=False)
        share = rng.dirichlet(np.full(topics_per_user, 1.5))
        from_taste = rng.random(n) >= noise
        topics = liked[rng.choice(topics_per_user, size=n, p=share)]
        picked = np.empty(n, dtype=int)
        for i in range(n):
            t = topics[i]
            if from_taste[i] and len(by_topic[t]):
                picked[i] = rng.choice(by_topic[t], p=topic_weights[t])
            else:
                picked[i] = rng.choice(n_items, p=global_weights)
        users.append(np.full(n, user))
        items.append(picked)
    return np.concatenate(users), np.concatenate(items)


def _title(rng: np.random.Generator) -> str:
    words = rng.choice(_WORDS, size=rng.integers(1, 4), replace=False)
    return " ".join(w.capitalize() for w in words)


def ratings(out_dir: str, *, scale: float = 1.0, seed: int = 11) -> TenantLog:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(500 * scale), int(420 * scale)
    movie_ids = np.sort(rng.choice(np.arange(1, 12 * n_items), size=n_items, replace=False))
    primary = rng.choice(len(GENRES), size=n_items, p=_genre_shares())
    genres = []
    for g in primary:
        extra = rng.choice(len(GENRES), size=rng.choice([0, 1, 2], p=[0.45, 0.4, 0.15]), replace=False)
        genres.append("|".join(dict.fromkeys(GENRES[i] for i in (g, *extra))))
    years = rng.integers(1950, 2016, n_items)
    movies = pd.DataFrame(
        {"movieId": movie_ids, "title": [f"{_title(rng)} ({y})" for y in years], "genres": genres, "year": years}
    )
    per_user = _activity(rng, n_users, median=34, low=8, high=400)
    users, items = _draw(
        rng,
        n_users=n_users,
        n_items=n_items,
        item_topic=primary,
        n_topics=len(GENRES),
        per_user=per_user,
        topics_per_user=3,
        noise=0.12,
        exponent=0.9,
    )
    frame = pd.DataFrame({"u": users, "i": items}).drop_duplicates()  # one rating per user and movie
    stars = np.clip(np.round(rng.normal(3.6, 0.95, len(frame))), 1, 5).astype(int)
    user_ids = rng.permutation(np.arange(1, n_users + 1))
    # Each user rates in a few sittings somewhere between 1997 and 2018.
    first = rng.integers(852_076_800, 1_514_764_800, n_users)
    offsets = rng.exponential(86_400 * 20, len(frame)).astype(np.int64)
    log = pd.DataFrame(
        {
            "userId": user_ids[frame["u"]],
            "movieId": movie_ids[frame["i"]],
            "rating": stars,
            "timestamp": first[frame["u"]] + offsets,
        }
    ).sort_values(["userId", "timestamp"], kind="stable")
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, "ratings.tsv"), os.path.join(out_dir, "movies.tsv")
    log.to_csv(paths[0], sep="\t", index=False)
    movies.to_csv(paths[1], sep="\t", index=False)
    conf = {
        "columns": {
            "interactions": {"user_id": "userId", "item_id": "movieId", "interaction_type": "rating"},
            "items": {"item_id": "movieId", "category": "genres"},
        },
        "interaction_type_map": RATINGS_MAP,
    }
    return TenantLog(interactions=paths[0], items=paths[1], conf=conf)


def _genre_shares() -> np.ndarray:
    shares = 1.0 / np.arange(1, len(GENRES) + 1) ** 0.8  # drama and comedy dominate, film-noir is rare
    return shares / shares.sum()


def listening(out_dir: str, *, scale: float = 1.0, seed: int = 23) -> TenantLog:
    rng = np.random.default_rng(seed)
    n_users, n_artists = int(450 * scale), int(500 * scale)
    style = rng.integers(0, STYLES, n_artists)
    mbids = [_uuid(rng) for _ in range(n_artists)]
    names = [_title(rng) if rng.random() < 0.6 else f"The {_title(rng)}s" for _ in range(n_artists)]
    per_user = _activity(rng, n_users, median=45, low=6, high=300)
    users, artists = _draw(
        rng,
        n_users=n_users,
        n_items=n_artists,
        item_topic=style,
        n_topics=STYLES,
        per_user=per_user,
        topics_per_user=2,
        noise=0.15,
        exponent=1.0,
    )
    # The log is aggregated: one row per user and artist, with how often the user played them.
    plays = pd.DataFrame({"u": users, "a": artists}).value_counts().rename("n").reset_index()
    plays["plays"] = (plays["n"] * rng.lognormal(2.5, 1.0, len(plays))).astype(np.int64) + 1
    user_keys = [hashlib.sha1(f"listener-{seed}-{u}".encode()).hexdigest() for u in range(n_users)]
    log = pd.DataFrame(
        {
            "user": np.array(user_keys)[plays["u"]],
            "artist_mbid": np.array(mbids)[plays["a"]],
            "artist_name": np.array(names)[plays["a"]],
            "plays": plays["plays"],
        }
    ).sample(frac=1.0, random_state=seed)
    catalog = pd.DataFrame({"artist_mbid": mbids, "artist_name": names})
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, "listening.parquet"), os.path.join(out_dir, "artists.parquet")
    log.to_parquet(paths[0], index=False)
    catalog.to_parquet(paths[1], index=False)
    conf = {
        "columns": {
            "interactions": {"user_id": "user", "item_id": "artist_mbid"},
            "items": {"item_id": "artist_mbid", "title": "artist_name"},
        },
    }
    return TenantLog(interactions=paths[0], items=paths[1], conf=conf)


def _uuid(rng: np.random.Generator) -> str:
    h = "".join(rng.choice(list("0123456789abcdef"), 32))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def retail(out_dir: str, *, scale: float = 1.0, seed: int = 37, week: int = 1) -> TenantLog:
    """``week`` 2: the following week's log and catalog, with about a tenth of the products replaced."""
    rng = np.random.default_rng(seed)
    n_customers, n_products = int(480 * scale), int(360 * scale)
    skus = rng.choice(np.arange(10_000, 99_999), size=int(n_products * 1.2), replace=False)
    department = rng.integers(0, len(DEPARTMENTS), len(skus))
    listed = np.arange(n_products) if week == 1 else np.r_[int(n_products * 0.1) : int(n_products * 1.1)]
    week_rng = np.random.default_rng(seed + week)
    per_user = _activity(week_rng, n_customers, median=30, low=4, high=250)
    users, picks = _draw(
        week_rng,
        n_users=n_customers,
        n_items=len(listed),
        item_topic=department[listed],
        n_topics=len(DEPARTMENTS),
        per_user=per_user,
        topics_per_user=2,
        noise=0.15,
        exponent=0.8,
    )
    products = listed[picks]
    # The funnel: most events are views, a few end in an order.
    actions = week_rng.choice(len(SHOP_ACTIONS), size=len(users), p=[0.62, 0.24, 0.1, 0.04])
    start = datetime(2026, 3, 23) + timedelta(days=7 * (week - 1))
    seconds = np.sort(week_rng.integers(0, 7 * 86_400, len(users)))
    times = [(start + timedelta(seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S") for s in seconds]
    order = week_rng.permutation(len(users))
    log = pd.DataFrame(
        {
            "event_uuid": [_uuid(week_rng) for _ in range(len(users))],
            "event_time": times,
            "customer_no": [f"C{100_000 + u:06d}" for u in users[order]],
            "sku": [f"SKU-{skus[p]}" for p in products[order]],
            "action": np.array(SHOP_ACTIONS)[actions],
            "order_ref": [f"ORD-{week_rng.integers(1e6, 9e6)}" if a == 3 else "" for a in actions],
        }
    )
    prices = np.round(np.exp(rng.normal(3.0, 0.8, len(skus))), 2)
    catalog = pd.DataFrame(
        {
            "sku": [f"SKU-{skus[p]}" for p in listed],
            "product_name": [f"{_title(rng)} {DEPARTMENTS[department[p]].split()[0]}" for p in listed],
            "department": [DEPARTMENTS[department[p]] for p in listed],
            "unit_price_eur": [f"{prices[p]:.2f}" for p in listed],
        }
    )
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, f"shop_events_w{week}.csv.gz"), os.path.join(out_dir, f"shop_catalog_w{week}.csv.gz")
    for frame, path in ((log, paths[0]), (catalog, paths[1])):
        with gzip.GzipFile(path, "wb", mtime=0) as fh:  # mtime=0: the same bytes every time
            fh.write(frame.to_csv(index=False).encode())
    conf = {
        "columns": {
            "interactions": {
                "event_id": "event_uuid",
                "timestamp": "event_time",
                "user_id": "customer_no",
                "item_id": "sku",
                "interaction_type": "action",
            },
            "items": {"item_id": "sku", "title": "product_name", "category": "department", "price": "unit_price_eur"},
        },
        "interaction_type_map": RETAIL_MAP,
        "timezone": "Europe/Berlin",
    }
    return TenantLog(interactions=paths[0], items=paths[1], conf=conf)


BUILDERS = {"ratings": ratings, "listening": listening, "retail": retail}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    for name, build in BUILDERS.items():
        log = build(args.out_dir, scale=args.scale)
        print(f"{name}: {json.dumps(log.dag_conf(args.out_dir))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
