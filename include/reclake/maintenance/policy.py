"""Maintenance policy per table, declared in one place: defaults for every table from
Settings, Z-order columns from the table catalog, and explicit per-table overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from reclake.config import Settings
from reclake.tables import TABLES, table

# A file smaller than this fraction of the target size counts as a small file.
SMALL_FILE_FRACTION = 0.25

# Per-table deviations from the defaults, keyed by TableSpec name. Quarantine tables are
# audit trails read rarely and by scan: no Z-order, and a longer vacuum window for forensics.
OVERRIDES: dict[str, dict[str, Any]] = {
    "quarantine_events": {"vacuum_retention_hours": 30 * 24},
    "quarantine_dims": {"vacuum_retention_hours": 30 * 24},
}


@dataclass(frozen=True)
class MaintenancePolicy:
    """How one table is compacted, Z-ordered and vacuumed."""

    table: str
    target_file_bytes: int
    zorder_by: tuple[str, ...]
    # Commits older than this are not scanned for touched partitions (bounds the log read).
    lookback_hours: int
    vacuum_retention_hours: int
    # Minimum delta.logRetentionDuration: Spark time travel needs the log of old versions.
    log_retention_days: int

    @property
    def small_file_bytes(self) -> int:
        """Files below this size count as small in table health."""
        return int(self.target_file_bytes * SMALL_FILE_FRACTION)


def policy_for(settings: Settings, name: str) -> MaintenancePolicy:
    """The maintenance policy of a table: Settings defaults, catalog Z-order, overrides."""
    spec = table(name)
    base = MaintenancePolicy(
        table=spec.name,
        target_file_bytes=settings.maintenance_target_file_bytes,
        zorder_by=spec.zorder_by,
        lookback_hours=settings.maintenance_lookback_hours,
        vacuum_retention_hours=settings.vacuum_retention_hours,
        log_retention_days=settings.delta_log_retention_days,
    )
    return replace(base, **OVERRIDES.get(spec.name, {}))


def all_policies(settings: Settings) -> dict[str, MaintenancePolicy]:
    """The policy of every table in the catalog."""
    return {name: policy_for(settings, name) for name in TABLES}
