"""Per-hour JSON records in the lake: one small document per hour, `<folder>/date=D/HH.json`.

A job records each hour it processed (tile builds, labels); other jobs decide finality from
these records, not from whether rows exist, so an hour without traffic is as final as any.
One file per hour: concurrent runs over different hours never race on a shared document.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from reclake import lakefs
from reclake.config import Settings
from reclake.timeutil import hours_between, parse_utc


def hour_doc_uri(settings: Settings, folder: str, hour: datetime) -> str:
    """URI of an hour's record under a lake folder."""
    h = parse_utc(hour)
    return settings.table_uri(f"{folder}/date={h.date()}/{h:%H}.json")


def write_hour_doc(settings: Settings, folder: str, hour: datetime, doc: dict[str, Any]) -> None:
    """Write (overwrite) the record of one hour."""
    lakefs.write_json(hour_doc_uri(settings, folder, hour), doc)


def hours_with_docs(
    settings: Settings, folder: str, start: datetime, end: datetime
) -> set[datetime]:
    """The hours in [start, end) that have a record (one listing per date, not per hour)."""
    hours = set(hours_between(start, end))
    found: set[datetime] = set()
    for d in sorted({h.date() for h in hours}):
        for uri in lakefs.list_files(settings.table_uri(f"{folder}/date={d}"), ".json"):
            found.add(_doc_hour(d, uri))
    return found & hours


def newest_hour(settings: Settings, folder: str) -> datetime | None:
    """The newest hour with a record under a lake folder (None when there is none)."""
    root = settings.table_uri(folder)
    for name in reversed(lakefs.list_dirs(root)):
        if not name.startswith("date="):
            continue
        files = lakefs.list_files(f"{root}/{name}", ".json")
        if files:
            return _doc_hour(date.fromisoformat(name.removeprefix("date=")), files[-1])
    return None


def read_hour_docs(
    settings: Settings, folder: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The records of the hours in [start, end) that have one, oldest first."""
    return [
        lakefs.read_json(hour_doc_uri(settings, folder, h))
        for h in sorted(hours_with_docs(settings, folder, start, end))
    ]


def _doc_hour(day: date, uri: str) -> datetime:
    """The hour a record `<folder>/date=D/HH.json` is about."""
    hh = int(uri.rsplit("/", 1)[1].removesuffix(".json"))
    return datetime(day.year, day.month, day.day, hh, tzinfo=UTC)
