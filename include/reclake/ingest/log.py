"""The ingest log: one JSON document per arrival hour, overwritten on each successful run
(a run over many hours still writes one document per hour).

Downstream jobs (labels) read it to know which arrival hours are ingested and final.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reclake import lakefs
from reclake.config import Settings
from reclake.timeutil import iso, parse_utc

LOG_DIR = "_reclake/ingest_log"
_NAME_FORMAT = "%Y-%m-%dT%H"
# Where an hour's lines came from: its landing drop, or a bulk import ("import:<path>").
LANDING_SOURCE = "landing"
IMPORT_SOURCE_PREFIX = "import:"


# The per-hour counts that reconcile; summed over an interval and shown by `reclake ingest log`.
COUNT_FIELDS = (
    "input_lines",
    "bronze_rows",
    "quarantined_rows",
    "duplicates_in_drop",
    "duplicates_in_bronze",
    "beyond_lateness",
)


@dataclass(frozen=True)
class HourReport:
    """What ingesting one arrival hour did; the counts reconcile (see layout.hour_counts).

    bronze_version and quarantine_version are the commits of the chunk that held the hour;
    duration_s is the hour's share of that chunk's wall time; source is "landing" (the hour's
    drop) or "import:<path>" (a bulk import, see reclake.ingest.bulk).
    """

    arrival_hour: str
    input_files: int
    input_lines: int
    bronze_rows: int
    quarantined_rows: int
    duplicates_in_drop: int
    duplicates_in_bronze: int
    beyond_lateness: int
    bronze_version: int
    quarantine_version: int
    duration_s: float
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    # Logs written before imports existed have no source: they came from landing drops.
    source: str = LANDING_SOURCE

    @property
    def duplicates_dropped(self) -> int:
        """Copies not written: within the drop plus already in bronze from another hour."""
        return self.duplicates_in_drop + self.duplicates_in_bronze


@dataclass(frozen=True)
class ChunkReport:
    """One set-based pass over consecutive arrival hours [start, end) and what it committed."""

    start: str
    end: str
    bronze_version: int
    quarantine_version: int
    # Delta commits made: 2, or fewer when a write had nothing to add or remove.
    commits: int
    duration_s: float


@dataclass(frozen=True)
class IngestReport:
    """The outcome of ingesting an interval of arrival hours, in order."""

    start: str
    end: str
    hours: list[HourReport]
    chunks: list[ChunkReport] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """Summed counts over the interval, chunks and Delta commits (the job's JSON line)."""
        out: dict[str, Any] = {"start": self.start, "end": self.end, "hours": len(self.hours)}
        out.update({k: sum(getattr(h, k) for h in self.hours) for k in COUNT_FIELDS})
        out["chunks"] = len(self.chunks)
        out["commits"] = sum(c.commits for c in self.chunks)
        return out


def log_uri(settings: Settings, arrival_hour: datetime | str) -> str:
    """Where the log document of an arrival hour lives."""
    name = parse_utc(arrival_hour).strftime(_NAME_FORMAT)
    return settings.table_uri(f"{LOG_DIR}/{name}.json")


def save_ingest_log(settings: Settings, report: HourReport) -> str:
    """Persist (overwrite) the log of one arrival hour; returns its URI."""
    uri = log_uri(settings, report.arrival_hour)
    lakefs.write_json(uri, asdict(report))
    return uri


def load_ingest_log(settings: Settings, hour: datetime | str) -> HourReport:
    """The log of one arrival hour; KeyError when that hour was never ingested."""
    uri = log_uri(settings, hour)
    if not lakefs.exists(uri):
        raise KeyError(f"arrival hour {iso(parse_utc(hour))} has no ingest log ({uri})")
    return HourReport(**lakefs.read_json(uri))


def ingested_hours(settings: Settings) -> list[datetime]:
    """Arrival hours with a successful ingest, sorted ascending (UTC)."""
    folder = settings.table_uri(LOG_DIR)
    hours = []
    for uri in lakefs.list_files(folder, ".json"):
        name = uri.rsplit("/", 1)[1][: -len(".json")]
        hours.append(parse_utc(datetime.strptime(name, _NAME_FORMAT)))
    return sorted(hours)


def load_ingest_logs(settings: Settings, days: float | None = None) -> list[HourReport]:
    """The logs of every ingested arrival hour, oldest first; with `days`, only the hours
    within that many days before the newest one (the lake's clock, not the wall clock)."""
    hours = ingested_hours(settings)
    if days is not None and hours:
        since = hours[-1] - timedelta(days=days)
        hours = [h for h in hours if h > since]
    return [load_ingest_log(settings, h) for h in hours]
