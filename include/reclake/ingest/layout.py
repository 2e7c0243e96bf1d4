"""Pure helpers of the ingest: where an arrival hour's drop lives, which files it may hold,
how per-file blocks map to true line numbers, what a pass replaces, and how the collected
group counts become per-hour counts."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from string import Formatter

from reclake import sqltext
from reclake.config import Settings
from reclake.contract import EVENTS_DROP
from reclake.timeutil import parse_utc

# Drops are gzipped JSON lines; plain .jsonl is accepted too (hand-made drops, tests).
DROP_SUFFIXES = (".jsonl.gz", ".jsonl")
# The drop layout as (literal text, field name) pieces: "events/date=" date "/hour=" hour.
DROP_PATH_PIECES = tuple((text, name) for text, name, _, _ in Formatter().parse(EVENTS_DROP))
# The folder every drop lives under; its date=/hour= sub-folders read as partition values.
DROPS_FOLDER = EVENTS_DROP.split("/", 1)[0]


class IngestError(RuntimeError):
    """An arrival hour cannot be ingested (missing drop, unexpected file, counts off)."""


# Spark's message when a file cannot be read (a truncated gzip, a text file named .gz): the
# file's URI, and the Java exception that caused it.
_UNREADABLE = re.compile(r"Encountered error while reading file (\S+?)\.?\s")
_CAUSE = re.compile(r"Caused by: [\w.$]+?(\w+(?:Exception|Error)): ([^\n]*)")


def unreadable_file(error: BaseException) -> IngestError | None:
    """A one-line IngestError naming the file Spark failed to read and why, or None when the
    error is not about reading an input file (pure)."""
    text = str(error)
    found = _UNREADABLE.search(text)
    if found is None or not found.group(1).endswith(DROP_SUFFIXES):
        # Not a drop: a table's own file (missing, damaged) is a storage fault, not bad input.
        return None
    cause = _CAUSE.search(text)
    why = f"{cause.group(1)}: {cause.group(2).strip()}" if cause else "unreadable"
    return IngestError(
        f"cannot read {found.group(1)} ({why}): the file is damaged (a truncated or mislabelled "
        "gzip?); deliver it again, or move it out of the drop, and re-run"
    )


@contextmanager
def readable_files() -> Iterator[None]:
    """Turn Spark's failure to read an input file into unreadable_file's IngestError."""
    try:
        yield
    except Exception as exc:
        converted = unreadable_file(exc)
        if converted is None:
            raise
        raise converted from None


def drop_relative(arrival_hour: datetime) -> str:
    """The drop folder of an arrival hour, relative to the landing root."""
    h = parse_utc(arrival_hour)
    return EVENTS_DROP.format(date=h.date().isoformat(), hour=h.hour)


def drop_uri(settings: Settings, arrival_hour: datetime) -> str:
    """URI of the drop folder of an arrival hour."""
    return f"{settings.landing_uri}/{drop_relative(arrival_hour)}"


def drops_root_uri(settings: Settings) -> str:
    """URI of the folder holding every drop (the base path of a multi-hour read)."""
    return f"{settings.landing_uri}/{DROPS_FOLDER}"


def check_drop_files(folder: str, names: Iterable[str]) -> list[str]:
    """Names of the drop's data files; a file of any other kind is an error, not skipped."""
    names = sorted(names)
    unexpected = [n for n in names if not n.endswith(DROP_SUFFIXES)]
    if unexpected:
        raise IngestError(
            f"unexpected files in drop {folder}: {', '.join(unexpected)} "
            f"(expected {' or '.join(DROP_SUFFIXES)})"
        )
    return names


def line_offsets(blocks: Sequence[tuple[str, int, int, int]]) -> dict[tuple[str, int], int]:
    """Map (file, block_start) -> first_row_id - lines in earlier blocks of the same file.

    `blocks` holds (file, block_start, first_row_id, lines) per contiguous block read by one
    task; a row's 1-based line number is then row_id - offset + 1.
    """
    offsets: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for file, start, first_row_id, lines in sorted(blocks):
        before = seen.get(file, 0)
        offsets[(file, start)] = first_row_id - before
        seen[file] = before + lines
    return offsets


def replace_predicates(start: datetime, end: datetime) -> tuple[str, str]:
    """The replaceWhere predicates of the arrival hours [start, end): (bronze, quarantine).

    Bronze gets no event_date bound: old events have no lower bound, and an upper bound would
    depend on the future-skew setting of the run that wrote the rows it must replace.
    """
    hours = sqltext.time_range("arrival_hour", start, end)
    return hours, f"{sqltext.dates_of_range('arrival_date', start, end)} AND {hours}"


