"""Feature definitions in one place: entities, hourly tile aggregations, windows, ratios, the
tracked item categories, the play sequence, and the tile and sample schemas derived from them.

Tiles, samples, docs/features.md and the validation suites all read this module, so adding a
window, an aggregation or a ratio is a one-line change here (see docs/features.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

Kind = Literal["count", "sum", "ratio"]

_IDENT = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Entity:
    """Something features are keyed by; each has one hourly tile table."""

    name: str  # prefix of its sample columns: user_plays_24h
    key: str  # id column in events, tiles and samples
    tile_table: str  # logical TableSpec name in reclake.tables
    category_plays: bool = False  # tiles also count plays per item category
    play_sequence: bool = False  # tiles also keep the hour's last plays (sequence feature)

    @property
    def state_table(self) -> str:
        """Logical name of its rolling window-state table (reclake.tables.WINDOW_STATE_TABLES)."""
        return f"{self.name}_window_state"


@dataclass(frozen=True)
class Aggregation:
    """One hourly partial aggregate over bronze events of one type: a count, or a column sum."""

    name: str
    event_type: str
    sum_of: str | None = None  # None counts the events; else sums this bronze column

    @property
    def kind(self) -> Kind:
        """count or sum."""
        return "count" if self.sum_of is None else "sum"


@dataclass(frozen=True)
class Window:
    """A look-back window of whole hours: [hour(t) - hours, hour(t))."""

    name: str
    hours: int


@dataclass(frozen=True)
class Ratio:
    """A derived feature numerator / denominator of two aggregations in the same window."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class FeatureColumn:
    """A numeric sample feature column, with what validation needs to derive range checks."""

    name: str
    dtype: str  # Spark SQL type
    kind: Kind  # count, sum: integer >= 0, never null; ratio: double >= 0 or null


# Bucket for plays of items whose category is missing or not in the tracked list.
OTHER_CATEGORY = "other"

# Bronze tile column holding the hour's last plays, newest first.
RECENT_PLAYS = "recent_plays"
RECENT_PLAYS_TYPE = "ARRAY<STRUCT<event_time: TIMESTAMP, event_id: STRING, item_id: BIGINT>>"
# The window state's plays, newest first, without event_id: ties (same event_time) only occur
# within one hour, and each hour's plays enter the state already in order, so the state never
# sorts again. The id strings were most of the state's bytes.
STATE_PLAY_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_time", "TIMESTAMP"),
    ("item_id", "BIGINT"),
)
STATE_PLAYS_TYPE = f"ARRAY<STRUCT<{', '.join(f'{n}: {t}' for n, t in STATE_PLAY_FIELDS)}>>"

SAMPLE_KEYS: tuple[tuple[str, str], ...] = (
    ("event_id", "STRING NOT NULL"),
    ("request_id", "STRING NOT NULL"),
    ("user_id", "BIGINT NOT NULL"),
    ("item_id", "BIGINT NOT NULL"),
    ("position", "INT"),
    ("event_time", "TIMESTAMP NOT NULL"),
    ("event_hour", "TIMESTAMP NOT NULL"),
)
SAMPLE_LABELS: tuple[tuple[str, str], ...] = (
    ("played", "BOOLEAN NOT NULL"),
    ("watch_ms", "BIGINT NOT NULL"),
    ("finished", "BOOLEAN NOT NULL"),
    ("liked", "BOOLEAN NOT NULL"),
    ("shared", "BOOLEAN NOT NULL"),
    ("skipped", "BOOLEAN NOT NULL"),
)
# Static attributes from the dimensions (current values; null when the id is unknown there).
SAMPLE_STATIC: tuple[tuple[str, str], ...] = (
    ("item_category", "STRING"),
    ("item_duration_ms", "BIGINT"),
    ("item_age_hours", "DOUBLE"),
    ("user_country", "STRING"),
    ("user_device", "STRING"),
    ("user_age_bucket", "STRING"),
)
SEQUENCE_COLUMN = "user_last_played"
SEQUENCE_LEN_COLUMN = "user_last_played_len"
ITEM_CATEGORY_PLAYS = "plays_item_category"  # user's plays in the impression item's category


