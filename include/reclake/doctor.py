"""`reclake doctor`: check the lake's storage and explain each fault found, with its recovery.

JVM-free (pyarrow and delta-rs), so it runs where Spark cannot start. Per Delta table (the
catalog's, the window-state caches, the snapshot registry) it checks that the folder can be
listed and written, that every file of `_delta_log` parses (commits, checkpoints,
`_last_checkpoint`, version checksums) and that the commits after the newest intact
checkpoint are contiguous, that every data file of the current version and of each live
snapshot exists; beside the tables, that reclake's JSON documents parse and that the lake's
filesystem has space left. The recovery of each fault is in docs/reliability.md, *Storage
faults and reclake doctor*; `repair` applies the ones that need no backup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from pyarrow import fs as pafs

from reclake import lakefs, lakepath
from reclake.config import Settings
from reclake.storagefault import DAMAGED_LOG, DENIED, FULL, MISSING_FILE, REGISTRY, first_line

OK, ABSENT, PROBLEM = "ok", "absent", "problem"
DAMAGED_CHECKPOINT = "damaged_checkpoint"
MISSING_COMMIT = "missing_commit"
UNREADABLE = "unreadable"
SNAPSHOT_FILES = "missing_snapshot_files"
DAMAGED_DOCUMENT = "damaged_document"

LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+|\.[0-9a-f-]{36})?\.parquet$")
_CHECKSUM = re.compile(r"^(\d{20})\.crc$")
LAST_CHECKPOINT = "_last_checkpoint"
# Where `repair` moves damaged log files (never deleted: they may help a later forensic look).
ASIDE_DIR = "_reclake/doctor"


@dataclass(frozen=True)
class Finding:
    """One check's outcome for one table (or the lake, or one document)."""

    table: str
    location: str  # lake-relative
    status: str  # ok | absent | problem
    problem: str = ""  # kind, for scripts
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True)
class LogState:
    """What a table's _delta_log holds, as parsed by the doctor."""

    commits: dict[int, str | None]  # version -> None when intact, else what is wrong
    checkpoints: dict[int, str | None]  # version -> None when intact (all parts)
    last_checkpoint: str | None  # None when absent or intact, else what is wrong
    checksums: dict[int, str | None]  # NNN.crc version files


def delta_tables() -> dict[str, str]:
    """Every Delta table the doctor checks: name -> lake-relative folder."""
    from reclake.storagefault import table_folders

    return {name: folder for folder, name in table_folders().items()}


def examine(settings: Settings) -> list[Finding]:
    """Every finding for the lake: its space, each table, reclake's documents."""
    findings = [check_space(settings)]
    for name, folder in delta_tables().items():
        findings.append(check_table(settings, name, folder))
    findings += check_documents(settings)
    return findings


def problems(findings: list[Finding]) -> list[Finding]:
    """The findings that need a person (doctor exits 1 when there is any)."""
    return [f for f in findings if f.status == PROBLEM]


