"""Simulation of one request hour: feed requests, their impressions, the actions that follow,
and the delivery fate of every event (fault, lateness, redelivery). Pure numpy, no I/O.

An hour's events are a pure function of (seed, hour), so any interval can be generated
independently of the others and the results compose."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reclake import contract
from reclake.generator_config import GeneratorConfig
from reclake.generator_faults import BAD_FIELD_KINDS, MALFORMED_KINDS
from reclake.generator_world import (
    CATEGORIES,
    DIURNAL,
    HOUR_MS,
    STREAM_EVENTS,
    Items,
    World,
    build_world,
    concat_items,
    new_items,
    rng_for,
)

IMPRESSION, PLAY, LIKE, SHARE, SKIP = (
    contract.EVENT_TYPES.index(t) for t in ("impression", "play", "like", "share", "skip")
)

FATE_VALID, FATE_MALFORMED, FATE_BAD_FIELD = 0, 1, 2

MIN_IMPRESSIONS, MAX_IMPRESSIONS = 3, 12  # items shown per feed request
SCROLL_MS = 1_200  # time between two positions of a feed page
EXPLORE_SHARE = 0.2  # impressions picked by global category share, not the user's taste
FRESH_SHARE = 0.03  # impressions of items published in the last FRESH_WINDOW_HOURS
FRESH_WINDOW_HOURS = 48
DEDUPE_ROUNDS = 3  # re-draws of an item already shown in the same request

# Action model: base rates at position 0 for a neutral-affinity user, decaying with position
# and scaled by the user's affinity for the item's category.
POSITION_DECAY = 0.93
PLAY_RATE = 0.30
SKIP_RATE = 0.35  # of the impressions not played
LIKE_RATE = 0.10  # of plays
SHARE_RATE = 0.02  # of plays
AFFINITY_FACTOR_RANGE = (0.3, 3.0)
WATCH_SHAPE = 0.6  # watch ratio ~ Beta(WATCH_SHAPE * affinity factor, 1)
# A small share of actions come back much later (beyond the 30 min attribution window).
REVISIT_SHARE = 0.02
REVISIT_MS = (31 * 60_000, 45 * 60_000)
MAX_ACTION_DELAY_MS = 50 * 60_000
# Impressions start inside the request hour and actions end < 1 h later, so an event's hour
# is its request hour or the next one.
ACTION_SPILL_HOURS = 1

LATE_HOURS = (1, 2)  # within the default allowed lateness
TOO_LATE_HOURS = (3, 6)
REDELIVERY_LATER_SHARE = 0.3  # redelivered copies that land one drop after the original
MAX_REDELIVERY_HOURS = 1
# The request hours that can contribute lines to one arrival hour's drop.
LOOKBACK_HOURS = ACTION_SPILL_HOURS + TOO_LATE_HOURS[1] + MAX_REDELIVERY_HOURS

# Mean landing lines per request under the model above; converts events_per_hour into a request
# rate (measured over many hours, see tests/unit/test_generator.py).
LINES_PER_REQUEST = 12.44


@dataclass(frozen=True)
class EventBatch:
    """Every event of one request hour, as parallel arrays, with its delivery fate."""

    hour_index: int  # hours since the Unix epoch
    event_type: np.ndarray  # index into contract.EVENT_TYPES
    time_ms: np.ndarray
    user_id: np.ndarray
    item_id: np.ndarray
    request: np.ndarray  # row of request_ids
    position: np.ndarray  # -1 when absent (actions)
    watch_ms: np.ndarray  # -1 when absent (not a play)
    duration_ms: np.ndarray  # duration of the item (for checks, never written)
    event_ids: np.ndarray  # (n, 16) uint8, rendered as 32 hex chars
    request_ids: np.ndarray  # (n_requests, 8) uint8, rendered as 16 hex chars
    fate: np.ndarray  # FATE_*
    fault_kind: np.ndarray  # index into BAD_FIELD_KINDS / MALFORMED_KINDS, -1 when valid
    fault_u: np.ndarray  # uniform draw that picks the fault's variant
    lateness: np.ndarray  # arrival hour - event hour
    redelivery: np.ndarray  # -1: no copy; else hours after the original's arrival

    @property
    def arrival_index(self) -> np.ndarray:
        """Arrival hour (hours since the Unix epoch) of each event's original line."""
        return self.time_ms // HOUR_MS + self.lateness


