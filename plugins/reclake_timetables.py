"""Registers reclake's timetable with Airflow (a custom timetable must come from a plugin)."""

from __future__ import annotations

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from reclake.schedules import BoundedCatchupTimetable


class ReclakeTimetables(AirflowPlugin):
    """reclake's bounded catch-up cron timetable."""

    name = "reclake_timetables"
    timetables: ClassVar[list[type]] = [BoundedCatchupTimetable]