@dataclass(frozen=True)
class FeatureDefinitions:
    """The full feature set; derive a variant with `with_window` / `with_aggregation`."""

    entities: tuple[Entity, ...]
    aggregations: tuple[Aggregation, ...]
    windows: tuple[Window, ...]
    ratios: tuple[Ratio, ...]
    categories: tuple[str, ...]  # tracked item categories; the rest count as OTHER_CATEGORY
    category_windows: tuple[Window, ...]
    sequence_length: int
    sequence_lookback_hours: int

    def __post_init__(self) -> None:
        names = [a.name for a in self.aggregations]
        for ident in [*names, *self.category_buckets, *(w.name for w in self.windows)]:
            if not _IDENT.match(ident):
                raise ValueError(f"{ident!r} is not usable in a column name")
        for r in self.ratios:
            if r.numerator not in names or r.denominator not in names:
                raise ValueError(f"ratio {r.name!r} refers to an unknown aggregation")
        if len(set(names)) != len(names) or OTHER_CATEGORY in self.categories:
            raise ValueError("aggregation names must be unique; 'other' is reserved")

    def with_window(self, window: Window) -> FeatureDefinitions:
        """These definitions plus one more window."""
        return replace(self, windows=(*self.windows, window))

    def with_aggregation(self, aggregation: Aggregation) -> FeatureDefinitions:
        """These definitions plus one more tile aggregation."""
        return replace(self, aggregations=(*self.aggregations, aggregation))

    def entity(self, name: str) -> Entity:
        """Look up an entity by name."""
        return next(e for e in self.entities if e.name == name)

    @property
    def category_buckets(self) -> tuple[str, ...]:
        """Tracked categories plus the catch-all bucket."""
        return (*self.categories, OTHER_CATEGORY)

    @property
    def max_lookback_hours(self) -> int:
        """Hours of tiles a sample needs: cost is bounded by this, not by history length."""
        windows = (*self.windows, *self.category_windows)
        return max(self.sequence_lookback_hours, *(w.hours for w in windows))

    # ---- tiles -------------------------------------------------------------------------------

    def tile_columns(self, entity: Entity) -> list[tuple[str, str]]:
        """(name, type) of an entity's hourly tile table, one row per (entity, hour)."""
        cols = [(entity.key, "BIGINT NOT NULL"), ("hour", "TIMESTAMP NOT NULL")]
        cols += [(a.name, "BIGINT NOT NULL") for a in self.aggregations]
        if entity.category_plays:
            cols += [(category_tile_column(c), "BIGINT NOT NULL") for c in self.category_buckets]
        if entity.play_sequence:
            cols.append((RECENT_PLAYS, RECENT_PLAYS_TYPE))
        cols.append(("date", "DATE NOT NULL"))
        return cols

    def tile_ddl(self, entity: Entity) -> str:
        """DDL column list of an entity's tile table."""
        return ", ".join(f"{n} {t}" for n, t in self.tile_columns(entity))

    # ---- rolling window state ----------------------------------------------------------------

    def state_sums(self, entity: Entity) -> list[tuple[str, str, int]]:
        """(state column, tile column, window hours) of every windowed sum an entity keeps."""
        sums = [
            (window_column(entity, a.name, w), a.name, w.hours)
            for w in self.windows
            for a in self.aggregations
        ]
        if entity.category_plays:
            tracked = [
                (category_tile_column(c), w)
                for w in self.category_windows
                for c in self.category_buckets
            ]
            sums += [(window_column(entity, col, w), col, w.hours) for col, w in tracked]
        return sums

    def state_columns(self, entity: Entity) -> list[tuple[str, str]]:
        """(name, type) of an entity's window state: one row per (entity, hour H) holding the
        window sums over [H - w, H) and, for users, the newest plays of the sequence look-back."""
        cols = [(entity.key, "BIGINT NOT NULL"), ("hour", "TIMESTAMP NOT NULL")]
        cols += [(name, "BIGINT NOT NULL") for name, _, _ in self.state_sums(entity)]
        if entity.play_sequence:
            cols.append((RECENT_PLAYS, STATE_PLAYS_TYPE))
        cols.append(("date", "DATE NOT NULL"))
        return cols

    def state_ddl(self, entity: Entity) -> str:
        """DDL column list of an entity's window-state table."""
        return ", ".join(f"{n} {t}" for n, t in self.state_columns(entity))

    # ---- samples -----------------------------------------------------------------------------

    def sample_feature_columns(self) -> tuple[FeatureColumn, ...]:
        """Every numeric window feature of a sample: (name, dtype, kind)."""
        cols: list[FeatureColumn] = []
        for e in self.entities:
            for w in self.windows:
                cols += [
                    FeatureColumn(window_column(e, a.name, w), "BIGINT", a.kind)
                    for a in self.aggregations
                ]
                cols += [
                    FeatureColumn(window_column(e, r.name, w), "DOUBLE", "ratio")
                    for r in self.ratios
                ]
            if e.category_plays:
                for w in self.category_windows:
                    cols += [
                        FeatureColumn(
                            window_column(e, category_tile_column(c), w), "BIGINT", "count"
                        )
                        for c in self.category_buckets
                    ]
                    cols.append(
                        FeatureColumn(window_column(e, ITEM_CATEGORY_PLAYS, w), "BIGINT", "count")
                    )
        return tuple(cols)

    def sample_columns(self) -> list[tuple[str, str]]:
        """(name, type) of every training_samples column, in table order."""
        features = [
            (c.name, c.dtype + (" NOT NULL" if c.kind != "ratio" else ""))
            for c in self.sample_feature_columns()
        ]
        sequence = [
            (SEQUENCE_COLUMN, "ARRAY<BIGINT> NOT NULL"),
            (SEQUENCE_LEN_COLUMN, "INT NOT NULL"),
        ]
        return [
            *SAMPLE_KEYS,
            *SAMPLE_LABELS,
            *features,
            *sequence,
            *SAMPLE_STATIC,
            ("sample_date", "DATE NOT NULL"),
        ]

    def samples_ddl(self) -> str:
        """DDL column list of gold/training_samples."""
        return ", ".join(f"{n} {t}" for n, t in self.sample_columns())


