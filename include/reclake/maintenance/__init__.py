"""Table maintenance: per-table policy, incremental OPTIMIZE/Z-order, snapshot-aware
VACUUM, table health, the maintenance log, a Delta-conflict retry helper and file-skipping
measures (docs/maintenance.md)."""

from reclake.maintenance.health import TableHealth, all_health, history, table_health
from reclake.maintenance.optimize import OptimizeReport, optimize_all, optimize_table
from reclake.maintenance.policy import MaintenancePolicy, all_policies, policy_for
from reclake.maintenance.retry import Retried, is_conflict, retry_on_conflict
from reclake.maintenance.vacuum import VacuumReport, vacuum_all, vacuum_table

__all__ = [
    "MaintenancePolicy",
    "OptimizeReport",
    "Retried",
    "TableHealth",
    "VacuumReport",
    "all_health",
    "all_policies",
    "history",
    "is_conflict",
    "optimize_all",
    "optimize_table",
    "policy_for",
    "retry_on_conflict",
    "table_health",
    "vacuum_all",
    "vacuum_table",
]
