"""Storage faults in one line: a full filesystem, a denied permission, a data file gone from
under its Delta log, a damaged log file. Whichever engine met it (Spark, delta-rs, pyarrow),
the error becomes a StorageError naming the table and what to do, instead of a Java or Rust
stack trace. Classifying is pure: it reads the error's text (and the Java cause chain Spark
attaches); `guarded` applies it around an access whose table is known.

`reclake doctor` (reclake.doctor) finds the same faults by looking at the lake, and
docs/reliability.md (*Storage faults and reclake doctor*) gives the recovery of each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reclake import lakepath

FULL = "full"
DENIED = "permission_denied"
MISSING_FILE = "missing_data_file"
DAMAGED_LOG = "damaged_log"

# What each engine says, matched on the whole text of the error and its causes.
_SIGNS = {
    FULL: re.compile(
        r"No space left on device|Disk quota exceeded|\[Errno (?:28|122)\]|os error (?:28|122)"
        r"|errno (?:28|122)\b"
    ),
    DENIED: re.compile(
        r"Permission denied|AccessDeniedException|\[Errno 13\]|os error 13|errno 13\b"
    ),
    MISSING_FILE: re.compile(
        r"FileNotFoundException|FILE_NOT_EXIST|No such file or directory|os error 2\b"
        r"|Object at location \S+ not found"
    ),
    DAMAGED_LOG: re.compile(
        r"Json error|JsonParseException|JsonEOFException|JsonMappingException"
        r"|Unexpected end-of-input|Truncated record|EOF while parsing|Corrupt footer"
        r"|Invalid Parquet file|is not a Parquet file|expected magic number"
        r"|DELTA_CHECKPOINT_NON_EXIST|DELTA_LOG_FILE_NOT_FOUND|DELTA_VERSIONS_NOT_CONTIGUOUS"
    ),
}
# Local paths and URIs inside an error text (Spark names files file:/x, delta-rs plain /x).
_PATH = re.compile(r"(?:s3a?://|file:/*)?/?[\w.=%+-]+(?:/[\w.=%+-]+)+")
_DATA_FILE = re.compile(r"\.parquet$")


class StorageError(RuntimeError):
    """The lake's storage failed a read or write in a way a person must fix (exit 1)."""

    def __init__(self, message: str, kind: str, table: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.table = table


@dataclass(frozen=True)
class Place:
    """Where in the lake a fault is: the table (or document) and the path below it."""

    name: str  # catalog table, "snapshot_registry", or the lake-relative document path
    folder: str  # lake-relative folder of the table ("" when outside every table)
    inside: str  # path below the folder ("" when the fault names the folder itself)

    @property
    def label(self) -> str:
        """How a message names it: 'table events (bronze/events)'."""
        if self.name == REGISTRY:
            return f"the snapshot registry ({self.folder})"
        if self.folder:
            return f"table {self.name} ({self.folder})"
        return f"lake file {self.inside}"

    @property
    def in_log(self) -> bool:
        """True when the path is a file of the table's _delta_log."""
        return self.inside.startswith("_delta_log")


REGISTRY = "snapshot_registry"


def table_folders() -> dict[str, str]:
    """Lake-relative folder of every Delta table reclake keeps -> its name (catalog tables,
    the window-state caches and the snapshot registry)."""
    from reclake.snapshots.store import REGISTRY_PATH
    from reclake.tables import TABLES, WINDOW_STATE_TABLES

    folders = {spec.path: name for name, spec in {**TABLES, **WINDOW_STATE_TABLES}.items()}
    folders[REGISTRY_PATH] = REGISTRY
    return folders


def place_of(lake_root: str, uri: str) -> Place | None:
    """The table (or lake document) a path belongs to, None when it is outside the lake."""
    try:
        relative = lakepath.relative_to(lake_root, uri)
    except lakepath.OutsideLake:
        return None
    for folder, name in sorted(table_folders().items(), key=lambda kv: -len(kv[0])):
        if relative == folder or relative.startswith(folder + "/"):
            return Place(name, folder, relative[len(folder) + 1 :])
    return Place(relative, "", relative)


def error_text(exc: BaseException) -> str:
    """The text of an error with every cause: Python's chain and the Java stack trace and
    cause chain PySpark keeps (its str() shows them only in debug mode)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        trace = getattr(current, "_stackTrace", None)  # pyspark's CapturedException
        if trace:
            parts.append(str(trace))
        java = getattr(current, "java_exception", None)  # py4j's Py4JJavaError
        if java is not None:
            parts.append(_java_chain(java))
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _java_chain(java: object) -> str:
    lines = []
    try:
        throwable = java
        while throwable is not None and len(lines) < 20:
            lines.append(str(throwable.toString()))
            throwable = throwable.getCause()
    except Exception:  # the JVM may be gone; the Python-side text still holds the message
        pass
    return "\n".join(lines)


def classify(text: str) -> str | None:
    """The kind of storage fault an error text shows, or None (pure)."""
    for kind in (FULL, DENIED, DAMAGED_LOG, MISSING_FILE):
        if _SIGNS[kind].search(text):
            return kind
    return None


def first_line(text: str) -> str:
    """The first non-empty line of an engine's message, without its backtrace."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _places_in(text: str, lake_root: str) -> list[Place]:
    found = []
    for match in _PATH.finditer(text):
        candidate = match.group(0).rstrip(".")  # a path ending a sentence
        if candidate.startswith("file:"):
            candidate = "/" + candidate[len("file:") :].lstrip("/")
        place = place_of(lake_root, candidate) if lakepath.is_absolute(candidate) else None
        if place is not None:
            found.append(place)
    return found


_DECORATION = re.compile(r"\x1b\[[0-9;]*m|\u21b3")  # delta-rs colours and arrows


def _cause_line(text: str, kind: str) -> str:
    match = _SIGNS[kind].search(text)
    line_start = text.rfind("\n", 0, match.start()) + 1 if match else 0
    line = _DECORATION.sub("", first_line(text[line_start:])).strip().removeprefix("Caused by: ")
    return line if len(line) <= 200 else line[:197] + "..."


def describe(
    exc: BaseException, lake_root: str, table_uri: str | None = None
) -> StorageError | None:
    """A one-line StorageError for an error that is a storage fault, else None.

    `table_uri` names the table being accessed when the caller knows it (delta-rs errors
    about a damaged log name no file); otherwise the first lake path in the error does.
    """
    if isinstance(exc, StorageError):
        return exc
    text = error_text(exc)
    kind = classify(text)
    if kind is None:
        return None
    places = _places_in(text, lake_root)
    known = place_of(lake_root, table_uri) if table_uri else None
    if kind == MISSING_FILE:
        # Only a data file of a table gone from under its log; other missing paths (a drop,
        # a table never created) are not storage faults and keep their own errors.
        data = [p for p in places if p.folder and not p.in_log and _DATA_FILE.search(p.inside)]
        if not data:
            return None
        places = data
    elif kind == DAMAGED_LOG:
        logs = [p for p in places if p.in_log]
        if logs:
            places = logs
        elif known is None:
            return None
    where = places[0] if places else known
    return StorageError(_message(kind, where, _cause_line(text, kind)), kind, where and where.name)


def _message(kind: str, where: Place | None, cause: str) -> str:
    label = where.label if where else "the lake"
    if kind == FULL:
        return (
            f"{label}: the filesystem is full ({cause}); free space on it, then re-run: a "
            "failed write commits nothing, and the re-run replaces what the interval holds"
        )
    if kind == DENIED:
        path = f" on {where.folder}/{where.inside}".rstrip("/") if where and where.folder else ""
        return (
            f"{label}: permission denied{path} ({cause}); give the user running reclake read "
            "and write access to the lake's folders (chown/chmod), then re-run"
        )
    if kind == MISSING_FILE:
        return (
            f"{label}: data file {where.inside if where else ''} is named by the Delta log but "
            "missing from storage; run `reclake doctor` for what is lost and the recovery"
        )
    file = f" file {where.inside}" if where and where.in_log else ""
    return (
        f"{label}: its Delta log{file} is damaged ({cause}); run `reclake doctor` for the "
        "damaged file and the recovery"
    )


@contextmanager
def guarded(table_uri: str, lake_root: str | None = None) -> Iterator[None]:
    """Turn a storage fault met while accessing the table at `table_uri` into a StorageError."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if lake_root is None:
            from reclake.config import load_settings

            lake_root = load_settings().lake_root
        converted = describe(exc, lake_root, table_uri)
        if converted is None:
            raise
        raise converted from None