def check_space(settings: Settings, minimum: int = 1 << 30) -> Finding:
    """A local lake's filesystem is full when less than min(1 GiB, 1 %) is free."""
    if not settings.lake_root.startswith("file:"):
        return Finding("(lake)", "", OK, detail="object store: no space limit to check")
    path = lakefs.local_path(settings.lake_root)
    try:
        usage = shutil.disk_usage(path)
    except FileNotFoundError:
        return Finding("(lake)", "", ABSENT, detail=f"{path} does not exist yet")
    except PermissionError as exc:
        return _denied("(lake)", "", exc)
    detail = f"{usage.free:,} of {usage.total:,} bytes free"
    if usage.free < min(minimum, usage.total // 100):
        return Finding(
            "(lake)",
            "",
            PROBLEM,
            FULL,
            f"the filesystem holding {path} is full: {detail}",
            "free space on it (or grow it), then re-run the jobs that failed: a failed write "
            "commits nothing, and a re-run replaces what its interval holds",
        )
    return Finding("(lake)", "", OK, detail=detail)


def check_table(settings: Settings, name: str, folder: str) -> Finding:
    """The first fault of one Delta table, or ok / absent."""
    uri = settings.table_uri(folder)
    try:
        files = _listing(uri)
    except PermissionError as exc:
        return _denied(name, folder, exc)
    if files is None:
        return Finding(name, folder, ABSENT, detail="not created yet")
    denied = _not_writable(uri, files)
    if denied:
        return Finding(
            name,
            folder,
            PROBLEM,
            DENIED,
            f"{denied} is not writable by this user: jobs writing the table fail",
            _DENIED_FIX,
        )
    log = read_log(uri, files)
    damage = log_damage(name, folder, log)
    if damage is not None:
        return damage
    try:
        from reclake.snapshots.deltars import open_table

        table = open_table(uri)
        version = int(table.version())
        paths = _add_paths(table)
    except Exception as exc:  # whatever delta-rs met that the checks above did not explain
        return Finding(
            name,
            folder,
            PROBLEM,
            UNREADABLE,
            f"delta-rs cannot read the table: {first_line(str(exc))}",
            "see the message; if the log looks intact, check the folder's permissions and "
            "the storage itself",
        )
    missing = sorted(p for p in paths if p not in files)
    if missing:
        return _missing_files(name, folder, version, len(paths), missing)
    lost = _snapshot_losses(settings, name, files)
    if lost:
        return lost
    return Finding(name, folder, OK, detail=f"version {version}, {len(paths)} data files")


def _listing(uri: str) -> set[str] | None:
    """Table-relative paths of every file under the table (None when the folder is absent)."""
    filesystem, path = lakefs.resolve(uri)
    if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    base = path.rstrip("/") + "/"
    return {i.path[len(base) :] for i in infos if i.type == pafs.FileType.File}


def _not_writable(uri: str, files: set[str]) -> str | None:
    """The first folder of a local table this process may not write in (None: all can)."""
    if not uri.startswith("file:"):
        return None  # object stores grant per request; a denied write shows in the job
    root = lakefs.local_path(uri).rstrip("/")
    folders = {root, f"{root}/{LOG}"} | {f"{root}/{f.rsplit('/', 1)[0]}" for f in files if "/" in f}
    for folder in sorted(folders):
        if os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK | os.R_OK):
            return folder
    return None


def read_log(uri: str, files: set[str]) -> LogState:
    """Parse every file of the table's _delta_log."""
    commits: dict[int, str | None] = {}
    parts: dict[int, list[str]] = {}
    checksums: dict[int, str | None] = {}
    last: str | None = None
    for relative in sorted(files):
        if not relative.startswith(LOG + "/") or relative.count("/") != 1:
            continue
        file = relative.split("/", 1)[1]
        full = f"{uri.rstrip('/')}/{relative}"
        if match := _COMMIT.match(file):
            commits[int(match.group(1))] = _json_lines_damage(full)
        elif match := _CHECKPOINT.match(file):
            parts.setdefault(int(match.group(1)), []).append(full)
        elif match := _CHECKSUM.match(file):
            checksums[int(match.group(1))] = _json_damage(full)
        elif file == LAST_CHECKPOINT:
            last = _json_damage(full, require="version")
    checkpoints = {v: _first([_parquet_damage(p) for p in ps]) for v, ps in parts.items()}
    return LogState(commits, checkpoints, last, checksums)


def _first(values: list[str | None]) -> str | None:
    return next((v for v in values if v), None)


