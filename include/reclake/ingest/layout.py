"""Pure helpers of the ingest: where an arrival hour's drop lives, which files it may hold,
and how per-file blocks map to true line numbers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from reclake.config import Settings
from reclake.contract import EVENTS_DROP
from reclake.timeutil import parse_utc

# Drops are gzipped JSON lines; plain .jsonl is accepted too (hand-made drops, tests).
DROP_SUFFIXES = (".jsonl.gz", ".jsonl")


class IngestError(RuntimeError):
    """An arrival hour cannot be ingested (missing drop, unexpected file, counts off)."""


def drop_relative(arrival_hour: datetime) -> str:
    """The drop folder of an arrival hour, relative to the landing root."""
    h = parse_utc(arrival_hour)
    return EVENTS_DROP.format(date=h.date().isoformat(), hour=h.hour)


def drop_uri(settings: Settings, arrival_hour: datetime) -> str:
    """URI of the drop folder of an arrival hour."""
    return f"{settings.landing_uri}/{drop_relative(arrival_hour)}"


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


def reconcile(counts: dict[str, int]) -> list[str]:
    """Problems with an hour's counts (empty when they add up)."""
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
