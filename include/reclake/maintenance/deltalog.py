"""Reading a table's Delta log without a JVM: commits (with the partitions and files they
added) from the JSON commit files, and the files of a version through delta-rs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from reclake import lakefs, lakepath
from reclake.snapshots.deltars import open_table

COMMIT_NAME = re.compile(r"^(\d{20})\.json$")
Partition = tuple[tuple[str, str | None], ...]  # sorted (column, value) pairs


@dataclass(frozen=True)
class Commit:
    """One Delta commit as maintenance needs it."""

    version: int
    timestamp_ms: int
    operation: str
    added_paths: tuple[str, ...]  # table-relative, URL-decoded (as on storage)
    # Partition folder (as on storage, "" when unpartitioned) -> its values as the log has them.
    added_partitions: dict[str, Partition]
    # The commitInfo action as written (userMetadata, operationMetrics, custom keys).
    info: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class DataFile:
    """A data file of a table version."""

    path: str  # table-relative, as on storage
    size: int

    @property
    def folder(self) -> str:
        """The partition folder holding the file ("" when unpartitioned)."""
        return partition_folder(self.path)


def partition_folder(relative_path: str) -> str:
    """The folder of a table-relative file path: partition values are spelt identically
    there whichever writer (Spark, delta-rs) logged them, unlike their logged strings."""
    return relative_path.rsplit("/", 1)[0] if "/" in relative_path else ""


def relative_path(table_uri: str, path: str) -> str:
    """A logged path or file URI as the table-relative name on storage (URL-decoded).

    A URI outside the table raises lakepath.OutsideLake: vacuum must not run with a file it
    cannot place, since it would not recognise (and so delete) the file that is meant.
    """
    if lakepath.is_absolute(path):
        path = lakepath.relative_to(table_uri, path)
    return unquote(path)


def log_uri(table_uri: str) -> str:
    """The table's _delta_log folder."""
    return f"{table_uri.rstrip('/')}/_delta_log"


def commit_versions(table_uri: str) -> list[int]:
    """Versions whose JSON commit file is still in the log (log cleanup drops old ones)."""
    versions = []
    for uri in lakefs.list_files(log_uri(table_uri), ".json"):
        match = COMMIT_NAME.match(uri.rsplit("/", 1)[-1])
        if match:
            versions.append(int(match.group(1)))
    return sorted(versions)


def read_commit(table_uri: str, version: int) -> Commit:
    """Parse one JSON commit file (newline-delimited actions)."""
    filesystem, path = lakefs.resolve(f"{log_uri(table_uri)}/{version:020d}.json")
    with filesystem.open_input_stream(path) as stream:
        lines = stream.read().decode("utf-8").splitlines()
    timestamp, operation, paths, partitions, info = 0, "", [], {}, {}
    for line in lines:
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            info = action["commitInfo"]
            timestamp = int(info.get("timestamp") or info.get("inCommitTimestamp") or 0)
            operation = str(info.get("operation", ""))
        elif "add" in action:
            add = action["add"]
            # The log stores paths URL-encoded; storage holds the decoded names.
            path = unquote(add["path"])
            paths.append(path)
            partitions[partition_folder(path)] = _partition(add.get("partitionValues") or {})
    return Commit(version, timestamp, operation, tuple(paths), partitions, info)


def find_commit(
    table_uri: str, after: int | None, match: Callable[[Commit], bool]
) -> Commit | None:
    """The first commit after version `after` (None: from version 0) that `match` accepts.

    Reads the commit files oldest first, up to the table's current version (a write looking
    for its own commit is done, so that version is at least its own). delta-rs' history() is
    not used: it labels the commits that land while it reads with the wrong versions
    (measured with deltalake 1.6.6).
    """
    for version in range(0 if after is None else after + 1, latest_version(table_uri) + 1):
        try:
            commit = read_commit(table_uri, version)
        except FileNotFoundError:
            continue  # log cleanup took it: not a commit anyone still looks for
        if match(commit):
            return commit
    return None


def recent_commits(table_uri: str, limit: int) -> list[Commit]:
    """Up to `limit` newest commits whose commit files are still in the log, newest first."""
    found: list[Commit] = []
    version = latest_version(table_uri)
    while version >= 0 and len(found) < limit:
        try:
            found.append(read_commit(table_uri, version))
        except FileNotFoundError:
            break  # log cleanup removed this one and every older one
        version -= 1
    return found


def commits_after(table_uri: str, version: int, since_ms: int = 0) -> list[Commit]:
    """Commits newer than `version`, skipping those whose timestamp is before `since_ms`."""
    found = []
    for v in commit_versions(table_uri):
        if v <= version:
            continue
        commit = read_commit(table_uri, v)
        if commit.timestamp_ms >= since_ms:
            found.append(commit)
    return found


def version_files(table_uri: str, version: int | None = None) -> list[DataFile]:
    """The data files of a version (the latest when None), via delta-rs."""
    dt = open_table(table_uri, version)
    actions = pa.table(dt.get_add_actions(flatten=False)).select(["path", "size_bytes"])
    return [
        DataFile(relative_path(table_uri, a["path"]), int(a["size_bytes"]))
        for a in actions.to_pylist()
    ]


def latest_version(table_uri: str) -> int:
    """The table's current version, read JVM-free."""
    return int(open_table(table_uri).version())


def is_table(table_uri: str) -> bool:
    """True when a Delta table exists at the URI."""
    from deltalake import DeltaTable

    from reclake.snapshots.deltars import rs_uri, storage_options

    return DeltaTable.is_deltatable(rs_uri(table_uri), storage_options=storage_options(table_uri))


def _partition(values: dict[str, str | None]) -> Partition:
    return tuple(sorted((k, None if v is None else str(v)) for k, v in values.items()))