def _read(uri: str) -> bytes:
    filesystem, path = lakefs.resolve(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def _json_lines_damage(uri: str) -> str | None:
    data = _read(uri)
    if not data.strip():
        return "empty file"
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as exc:
            return f"line {number} is not JSON ({exc})"
    return None


def _json_damage(uri: str, require: str | None = None) -> str | None:
    try:
        data = json.loads(_read(uri))
    except ValueError as exc:
        return f"not JSON ({exc})"
    if require and not (isinstance(data, dict) and require in data):
        return f"no {require!r} field"
    return None


def _parquet_damage(uri: str) -> str | None:
    import pyarrow.parquet as pq

    filesystem, path = lakefs.resolve(uri)
    try:
        pq.read_table(path, filesystem=filesystem)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        return f"{path.rsplit('/', 1)[-1]} is not readable Parquet ({first_line(str(exc))})"
    return None


def log_damage(name: str, folder: str, log: LogState) -> Finding | None:
    """The fault of a parsed log that breaks reads, with its recovery (pure)."""
    versions = set(log.commits) | set(log.checkpoints)
    if not versions:
        return None
    latest = max(versions)
    intact = [v for v, bad in log.checkpoints.items() if bad is None]
    base = max(intact, default=-1)  # readers start from the newest intact checkpoint

    def finding(kind: str, detail: str, fix: str) -> Finding:
        return Finding(name, folder, PROBLEM, kind, detail, fix)

    needed = range(base + 1, latest + 1)
    gaps = [v for v in needed if v not in log.commits]
    bad_commits = {v: why for v, why in log.commits.items() if why}
    for version, why in sorted(bad_commits.items()):
        file = f"{LOG}/{version:020d}.json"
        if version <= base:
            return finding(
                DAMAGED_LOG,
                f"commit {file} is damaged ({why}); the current version reads from checkpoint "
                f"{base}, but time travel to versions {version}..{base - 1} fails",
                "restore the file from a backup if those versions are needed; nothing else "
                "depends on it (snapshots keep their own file lists)",
            )
        if version == latest and not gaps:
            return finding(
                DAMAGED_LOG,
                f"the newest commit {file} is damaged ({why}): no reader can open the table",
                f"`reclake doctor --repair {name}` moves it aside (to {ASIDE_DIR}/): the table "
                f"returns to version {version - 1} and the write of version {version} is lost; "
                "re-run the job that wrote it (a re-run replaces its interval)",
            )
        return finding(
            DAMAGED_LOG,
            f"commit {file} is damaged ({why}) and later commits depend on it: versions "
            f"{version}..{latest} cannot be read",
            "restore the file from a backup (or the object store's version history); without "
            "it, move the table folder aside and rebuild it by re-running its jobs",
        )
    bad_checkpoints = {v: why for v, why in log.checkpoints.items() if why}
    if bad_checkpoints:
        version, why = max(bad_checkpoints.items())
        older = max((v for v in intact if v < version), default=-1)
        covered = all(v in log.commits for v in range(older + 1, version + 1))
        fix = (
            f"`reclake doctor --repair {name}` moves it and {LAST_CHECKPOINT} aside: readers "
            f"then rebuild the state from the JSON commits {older + 1}..{version}, all present"
            if covered
            else "restore it from a backup: log cleanup removed the JSON commits it summarises"
        )
        return finding(DAMAGED_CHECKPOINT, f"checkpoint {version} is damaged: {why}", fix)
    if gaps:
        return finding(
            MISSING_COMMIT,
            f"commit {LOG}/{gaps[0]:020d}.json is missing: versions {gaps[0]}..{latest} "
            "cannot be read",
            "restore the file from a backup; without it, move the table folder aside and "
            "rebuild it by re-running its jobs",
        )
    if log.last_checkpoint:
        return finding(
            DAMAGED_LOG,
            f"{LOG}/{LAST_CHECKPOINT} is damaged ({log.last_checkpoint})",
            f"`reclake doctor --repair {name}` moves it aside: readers then find the newest "
            "checkpoint by listing the log",
        )
    bad_sums = {v: why for v, why in log.checksums.items() if why}
    if bad_sums:
        version, why = max(bad_sums.items())
        return finding(
            DAMAGED_LOG,
            f"version checksum {LOG}/{version:020d}.crc is damaged ({why})",
            f"`reclake doctor --repair {name}` moves it aside: it is an optional summary",
        )
    return None


def _add_paths(table: object) -> set[str]:
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=False)).column("path").to_pylist()
    uri = table.table_uri
    return {
        unquote(lakepath.relative_to(uri, p) if lakepath.is_absolute(p) else p) for p in actions
    }


