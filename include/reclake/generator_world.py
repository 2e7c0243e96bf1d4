"""The simulated world behind the event generator: users, the item catalog, new items per hour,
and the constants that shape them. Pure functions of the seed (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

from reclake import contract

HOUR_MS = 3_600_000

CATEGORIES = (
    "music",
    "comedy",
    "gaming",
    "sports",
    "food",
    "travel",
    "beauty",
    "pets",
    "education",
    "news",
    "dance",
    "diy",
)
# Share of the catalog (and of exploratory traffic) per category, in CATEGORIES order.
CATEGORY_WEIGHTS = (0.16, 0.14, 0.12, 0.09, 0.08, 0.06, 0.07, 0.07, 0.05, 0.05, 0.07, 0.04)

COUNTRIES = ("US", "BR", "IN", "ID", "MX", "GB", "DE", "FR", "JP", "NG")
COUNTRY_WEIGHTS = (0.22, 0.14, 0.16, 0.10, 0.08, 0.07, 0.06, 0.06, 0.06, 0.05)
DEVICE_WEIGHTS = (0.55, 0.35, 0.10)  # contract.DEVICES order
AGE_WEIGHTS = (0.12, 0.34, 0.28, 0.15, 0.11)  # contract.AGE_BUCKETS order

# Traffic per UTC hour relative to the daily mean (the 24 values average exactly 1):
# trough around 06:00, peak around 18:00.
DIURNAL = tuple(float(1.0 + 0.55 * np.cos(2 * np.pi * (h - 18) / 24)) for h in range(24))

# The back catalog and every user exist before events start; events are generated from
# EVENTS_EPOCH on so that no event precedes its user's sign-up or its item's publication.
BACK_CATALOG_START = datetime(2025, 1, 1, tzinfo=UTC)
EVENTS_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

USER_ACTIVITY_ZIPF = 0.9
ITEM_POPULARITY_ZIPF = 1.1
CREATOR_ZIPF = 1.0
ITEMS_PER_CREATOR = 8
# Dirichlet concentration of a user's category taste: small means a few favourite categories.
AFFINITY_CONCENTRATION = 0.4
DURATION_MEDIAN_MS = 25_000
DURATION_SIGMA = 0.9
DURATION_MIN_MS = 5_000
DURATION_MAX_MS = 180_000

# Independent random streams, so that e.g. the users never depend on an hour's events.
STREAM_WORLD = 0
STREAM_NEW_ITEMS = 1
STREAM_EVENTS = 2
STREAM_DROP_ORDER = 3


def rng_for(seed: int, stream: int, key: int = 0) -> np.random.Generator:
    """A random generator that depends only on (seed, stream, key)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, key]))


