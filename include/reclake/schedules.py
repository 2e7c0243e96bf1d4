"""The reclake DAGs' timetable: cron data intervals whose catch-up is bounded.

Airflow's `catchup=True` queues every interval since `start_date` when a DAG is unpaused, and
`catchup=False` silently skips the hours a scheduler outage missed. reclake wants neither:
- a DAG's first run is the latest complete interval (history before it is loaded with
  `reclake_backfill`, interval-native and far cheaper than one run per hour);
- after that, missed intervals are caught up, but never more than `max_catchup` before the
  latest one (an outage of a day self-heals; a month paused is a backfill, not 720 runs).

Registered with Airflow by plugins/reclake_timetables.py (custom timetables must be).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable


class BoundedCatchupTimetable(CronDataIntervalTimetable):
    """Cron data intervals; first run = latest complete interval; catch-up <= max_catchup."""

    def __init__(self, cron: str, timezone: Any, max_catchup: timedelta) -> None:
        super().__init__(cron, timezone)
        self.max_catchup = max_catchup
        self.description = (
            f"cron '{cron}': the first run is the latest complete interval; missed "
            f"intervals are caught up for at most {_hours(max_catchup)}"
        )

    @property
    def summary(self) -> str:
        """How the schedule shows in the UI."""
        return f"{self._expression}, catch-up <= {_hours(self.max_catchup)}"

    def serialize(self) -> dict[str, Any]:
        """The cron fields plus the catch-up bound (seconds)."""
        return {**super().serialize(), "max_catchup": self.max_catchup.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> BoundedCatchupTimetable:
        """Rebuild from serialize()'s output."""
        from airflow._shared.timezones.timezone import parse_timezone

        return cls(
            data["expression"],
            parse_timezone(data["timezone"]),
            timedelta(seconds=data["max_catchup"]),
        )

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        """The next interval: the latest complete one first, then the next after the last run,
        but never one starting more than max_catchup before the latest complete one."""
        if not restriction.catchup:
            return super().next_dagrun_info(
                last_automated_data_interval=last_automated_data_interval,
                restriction=restriction,
            )
        latest = self._skip_to_latest(restriction.earliest)
        floor = latest if last_automated_data_interval is None else latest - self.max_catchup
        if restriction.earliest is not None:
            floor = max(floor, restriction.earliest)
        bounded = TimeRestriction(earliest=floor, latest=restriction.latest, catchup=True)
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=bounded
        )


def _hours(delta: timedelta) -> str:
    """A duration as whole hours or days, for the UI."""
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 and hours >= 48 else f"{hours} h"