def _missing_files(name: str, folder: str, version: int, total: int, missing: list[str]) -> Finding:
    partitions = sorted({p.rsplit("/", 1)[0] for p in missing if "/" in p})
    where = f"; partitions: {', '.join(partitions[:5])}" if partitions else ""
    more = f" (+{len(partitions) - 5} more)" if len(partitions) > 5 else ""
    return Finding(
        name,
        folder,
        PROBLEM,
        MISSING_FILE,
        f"{len(missing)} of {total} data files of version {version} are missing, e.g. "
        f"{missing[0]}{where}{more}: reads of the table fail",
        "restore them from a backup if there is one; otherwise `reclake doctor --repair "
        f"{name}` removes them from the table (a new version without their rows), then "
        "re-run the jobs over the hours of those partitions to rebuild the rows (bronze: "
        "re-ingest the arrival hours from their landing drops)",
    )


def _snapshot_losses(settings: Settings, name: str, files: set[str]) -> Finding | None:
    """The first live snapshot of the table whose files are not all on storage."""
    from reclake.snapshots import list_snapshots
    from reclake.tables import TABLES

    if name not in TABLES:
        return None
    try:
        snapshots = list_snapshots(settings, name)
    except Exception:  # the registry's own finding explains it
        return None
    for snap in snapshots:
        gone = [
            f.path for f in snap.files if lakepath.relative_to(snap.table_uri, f.path) not in files
        ]
        if gone:
            return Finding(
                name,
                table_folder(name),
                PROBLEM,
                SNAPSHOT_FILES,
                f"live snapshot {snap.id} lost {len(gone)} of its {len(snap.files)} files, e.g. "
                f"{gone[0].rsplit('/', 1)[-1]}: it can no longer be read",
                "restore the files from a backup; a snapshot cannot be rebuilt once its "
                "version's files are gone: publish a new one (validate, publish) and move "
                "latest to it (`reclake snapshots rollback --to`)",
            )
    return None


def table_folder(name: str) -> str:
    """Lake-relative folder of a table the doctor checks."""
    return delta_tables()[name]


def _denied(name: str, folder: str, exc: BaseException) -> Finding:
    return Finding(name, folder, PROBLEM, DENIED, first_line(str(exc)), _DENIED_FIX)


_DENIED_FIX = (
    "give the user that runs reclake (jobs, Airflow workers, training) read and write access "
    "to the lake's folders (chown -R / chmod -R u+rwX), then re-run what failed"
)


def document_sources() -> dict[str, str]:
    """Folder (or file) of each JSON document reclake keeps -> the job that writes it."""
    from reclake.features.dims import LOADED_MARKER
    from reclake.features.labels import LABEL_LOG_DIR
    from reclake.features.samples import SAMPLE_LOG_DIR
    from reclake.ingest.log import LOG_DIR as INGEST_LOG_DIR
    from reclake.maintenance.log import LOG_DIR as MAINTENANCE_LOG_DIR
    from reclake.quality.audit_results import AUDITS_DIR
    from reclake.quality.results import RESULTS_DIR

    return {
        INGEST_LOG_DIR: "ingest_events for that arrival hour",
        LABEL_LOG_DIR: "label_impressions for that hour",
        SAMPLE_LOG_DIR: "build_training_samples for that hour",
        RESULTS_DIR: "validate for that table version (a published snapshot keeps its copy)",
        AUDITS_DIR: "audit for that table version (a published snapshot keeps its summary)",
        MAINTENANCE_LOG_DIR: "nothing: it is history; the next optimize or vacuum writes anew",
        LOADED_MARKER: "load_dims (without its marker it reloads the dimensions)",
    }