def epoch_ms(dt: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class Items:
    """Item attributes as parallel arrays (one row per item)."""

    item_id: np.ndarray  # int64
    category: np.ndarray  # int64 index into CATEGORIES
    duration_ms: np.ndarray  # int64
    creator_id: np.ndarray  # int64
    created_ms: np.ndarray  # int64, ms since epoch


@dataclass(frozen=True)
class Users:
    """User attributes as parallel arrays; user_id = index + 1."""

    country: np.ndarray  # index into COUNTRIES
    device: np.ndarray  # index into contract.DEVICES
    age: np.ndarray  # index into contract.AGE_BUCKETS
    signup_ms: np.ndarray
    activity_cdf: np.ndarray  # cumulative request probability, for inverse-CDF sampling
    affinity: np.ndarray  # (n_users, n_categories), rows sum to 1


@dataclass(frozen=True)
class World:
    """Users and the back catalog, with samplers for items by category."""

    users: Users
    items: Items  # back catalog, item_id = index + 1
    by_category: np.ndarray  # catalog indices grouped by category
    # Category c's items occupy [c, c+1) of this cumulative popularity, so a draw of
    # c + U(0,1) picks an item of category c by popularity with one searchsorted.
    category_cdf: np.ndarray
    category_share_cdf: np.ndarray
    # User k's cumulative affinity shifted to [k, k+1], flattened, for one-pass sampling.
    affinity_steps: np.ndarray


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Heavy-tailed weights 1/rank^exponent, assigned to entities in random order."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights[rng.permutation(n)]


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _durations(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.lognormal(np.log(DURATION_MEDIAN_MS), DURATION_SIGMA, n)
    return np.clip(raw, DURATION_MIN_MS, DURATION_MAX_MS).astype(np.int64)


def _creators(rng: np.random.Generator, n: int, n_creators: int) -> np.ndarray:
    cdf = _cdf(1.0 / np.arange(1, n_creators + 1, dtype=np.float64) ** CREATOR_ZIPF)
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64) + 1


@lru_cache(maxsize=4)
def build_world(seed: int, n_users: int, n_items: int) -> World:
    """Users and back catalog for a seed (cached: every hour of a run shares them)."""
    if n_users < 1 or n_items < 1:
        raise ValueError("the world needs at least one user and one item")
    rng = rng_for(seed, STREAM_WORLD)
    n_cat = len(CATEGORIES)
    since = epoch_ms(BACK_CATALOG_START)
    span = epoch_ms(EVENTS_EPOCH) - since

    users = Users(
        country=rng.choice(len(COUNTRIES), n_users, p=COUNTRY_WEIGHTS),
        device=rng.choice(len(contract.DEVICES), n_users, p=DEVICE_WEIGHTS),
        age=rng.choice(len(contract.AGE_BUCKETS), n_users, p=AGE_WEIGHTS),
        signup_ms=since + rng.integers(0, span, n_users),
        activity_cdf=_cdf(_zipf_weights(rng, n_users, USER_ACTIVITY_ZIPF)),
        affinity=rng.dirichlet(np.full(n_cat, AFFINITY_CONCENTRATION), n_users),
    )

    category = rng.choice(n_cat, n_items, p=CATEGORY_WEIGHTS)
    popularity = _zipf_weights(rng, n_items, ITEM_POPULARITY_ZIPF)
    items = Items(
        item_id=np.arange(1, n_items + 1, dtype=np.int64),
        category=category,
        duration_ms=_durations(rng, n_items),
        creator_id=_creators(rng, n_items, max(1, n_items // ITEMS_PER_CREATOR)),
        created_ms=since + rng.integers(0, span, n_items),
    )

    by_category = np.argsort(category, kind="stable")
    sorted_cat = category[by_category]
    sorted_pop = popularity[by_category]
    category_cdf = np.empty(n_items, dtype=np.float64)
    for c in range(n_cat):
        members = sorted_cat == c
        if members.any():
            category_cdf[members] = c + _cdf(sorted_pop[members])
    category_share_cdf = _cdf(np.asarray(CATEGORY_WEIGHTS))
    steps = (np.cumsum(users.affinity, axis=1) + np.arange(n_users)[:, None]).ravel()
    return World(users, items, by_category, category_cdf, category_share_cdf, steps)


@lru_cache(maxsize=1024)  # each hour's items are reused by the next FRESH_WINDOW_HOURS hours
def new_items(seed: int, n_items: int, per_hour: int, hour_index: int) -> Items:
    """The items published during one hour (hours since the Unix epoch); ids never collide."""
    rng = rng_for(seed, STREAM_NEW_ITEMS, hour_index)
    first_id = n_items + 1 + hour_index * per_hour
    offsets = np.sort(rng.integers(0, HOUR_MS, per_hour))
    return Items(
        item_id=np.arange(first_id, first_id + per_hour, dtype=np.int64),
        category=rng.choice(len(CATEGORIES), per_hour, p=CATEGORY_WEIGHTS),
        duration_ms=_durations(rng, per_hour),
        creator_id=_creators(rng, per_hour, max(1, n_items // ITEMS_PER_CREATOR)),
        created_ms=hour_index * HOUR_MS + offsets,
    )


def concat_items(parts: list[Items]) -> Items:
    """One Items holding the rows of several, in order."""
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return Items(empty, empty, empty, empty, empty)
    return Items(
        *(np.concatenate([getattr(p, name) for p in parts]) for name in Items.__dataclass_fields__)
    )