@dataclass(frozen=True)
class LineGroup:
    """Lines of one file block with the same arrival hour, reason (None: valid) and, for valid
    lines, event hour and lateness flag: what the ingest collects in one pass over a run."""

    source_file: str
    block_start: int
    arrival_hour: datetime
    reason: str | None
    event_hour: datetime | None
    beyond_lateness: bool | None
    first_row_id: int
    lines: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Valid lines of one arrival hour not written, by the count they add to
    (duplicates_in_drop or duplicates_in_bronze) and lateness flag."""

    arrival_hour: datetime
    counted_as: str
    beyond_lateness: bool
    lines: int


def block_offsets(groups: Iterable[LineGroup]) -> dict[tuple[str, int], int]:
    """line_offsets of the file blocks the groups come from."""
    blocks: dict[tuple[str, int], tuple[int, int]] = {}
    for g in groups:
        first, lines = blocks.get((g.source_file, g.block_start), (g.first_row_id, 0))
        blocks[(g.source_file, g.block_start)] = (min(first, g.first_row_id), lines + g.lines)
    return line_offsets([(f, s, first, n) for (f, s), (first, n) in blocks.items()])


def valid_lines_by_event_hour(groups: Iterable[LineGroup]) -> dict[datetime, int]:
    """How many valid lines each event hour holds."""
    out: dict[datetime, int] = defaultdict(int)
    for g in groups:
        if g.reason is None:
            out[g.event_hour] += g.lines
    return dict(out)


def split_event_hours(
    lines_by_hour: dict[datetime, int], sparse_limit: int
) -> tuple[list[datetime], list[datetime]]:
    """(sparse, dense) event hours: the hours with fewest lines are sparse while their lines
    add up to at most `sparse_limit`; both lists sorted."""
    sparse, total = [], 0
    for hour, lines in sorted(lines_by_hour.items(), key=lambda item: (item[1], item[0])):
        if total + lines > sparse_limit:
            break
        sparse.append(hour)
        total += lines
    dense = sorted(set(lines_by_hour) - set(sparse))
    return sorted(sparse), dense


def hour_counts(
    hours: Iterable[datetime],
    groups: Iterable[LineGroup],
    duplicates: Iterable[DuplicateGroup],
) -> dict[datetime, dict]:
    """Per arrival hour, the counts of its ingest log (HourReport fields): every hour of the
    run gets an entry, an empty drop all zeros. Bronze rows are the valid lines minus the
    duplicates, so each hour's counts add up by construction; the run's totals are checked
    against the commits (reconcile)."""
    out = {
        h: {
            "input_lines": 0,
            "bronze_rows": 0,
            "quarantined_rows": 0,
            "duplicates_in_drop": 0,
            "duplicates_in_bronze": 0,
            "beyond_lateness": 0,
            "quarantine_reasons": {},
        }
        for h in hours
    }
    files: dict[datetime, set[str]] = defaultdict(set)
    for g in groups:
        counts = out[g.arrival_hour]
        files[g.arrival_hour].add(g.source_file)
        counts["input_lines"] += g.lines
        if g.reason is None:
            counts["bronze_rows"] += g.lines
            counts["beyond_lateness"] += g.lines if g.beyond_lateness else 0
        else:
            counts["quarantined_rows"] += g.lines
            reasons = counts["quarantine_reasons"]
            reasons[g.reason] = reasons.get(g.reason, 0) + g.lines
    for d in duplicates:
        counts = out[d.arrival_hour]
        counts[d.counted_as] += d.lines
        counts["bronze_rows"] -= d.lines
        counts["beyond_lateness"] -= d.lines if d.beyond_lateness else 0
    for h, counts in out.items():
        counts["input_files"] = len(files[h])
    return out


def reconcile(counts: dict[str, int]) -> list[str]:
    """Problems with a run's counts (empty when they add up)."""
    problems = []
    accounted = (
        counts["bronze_rows"]
        + counts["quarantined_rows"]
        + counts["duplicates_in_drop"]
        + counts["duplicates_in_bronze"]
    )
    if counts["input_lines"] != accounted:
        problems.append(
            f"input_lines {counts['input_lines']} != bronze + quarantine + duplicates {accounted}"
        )
    for written, selected in (("bronze_rows", "new_rows"), ("quarantined_rows", "invalid_rows")):
        if counts[written] != counts[selected]:
            problems.append(f"{written} {counts[written]} != {selected} {counts[selected]}")
    return problems
