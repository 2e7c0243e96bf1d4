"""How far reclake has processed each hour, from its own logs: ingested (arrival hours),
labeled and sampled (impression hours).

Whoever did the work (an hourly run, a backfill, a manual job, `airflow dags test`) wrote the
same logs, so waiting on them never depends on which Airflow run processed an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reclake.config import Settings
from reclake.timeutil import hours_between, iso


@dataclass(frozen=True)
class PendingHour:
    """An hour whose samples are not built yet: the step it waits for ("ingest", "labels" or
    "samples") and, when it waits for ingest, the arrival hour that makes its labels final."""

    hour: datetime
    step: str
    arrival: datetime | None = None


def pending_samples(settings: Settings, start: datetime, end: datetime) -> list[PendingHour]:
    """Hours of [start, end) without built samples, each with what it is waiting for."""
    from reclake.features.labels import labeled_hours, required_arrival_hour
    from reclake.features.samples import sampled_hours
    from reclake.ingest.log import ingested_hours

    sampled = sampled_hours(settings, start, end)
    labeled = labeled_hours(settings, start, end)
    ingested = set(ingested_hours(settings))
    pending = []
    for hour in hours_between(start, end):
        if hour in sampled:
            continue
        needed = required_arrival_hour(hour, settings)
        if hour in labeled:
            pending.append(PendingHour(hour, "samples"))
        elif needed in ingested:
            pending.append(PendingHour(hour, "labels"))
        else:
            pending.append(PendingHour(hour, "ingest", needed))
    return pending


WAITS_FOR = {
    "samples": "build_training_samples (their labels are built)",
    "labels": "label_impressions (their labels are final)",
    "ingest": "ingest_events of the arrival hours that make their labels final",
}


def describe_pending(pending: list[PendingHour], shown: int = 5) -> str:
    """A readable summary: how many hours wait, grouped by the step they wait for."""
    if not pending:
        return "every hour is built"
    parts = []
    for step, waits_for in WAITS_FOR.items():
        group = [p for p in pending if p.step == step]
        if not group:
            continue
        listed = ", ".join(iso(p.hour) for p in group[:shown])
        more = f" and {len(group) - shown} more" if len(group) > shown else ""
        text = f"{len(group)} hour(s) wait for {waits_for}: {listed}{more}"
        if step == "ingest":
            arrivals = sorted({p.arrival for p in group if p.arrival})
            span = f" {iso(arrivals[0])}"
            if len(arrivals) > 1:
                span = f"s{span} .. {iso(arrivals[-1])}"
            text += f" (arrival hour{span} not ingested yet)"
        parts.append(text)
    return f"{len(pending)} hour(s) not built yet; " + "; ".join(parts)
