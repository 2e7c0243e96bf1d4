"""Which versions of the dimension tables (dims/users, dims/items) the rows of a
training_samples version were built against, read from the Delta logs' commit times.

Dimensions are full reloads and samples copy their current values, so a sample row's
dimension values are those of the reload current when its build committed. The audit checks
each row against the versions its build could have seen; vacuum keeps those versions' files
while a live snapshot may still be audited (`reclake audit training_samples@<id>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from reclake.config import Settings
from reclake.maintenance import deltalog
from reclake.tables import table
from reclake.timeutil import parse_utc

DIMENSIONS = ("users", "items")
# Commits that only rearrange files: the rows they add were built by an earlier commit.
NO_DATA_CHANGE = ("OPTIMIZE", "VACUUM START", "VACUUM END")


@dataclass(frozen=True)
class DataCommit:
    """A commit of the samples table that wrote rows: when, and into which sample dates."""

    version: int
    timestamp_ms: int
    sample_dates: frozenset[str]


def data_commits(samples_uri: str) -> list[DataCommit]:
    """Every commit of the samples table that wrote rows, oldest first."""
    commits = []
    for v in deltalog.commit_versions(samples_uri):
        commit = deltalog.read_commit(samples_uri, v)
        if commit.operation in NO_DATA_CHANGE:
            continue
        dates = {dict(p).get("sample_date") for p in commit.added_partitions.values()}
        commits.append(DataCommit(v, commit.timestamp_ms, frozenset(d for d in dates if d)))
    return commits


def commit_times(settings: Settings, name: str) -> list[tuple[int, int]]:
    """(version, commit ms) of every commit of a table, oldest first."""
    uri = table(name).uri(settings)
    if not deltalog.is_table(uri):
        raise FileNotFoundError(f"table {name!r} does not exist at {uri}")
    return [(v, deltalog.read_commit(uri, v).timestamp_ms) for v in deltalog.commit_versions(uri)]


def as_of(history: list[tuple[int, int]], at_ms: int) -> int:
    """The version (of (version, commit ms) pairs, oldest first) current at `at_ms`; the
    first one when all are later (pure)."""
    current = history[0][0]
    for version, ms in history:
        if ms <= at_ms:
            current = version
    return current


def dims_versions(
    commits: list[DataCommit],
    version: int,
    dates: set[str] | None,
    users: list[tuple[int, int]],
    items: list[tuple[int, int]],
) -> list[tuple[int, int]]:
    """(users version, items version) current when some commit up to `version` wrote rows
    into `dates` (None: any date), newest first (pure). A day's hourly builds may straddle a
    reload, so there can be several; when the log no longer holds those commits, the latest
    dimensions."""
    written = [
        c.timestamp_ms
        for c in commits
        if c.version <= version and (dates is None or c.sample_dates & dates)
    ]
    if not written:
        return [(users[-1][0], items[-1][0])]
    pairs = [(as_of(users, ms), as_of(items, ms)) for ms in sorted(written, reverse=True)]
    return list(dict.fromkeys(pairs))


def versions_for(
    settings: Settings, samples_uri: str, version: int, dates: set[str] | None
) -> list[tuple[int, int]]:
    """The dimension version pairs a samples version's rows in `dates` were built against."""
    return dims_versions(
        data_commits(samples_uri),
        version,
        dates,
        commit_times(settings, "users"),
        commit_times(settings, "items"),
    )


def check_readable(settings: Settings, pairs: list[tuple[int, int]]) -> None:
    """Raise FileNotFoundError, naming the table and version, when a data file of one of
    these (users, items) versions is gone (vacuumed): its rows cannot be checked."""
    from reclake import lakefs

    if not pairs:
        return
    for name, versions in zip(DIMENSIONS, zip(*pairs, strict=True), strict=True):
        uri = table(name).uri(settings)
        for v in sorted(set(versions)):
            missing = [
                f.path
                for f in deltalog.version_files(uri, v)
                if not lakefs.exists(f"{uri.rstrip('/')}/{f.path}")
            ]
            if missing:
                raise FileNotFoundError(
                    f"{table(name).path} version {v}, which rows being audited were built "
                    f"against, was vacuumed ({len(missing)} of its files are gone, e.g. "
                    f"{missing[0]}): audit a version within the dimensions' vacuum retention of "
                    "its build, or publish it first (live snapshots keep their dimension "
                    "versions)"
                )


def interval_dates(start: str | None, end: str | None) -> set[str] | None:
    """The sample_date partitions of the hours in [start, end); None without an interval."""
    if start is None or end is None:
        return None
    first, last = parse_utc(start), parse_utc(end) - timedelta(microseconds=1)
    day: date = first.date()
    dates = set()
    while day <= last.date():
        dates.add(day.isoformat())
        day += timedelta(days=1)
    return dates


def versions_in_use(settings: Settings, snapshots: list[Any]) -> dict[str, set[int]]:
    """Per dimension table, the versions the given training_samples snapshots' rows were built
    against (what a later audit of each snapshot reads)."""
    used: dict[str, set[int]] = {name: set() for name in DIMENSIONS}
    samples = [s for s in snapshots if s.table == "training_samples"]
    if not samples:
        return used
    uri = table("training_samples").uri(settings)
    if not deltalog.is_table(uri) or not all(
        deltalog.is_table(table(name).uri(settings)) for name in DIMENSIONS
    ):
        return used
    commits = data_commits(uri)
    users, items = commit_times(settings, "users"), commit_times(settings, "items")
    for s in samples:
        dates = interval_dates(s.interval_start, s.interval_end)
        for u, i in dims_versions(commits, s.version, dates, users, items):
            used["users"].add(u)
            used["items"].add(i)
    return used
