"""Realistic, deterministic landing data for reclake: hourly event drops with the faults real
pipelines see (duplicates, late and too-late events, malformed lines, contract breaks) and the
user / item dimension drops, plus an exact report of what was written.

    from reclake.generator import GeneratorConfig, generate
    report = generate(settings, "2026-11-20T00:00Z", "2026-11-20T04:00Z", GeneratorConfig())

The events caused by one hour's feed requests are a pure function of (seed, hour); the drop of
arrival hour A holds whatever of them lands at A. So intervals compose: generating [0h, 4h) and
then [4h, 8h) writes the same files as [0h, 8h). See docs/generator.md."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from reclake import contract, lakefs
from reclake.config import Settings
from reclake.generator_config import GeneratorConfig
from reclake.generator_events import (
    FATE_BAD_FIELD,
    FATE_MALFORMED,
    FATE_VALID,
    FRESH_WINDOW_HOURS,
    LATE_HOURS,
    LOOKBACK_HOURS,
    EventBatch,
    simulate_hour,
)
from reclake.generator_faults import (
    BAD_FIELD_KINDS,
    MALFORMED_KINDS,
    bad_field_line,
    malformed_line,
)
from reclake.generator_lines import (
    event_lines,
    event_records,
    item_lines,
    record_line,
    text_bytes,
    user_lines,
)
from reclake.generator_world import (
    EVENTS_EPOCH,
    HOUR_MS,
    STREAM_DROP_ORDER,
    build_world,
    concat_items,
    new_items,
    rng_for,
)
from reclake.timeutil import hours_between, iso, parse_utc

__all__ = ["DropCounts", "DropReport", "GenerationReport", "GeneratorConfig", "generate"]

# Fast compression: the landing files are transient and the generator must keep up with 1M
# events per hour; any fixed level keeps the output byte-identical.
GZIP_LEVEL = 1
USERS_FILE = "users.jsonl.gz"
BACK_CATALOG_FILE = "items-base.jsonl.gz"
NEW_ITEMS_FILE = "items-{date}.jsonl.gz"  # every item published that UTC day


@dataclass
class DropCounts:
    """What one drop (or all of them) holds; lines = valid + duplicates + malformed + bad-field."""

    lines: int = 0
    valid_events: int = 0  # distinct valid events whose first copy is in this drop
    duplicate_lines: int = 0  # redelivered copies of valid events
    late_events: int = 0  # valid events 1..2 hours after their event hour (within lateness)
    too_late_events: int = 0  # valid events 3..6 hours after their event hour
    malformed_lines: int = 0
    bad_field_lines: int = 0
    # valid events that are copies of an event first delivered before this run's start
    # (an ingest that already holds those earlier drops sees them as duplicates)
    redelivered_before_start: int = 0
    bad_field_by_kind: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(BAD_FIELD_KINDS, 0)
    )
    events_by_type: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(contract.EVENT_TYPES, 0)
    )
    files: int = 0

    def add(self, other: DropCounts) -> None:
        """Add another drop's counts to these."""
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            else:
                setattr(self, name, mine + theirs)


@dataclass
class DropReport:
    """One hourly event drop: its arrival hour, folder and counts."""

    arrival_hour: str
    uri: str
    counts: DropCounts


@dataclass
class GenerationReport:
    """Everything generate() wrote, with exact counts per arrival hour and in total."""

    start: str
    end: str
    seed: int
    hours: list[DropReport]
    total: DropCounts
    drops: list[str]  # event drop folder URIs, one per arrival hour
    files: list[str]  # every file written: event parts, then dimension files


def drop_uri(settings: Settings, hour: datetime) -> str:
    """Folder URI of the event drop of one arrival hour."""
    relative = contract.EVENTS_DROP.format(date=hour.date().isoformat(), hour=hour.hour)
    return f"{settings.landing_uri}/{relative}"