def window_column(entity: Entity, feature: str, window: Window) -> str:
    """Sample column name of a windowed feature, e.g. user_plays_24h, item_like_rate_7d."""
    return f"{entity.name}_{feature}_{window.name}"


def category_tile_column(category: str) -> str:
    """Tile column counting the plays of one category bucket, e.g. plays_music."""
    return f"plays_{category}"


USER = Entity("user", "user_id", "user_tiles_hourly", category_plays=True, play_sequence=True)
ITEM = Entity("item", "item_id", "item_tiles_hourly")

WINDOW_1H = Window("1h", 1)
WINDOW_24H = Window("24h", 24)
WINDOW_7D = Window("7d", 7 * 24)

DEFINITIONS = FeatureDefinitions(
    entities=(USER, ITEM),
    aggregations=(
        Aggregation("impressions", "impression"),
        Aggregation("plays", "play"),
        Aggregation("likes", "like"),
        Aggregation("shares", "share"),
        Aggregation("skips", "skip"),
        Aggregation("watch_ms", "play", sum_of="watch_ms"),
    ),
    windows=(WINDOW_1H, WINDOW_24H, WINDOW_7D),
    ratios=(
        Ratio("play_rate", "plays", "impressions"),
        Ratio("like_rate", "likes", "impressions"),
        Ratio("share_rate", "shares", "impressions"),
        Ratio("skip_rate", "skips", "impressions"),
        Ratio("avg_watch_ms", "watch_ms", "plays"),
    ),
    # A fixed list keeps the sample schema stable; any other category counts as "other".
    categories=(
        "music",
        "comedy",
        "sports",
        "gaming",
        "food",
        "beauty",
        "education",
        "news",
        "pets",
        "travel",
    ),
    category_windows=(WINDOW_7D,),
    sequence_length=20,
    # The sequence looks back as far as the longest window, so its cost is bounded too.
    sequence_lookback_hours=7 * 24,
)


def sample_feature_columns(
    definitions: FeatureDefinitions = DEFINITIONS,
) -> tuple[FeatureColumn, ...]:
    """Every numeric sample feature (name, dtype, kind): validation derives range checks here."""
    return definitions.sample_feature_columns()