def _later_repeats(keys: np.ndarray) -> np.ndarray:
    """Mask of the rows whose key already occurred at an earlier row."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeat = np.zeros(len(keys), dtype=bool)
    repeat[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
    return repeat


def _pick_items(
    rng: np.random.Generator, world: World, users: np.ndarray, explore: np.ndarray
) -> np.ndarray:
    """Catalog rows for impressions: category by the user's taste (or globally when exploring),
    then an item of that category by popularity."""
    u = rng.random(len(users))
    # User k's cumulative affinity occupies [k, k+1] of affinity_steps: one searchsorted.
    n_cat = len(CATEGORIES)
    personal = np.searchsorted(world.affinity_steps, users + u, side="right") - users * n_cat
    general = np.searchsorted(world.category_share_cdf, u, side="right")
    category = np.minimum(np.where(explore, general, personal), len(CATEGORIES) - 1)
    slot = np.searchsorted(world.category_cdf, category + rng.random(len(users)), side="left")
    return world.by_category[np.minimum(slot, len(world.by_category) - 1)]


def _fresh_pool(config: GeneratorConfig, hour_index: int) -> Items:
    """Items published during the FRESH_WINDOW_HOURS before this hour."""
    if config.new_items_per_hour == 0:
        return concat_items([])
    return concat_items(
        [
            new_items(config.seed, config.n_items, config.new_items_per_hour, h)
            for h in range(hour_index - FRESH_WINDOW_HOURS, hour_index)
        ]
    )


def _delays(rng: np.random.Generator, n: int, median_ms: float, sigma: float) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(median_ms), sigma, n), 100, 600_000).astype(np.int64)


def simulate_hour(config: GeneratorConfig, hour_index: int) -> EventBatch:
    """All events caused by the feed requests of one hour, with their delivery fates."""
    rng = rng_for(config.seed, STREAM_EVENTS, hour_index)
    world = build_world(config.seed, config.n_users, config.n_items)
    fresh = _fresh_pool(config, hour_index)
    base = world.items

    mean_lines = config.events_per_hour * DIURNAL[hour_index % 24]
    n_req = int(rng.poisson(mean_lines / LINES_PER_REQUEST))
    req_user = np.searchsorted(world.users.activity_cdf, rng.random(n_req), side="right")
    req_user = np.minimum(req_user, config.n_users - 1)
    req_time = hour_index * HOUR_MS + rng.integers(0, HOUR_MS, n_req)
    shown = rng.integers(MIN_IMPRESSIONS, MAX_IMPRESSIONS + 1, n_req)

    imp_req = np.repeat(np.arange(n_req), shown)
    starts = np.cumsum(shown) - shown
    position = np.arange(len(imp_req)) - np.repeat(starts, shown)
    user = req_user[imp_req]
    n_imp = len(imp_req)

    # Catalog rows: the back catalog first, then the fresh pool.
    item_row = _pick_items(rng, world, user, rng.random(n_imp) < EXPLORE_SHARE)
    if len(fresh.item_id):
        is_fresh = rng.random(n_imp) < FRESH_SHARE
        item_row[is_fresh] = len(base.item_id) + rng.integers(0, len(fresh.item_id), is_fresh.sum())
    n_rows = len(base.item_id) + len(fresh.item_id)
    # A feed never shows the same item twice in one request: re-draw, then drop what remains.
    for _ in range(DEDUPE_ROUNDS):
        repeat = _later_repeats(imp_req * n_rows + item_row)
        if not repeat.any():
            break
        item_row[repeat] = _pick_items(rng, world, user[repeat], np.ones(repeat.sum(), bool))
    keep = ~_later_repeats(imp_req * n_rows + item_row)
    imp_req, position, user, item_row = imp_req[keep], position[keep], user[keep], item_row[keep]
    n_imp = len(imp_req)

    category = np.concatenate([base.category, fresh.category])[item_row]
    duration = np.concatenate([base.duration_ms, fresh.duration_ms])[item_row]
    item_id = np.concatenate([base.item_id, fresh.item_id])[item_row]
    imp_time = req_time[imp_req] + position * SCROLL_MS + rng.integers(0, SCROLL_MS // 2, n_imp)

    affinity = world.users.affinity[user, category] * len(CATEGORIES)
    factor = np.clip(np.sqrt(affinity), *AFFINITY_FACTOR_RANGE)
    decay = POSITION_DECAY**position
    play = rng.random(n_imp) < np.clip(PLAY_RATE * decay * factor, 0, 0.95)
    skip = ~play & (rng.random(n_imp) < np.clip(SKIP_RATE / factor, 0, 0.9))
    like = play & (rng.random(n_imp) < np.clip(LIKE_RATE * decay * factor, 0, 0.9))
    share = play & (rng.random(n_imp) < np.clip(SHARE_RATE * decay * factor, 0, 0.5))

    # Plays watch a fraction U^(1/a) of the item, a Beta(a, 1) draw: higher affinity, longer.
    watch = np.zeros(n_imp, dtype=np.int64)
    played = np.flatnonzero(play)
    ratio = rng.random(len(played)) ** (1.0 / (WATCH_SHAPE * factor[played]))
    watch[played] = np.floor(ratio * duration[played]).astype(np.int64)
    play_at = imp_time.copy()
    play_at[played] += _delays(rng, len(played), 1_500, 0.8)
    after_watch = play_at + (rng.random(n_imp) * watch).astype(np.int64)
    # (time the action follows, median delay, log-normal sigma)
    delay_after = {
        PLAY: (play_at, 0, 0.0),
        SKIP: (imp_time, 900, 0.5),
        LIKE: (after_watch, 2_000, 1.0),
        SHARE: (after_watch, 4_000, 1.0),
    }
    masks = {PLAY: play, SKIP: skip, LIKE: like, SHARE: share}

    rows = [np.arange(n_imp)]
    types = [np.full(n_imp, IMPRESSION, dtype=np.int8)]
    event_time = [imp_time]
    for kind in (PLAY, SKIP, LIKE, SHARE):
        idx = np.flatnonzero(masks[kind])
        after, median, sigma = delay_after[kind]
        t = after[idx] + (_delays(rng, len(idx), median, sigma) if median else 0)
        revisit = rng.random(len(idx)) < REVISIT_SHARE
        t[revisit] = imp_time[idx[revisit]] + rng.integers(*REVISIT_MS, revisit.sum())
        rows.append(idx)
        types.append(np.full(len(idx), kind, dtype=np.int8))
        event_time.append(np.minimum(t, imp_time[idx] + MAX_ACTION_DELAY_MS))
    row = np.concatenate(rows)
    event_type = np.concatenate(types)
    n = len(row)
    is_imp = event_type == IMPRESSION
    is_play = event_type == PLAY

    fate, fault_kind, fault_u = _fates(rng, config, n)
    return EventBatch(
        hour_index=hour_index,
        event_type=event_type,
        time_ms=np.concatenate(event_time),
        user_id=user[row].astype(np.int64) + 1,
        item_id=item_id[row],
        request=imp_req[row],
        position=np.where(is_imp, position[row], -1),
        watch_ms=np.where(is_play, watch[row], -1),
        duration_ms=duration[row],
        event_ids=np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16),
        request_ids=np.frombuffer(rng.bytes(8 * n_req), dtype=np.uint8).reshape(n_req, 8),
        fate=fate,
        fault_kind=fault_kind,
        fault_u=fault_u,
        lateness=_lateness(rng, config, n),
        redelivery=_redelivery(rng, config, fate),
    )


def _fates(
    rng: np.random.Generator, config: GeneratorConfig, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which events are delivered as malformed or contract-breaking lines, and how."""
    u = rng.random(n)
    fate = np.full(n, FATE_VALID, dtype=np.int8)
    fate[u < config.malformed_rate + config.bad_field_rate] = FATE_BAD_FIELD
    fate[u < config.malformed_rate] = FATE_MALFORMED
    fault_kind = np.full(n, -1, dtype=np.int16)
    for value, kinds in ((FATE_MALFORMED, MALFORMED_KINDS), (FATE_BAD_FIELD, BAD_FIELD_KINDS)):
        hit = fate == value
        fault_kind[hit] = rng.integers(0, len(kinds), hit.sum())
    return fate, fault_kind, rng.random(n)


def _lateness(rng: np.random.Generator, config: GeneratorConfig, n: int) -> np.ndarray:
    """Hours between an event's hour and the drop it lands in."""
    u = rng.random(n)
    lateness = np.zeros(n, dtype=np.int64)
    late = u < config.late_rate
    too_late = ~late & (u < config.late_rate + config.too_late_rate)
    lateness[late] = rng.integers(LATE_HOURS[0], LATE_HOURS[1] + 1, late.sum())
    lateness[too_late] = rng.integers(TOO_LATE_HOURS[0], TOO_LATE_HOURS[1] + 1, too_late.sum())
    return lateness


def _redelivery(rng: np.random.Generator, config: GeneratorConfig, fate: np.ndarray) -> np.ndarray:
    """For valid events sent twice: hours between the original's drop and the copy's drop."""
    n = len(fate)
    copied = (fate == FATE_VALID) & (rng.random(n) < config.duplicate_rate)
    later = rng.random(n) < REDELIVERY_LATER_SHARE
    return np.where(copied, later.astype(np.int64) * MAX_REDELIVERY_HOURS, -1)