def _hour_index(hour: datetime) -> int:
    return int(hour.timestamp()) // 3600


def _hour_of(index: int) -> datetime:
    return datetime.fromtimestamp(index * 3600, tz=UTC)


def _faulty_lines(batch: EventBatch, rows: np.ndarray, arrival_index: int) -> list[str]:
    """Render the malformed and bad-field lines of the given rows (newline-terminated)."""
    out = []
    details = zip(
        event_records(batch, rows),
        batch.fate[rows].tolist(),
        batch.fault_kind[rows].tolist(),
        batch.fault_u[rows].tolist(),
        strict=True,
    )
    for record, fate, kind, u in details:
        if fate == FATE_MALFORMED:
            line = malformed_line(record_line(record), record, MALFORMED_KINDS[kind], u)
        else:
            line = bad_field_line(record, BAD_FIELD_KINDS[kind], u, arrival_index * HOUR_MS)
        out.append(line + "\n")
    return out


def drop_part(
    batch: EventBatch, arrival_index: int, window_start: int
) -> tuple[list[pa.Array], DropCounts]:
    """The lines one request hour contributes to one arrival hour's drop, and their counts.

    Counts are relative to the drops of this run (window_start on): a redelivered copy whose
    original landed before window_start is the first copy these drops hold, so it counts as a
    valid event (and in redelivered_before_start)."""
    arrival = batch.arrival_index
    first = np.flatnonzero(arrival == arrival_index)
    copies = np.flatnonzero((batch.redelivery >= 0) & (arrival + batch.redelivery == arrival_index))
    fate = batch.fate[first]
    original_before = arrival[copies] < window_start
    valid = np.concatenate([first[fate == FATE_VALID], copies[original_before]])
    faulty = first[fate != FATE_VALID]

    lateness = arrival_index - batch.time_ms[valid] // HOUR_MS
    counts = DropCounts(
        valid_events=len(valid),
        duplicate_lines=int(np.count_nonzero(~original_before)),
        late_events=int(np.count_nonzero((lateness >= 1) & (lateness <= LATE_HOURS[1]))),
        too_late_events=int(np.count_nonzero(lateness > LATE_HOURS[1])),
        malformed_lines=int(np.count_nonzero(fate == FATE_MALFORMED)),
        bad_field_lines=int(np.count_nonzero(fate == FATE_BAD_FIELD)),
        redelivered_before_start=int(np.count_nonzero(original_before)),
    )
    bad_kinds = np.bincount(
        batch.fault_kind[first[fate == FATE_BAD_FIELD]], minlength=len(BAD_FIELD_KINDS)
    )
    counts.bad_field_by_kind = dict(zip(BAD_FIELD_KINDS, bad_kinds.tolist(), strict=True))
    by_type = np.bincount(batch.event_type[valid], minlength=len(contract.EVENT_TYPES))
    counts.events_by_type = dict(zip(contract.EVENT_TYPES, by_type.tolist(), strict=True))
    counts.lines = len(first) + len(copies)

    parts = [event_lines(batch, first[fate == FATE_VALID]), event_lines(batch, copies)]
    if len(faulty):
        parts.append(pa.array(_faulty_lines(batch, faulty, arrival_index), pa.large_string()))
    return parts, counts


def _write_drop(
    settings: Settings, config: GeneratorConfig, hour: datetime, parts: list[pa.Array]
) -> list[str]:
    """Shuffle a drop's lines (deterministically) into part files; returns the file URIs."""
    lines = pa.concat_arrays(parts)
    order = rng_for(config.seed, STREAM_DROP_ORDER, _hour_index(hour)).permutation(len(lines))
    lines = lines.take(pa.array(order))
    folder = drop_uri(settings, hour)
    bounds = np.linspace(0, len(lines), config.files_per_hour + 1).astype(int)
    written = []
    for i in range(config.files_per_hour):
        uri = f"{folder}/part-{i:05d}.jsonl.gz"
        chunk = lines.slice(bounds[i], bounds[i + 1] - bounds[i])
        lakefs.write_bytes(uri, gzip.compress(text_bytes(chunk), GZIP_LEVEL, mtime=0))
        written.append(uri)
    # A re-run with fewer part files must not leave stale parts of an earlier run behind.
    for stale in set(lakefs.list_files(folder, ".jsonl.gz")) - set(written):
        filesystem, path = lakefs.resolve(stale)
        filesystem.delete_file(path)
    return written


