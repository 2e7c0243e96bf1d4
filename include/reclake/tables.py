"""Every table reclake owns, declared in one place: path in the lake, keys, partitioning,
Z-order columns and schema. Jobs, maintenance, validation and the CLI read this catalog."""

from __future__ import annotations

from dataclasses import dataclass

from reclake.config import Settings


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the lake."""

    name: str  # short logical name, used in CLI and snapshot refs (training_samples@latest)
    path: str  # relative to the lake root
    keys: tuple[str, ...]  # unique key of a row
    partition_by: tuple[str, ...] = ()
    zorder_by: tuple[str, ...] = ()
    time_column: str | None = None
    description: str = ""
    # Columns Delta keeps min/max statistics of, for file skipping (empty: Delta's default,
    # the first 32 columns). Statistics cost write time per row and column, so a wide table
    # keeps them only where queries filter or Z-order.
    stats_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.stats_columns and not set(self.zorder_by) <= set(self.stats_columns):
            # OPTIMIZE ZORDER BY refuses columns without statistics.
            raise ValueError(f"{self.name}: stats_columns must include zorder_by")

    @property
    def properties(self) -> dict[str, str]:
        """Delta table properties the declaration implies."""
        if not self.stats_columns:
            return {}
        return {"delta.dataSkippingStatsColumns": ",".join(self.stats_columns)}

    def uri(self, settings: Settings) -> str:
        """Location of the table under the configured lake root."""
        return settings.table_uri(self.path)


BRONZE_EVENTS_DDL = """
    event_id STRING NOT NULL,
    event_type STRING NOT NULL,
    event_time TIMESTAMP NOT NULL,
    user_id BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    request_id STRING NOT NULL,
    position INT,
    watch_ms BIGINT,
    event_hour TIMESTAMP NOT NULL,
    arrival_hour TIMESTAMP NOT NULL,
    late_hours INT NOT NULL,
    beyond_lateness BOOLEAN NOT NULL,
    source_file STRING NOT NULL,
    event_date DATE NOT NULL
"""

QUARANTINE_EVENTS_DDL = """
    raw_line STRING,
    source_file STRING NOT NULL,
    line_number BIGINT NOT NULL,
    arrival_hour TIMESTAMP NOT NULL,
    reason STRING NOT NULL,
    detail STRING,
    arrival_date DATE NOT NULL
"""

USERS_DDL = """
    user_id BIGINT NOT NULL,
    country STRING NOT NULL,
    device STRING NOT NULL,
    age_bucket STRING NOT NULL,
    signup_time TIMESTAMP NOT NULL,
    source_file STRING NOT NULL
"""

ITEMS_DDL = """
    item_id BIGINT NOT NULL,
    category STRING NOT NULL,
    duration_ms BIGINT NOT NULL,
    creator_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    source_file STRING NOT NULL
"""

QUARANTINE_DIMS_DDL = """
    dim STRING NOT NULL,
    source_file STRING NOT NULL,
    line_number BIGINT NOT NULL,
    raw_line STRING,
    reason STRING NOT NULL,
    detail STRING
"""

IMPRESSIONS_LABELED_DDL = """
    event_id STRING NOT NULL,
    request_id STRING NOT NULL,
    user_id BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    position INT,
    event_time TIMESTAMP NOT NULL,
    event_hour TIMESTAMP NOT NULL,
    played BOOLEAN NOT NULL,
    watch_ms BIGINT NOT NULL,
    finished BOOLEAN NOT NULL,
    liked BOOLEAN NOT NULL,
    shared BOOLEAN NOT NULL,
    skipped BOOLEAN NOT NULL,
    event_date DATE NOT NULL
"""

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "events",
            "bronze/events",
            keys=("event_id",),
            partition_by=("event_date",),
            # Looked up by user (history, deletes) and by item range. With two curve columns a
            # lookup on one reads ~1/sqrt(files per date): under 10 % for both needs ~500+
            # files a date (about 16 GB a day at 32 MiB), see docs/maintenance.md.
            zorder_by=("user_id", "item_id"),
            time_column="event_time",
            description="Validated, deduplicated interaction events (one row per event_id).",
        ),
        TableSpec(
            "quarantine_events",
            "quarantine/events",
            keys=("source_file", "line_number"),
            partition_by=("arrival_date",),
            time_column="arrival_hour",
            description="Landing lines that failed validation, with a machine-readable reason.",
        ),
        TableSpec(
            "users",
            "dims/users",
            keys=("user_id",),
            zorder_by=("user_id",),
            description="User dimension: country, device, age bucket.",
        ),
        TableSpec(
            "items",
            "dims/items",
            keys=("item_id",),
            zorder_by=("item_id",),
            description="Item dimension: category, duration, creator.",
        ),
        TableSpec(
            "quarantine_dims",
            "quarantine/dims",
            keys=("dim", "source_file", "line_number"),
            description="Dimension drop lines that failed validation, with a reason.",
        ),
        TableSpec(
            "impressions_labeled",
            "silver/impressions_labeled",
            keys=("event_id",),
            partition_by=("event_date",),
            zorder_by=("user_id",),
            time_column="event_time",
            description="One row per impression with labels from attributed actions.",
        ),
        TableSpec(
            "user_tiles_hourly",
            "features/user_tiles_hourly",
            keys=("user_id", "hour"),
            partition_by=("date",),
            zorder_by=("user_id",),
            time_column="hour",
            description="Per (user, hour) partial aggregates.",
        ),
        TableSpec(
            "item_tiles_hourly",
            "features/item_tiles_hourly",
            keys=("item_id", "hour"),
            partition_by=("date",),
            zorder_by=("item_id",),
            time_column="hour",
            description="Per (item, hour) partial aggregates.",
        ),
        TableSpec(
            "training_samples",
            "gold/training_samples",
            keys=("event_id",),
            partition_by=("sample_date",),
            zorder_by=("user_id",),
            time_column="event_time",
            description="Point-in-time correct training samples: labels + features.",
            # About 100 columns: statistics on all would cost about 9 % of the build's CPU.
            stats_columns=("user_id", "item_id", "event_time", "event_hour"),
        ),
    )
}

# Derived caches of the training-sample build (reclake.features.state): rebuilt from the tiles
# whenever missing or stale, so they carry no quality suite and are kept out of TABLES.
WINDOW_STATE_TABLES: dict[str, TableSpec] = {
    f"{entity}_window_state": TableSpec(
        f"{entity}_window_state",
        f"features/{entity}_window_state",
        keys=(f"{entity}_id", "hour"),
        partition_by=("date",),
        time_column="hour",
        description=f"Per ({entity}, hour H) window sums over [H - w, H){extra}.",
    )
    for entity, extra in (("user", " and newest plays"), ("item", ""))
}


def table(name: str) -> TableSpec:
    """Look up a table by logical name; fails with the list of known names."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}") from None