def check_documents(settings: Settings) -> list[Finding]:
    """A problem per reclake JSON document that does not parse (none when all do)."""
    found = []
    for source, writer in document_sources().items():
        uri = settings.table_uri(source)
        try:
            uris = [uri] if source.endswith(".json") else _json_files(uri)
            for doc in uris:
                if lakefs.exists(doc) and (why := _json_damage(doc)):
                    relative = lakepath.relative_to(settings.lake_root, doc)
                    found.append(
                        Finding(
                            relative,
                            source,
                            PROBLEM,
                            DAMAGED_DOCUMENT,
                            f"{relative} is damaged ({why})",
                            f"move it aside (`{ASIDE_DIR}/`), then re-run {writer}",
                        )
                    )
        except PermissionError as exc:
            found.append(_denied(source, source, exc))
    return found


def _json_files(uri: str) -> list[str]:
    filesystem, path = lakefs.resolve(uri)
    if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    base = uri.rstrip("/")
    root = path.rstrip("/") + "/"
    return sorted(
        f"{base}/{i.path[len(root) :]}"
        for i in infos
        if i.type == pafs.FileType.File
        and i.base_name.endswith(".json")
        and not i.base_name.startswith(".")
    )


def repair(settings: Settings, name: str) -> list[str]:
    """Apply the recovery that needs no backup to one table; returns what it did.

    Moves a damaged newest commit, checkpoint, `_last_checkpoint` or version checksum aside
    (into _reclake/doctor/), or removes data files missing from storage from the table's
    current version (delta-rs FSCK: one commit). Refuses anything else (ValueError).
    """
    folder = table_folder(name)
    finding = check_table(settings, name, folder)
    if finding.status != PROBLEM:
        return []
    uri = settings.table_uri(folder)
    if finding.problem == MISSING_FILE:
        from reclake.snapshots.deltars import open_table

        removed = open_table(uri).repair(dry_run=False)["files_removed"]
        return [f"removed {len(removed)} missing data file(s) from the log: {', '.join(removed)}"]
    if "--repair" not in finding.fix:
        raise ValueError(f"{name}: {finding.detail}; doctor cannot repair this: {finding.fix}")
    log = read_log(uri, _listing(uri) or set())
    return [_move_aside(settings, uri, folder, f) for f in _damaged_files(log, finding.problem)]


def _damaged_files(log: LogState, problem: str) -> list[str]:
    """The _delta_log files whose move aside is the repair of a log finding (pure)."""
    if problem == DAMAGED_CHECKPOINT:
        version = max(v for v, why in log.checkpoints.items() if why)
        return [f"{version:020d}.checkpoint.parquet", LAST_CHECKPOINT]
    bad_commits = sorted(v for v, why in log.commits.items() if why)
    if bad_commits:
        version = bad_commits[-1]
        # Hadoop's checksum of the file and Delta's version checksum describe the lost commit.
        return [f"{version:020d}.json", f".{version:020d}.json.crc", f"{version:020d}.crc"]
    if log.last_checkpoint:
        return [LAST_CHECKPOINT]
    version = max(v for v, why in log.checksums.items() if why)
    return [f"{version:020d}.crc"]


def _move_aside(settings: Settings, uri: str, folder: str, file: str) -> str:
    filesystem, source = lakefs.resolve(f"{uri.rstrip('/')}/{LOG}/{file}")
    if filesystem.get_file_info(source).type == pafs.FileType.NotFound:
        return f"{LOG}/{file}: not there"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target_uri = settings.table_uri(f"{ASIDE_DIR}/{folder}/{stamp}/{file}")
    _, target = lakefs.resolve(target_uri)
    filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
    filesystem.move(source, target)
    return f"moved {folder}/{LOG}/{file} to {ASIDE_DIR}/{folder}/{stamp}/{file}"


__all__ = ["ABSENT", "OK", "PROBLEM", "REGISTRY", "Finding", "examine", "problems", "repair"]