def _write_dimensions(
    settings: Settings, config: GeneratorConfig, first_index: int, end_index: int
) -> list[str]:
    """Users, the back catalog, and the new items of every day that events may reference."""
    world = build_world(config.seed, config.n_users, config.n_items)
    users_uri = f"{settings.landing_uri}/{contract.USERS_DROP}/{USERS_FILE}"
    items_root = f"{settings.landing_uri}/{contract.ITEMS_DROP}"
    files = {
        users_uri: user_lines(world.users),
        f"{items_root}/{BACK_CATALOG_FILE}": item_lines(world.items),
    }
    if config.new_items_per_hour:
        day = _hour_of(first_index).replace(hour=0)
        while _hour_index(day) < end_index:
            day_items = concat_items(
                [
                    new_items(config.seed, config.n_items, config.new_items_per_hour, h)
                    for h in range(_hour_index(day), _hour_index(day) + 24)
                ]
            )
            name = NEW_ITEMS_FILE.format(date=day.date().isoformat())
            files[f"{items_root}/{name}"] = item_lines(day_items)
            day += timedelta(days=1)
    for uri, lines in files.items():
        lakefs.write_bytes(uri, gzip.compress(text_bytes(lines), GZIP_LEVEL, mtime=0))
    return list(files)


def generate(
    settings: Settings,
    start: str | datetime,
    end: str | datetime,
    config: GeneratorConfig = GeneratorConfig(),  # noqa: B008 - frozen, so a safe default
) -> GenerationReport:
    """Write the event drops of arrival hours [start, end) and the dimension drops."""
    arrival_hours = list(hours_between(start, end))
    if arrival_hours and arrival_hours[0] < EVENTS_EPOCH:
        raise ValueError(f"events are generated from {iso(EVENTS_EPOCH)} on")
    report = GenerationReport(
        start=iso(parse_utc(start)),
        end=iso(parse_utc(end)),
        seed=config.seed,
        hours=[],
        total=DropCounts(),
        drops=[],
        files=[],
    )
    if not arrival_hours:
        return report
    first, last = _hour_index(arrival_hours[0]), _hour_index(arrival_hours[-1])
    pending: dict[int, tuple[list[pa.Array], DropCounts]] = {
        a: ([], DropCounts()) for a in range(first, last + 1)
    }
    # Walk request hours in order; drop A is complete once request hour A is simulated.
    for request_index in range(first - LOOKBACK_HOURS, last + 1):
        batch = simulate_hour(config, request_index)
        for a in range(max(first, request_index), min(last, request_index + LOOKBACK_HOURS) + 1):
            parts, counts = drop_part(batch, a, first)
            pending[a][0].extend(parts)
            pending[a][1].add(counts)
        if request_index >= first:
            parts, counts = pending.pop(request_index)
            hour = _hour_of(request_index)
            files = _write_drop(settings, config, hour, parts)
            counts.files = len(files)
            report.hours.append(DropReport(iso(hour), drop_uri(settings, hour), counts))
            report.total.add(counts)
            report.drops.append(drop_uri(settings, hour))
            report.files.extend(files)
    # New items referenced by these drops were published at most FRESH_WINDOW_HOURS before the
    # earliest request hour simulated.
    dim_files = _write_dimensions(
        settings, config, first - LOOKBACK_HOURS - FRESH_WINDOW_HOURS, last + 1
    )
    report.files.extend(dim_files)
    return report
