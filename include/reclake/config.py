"""The one place reclake reads its configuration: typed, from the environment, with defaults
for the embedded setup (local Spark, a lake folder inside the project, UTC)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ENV_PREFIX = "RECLAKE_"


def _lake_uri(value: str) -> str:
    """Normalise a lake root to a URI without a trailing slash (plain paths become file:// URIs)."""
    value = value.rstrip("/")
    if "://" in value:
        return value
    return Path(value).expanduser().resolve().as_uri()


QUICK_START_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _user_cache_dir() -> Path:
    """Where the training reader caches converted snapshots by default: the user's cache
    folder (XDG), a local disk on most hosts."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "reclake" / "reader"


@dataclass(frozen=True)
class Settings:
    """reclake configuration; every field can be set by the env var RECLAKE_<FIELD NAME>."""

    # Root of the lake: a folder path, file:// URI or s3a:// URI.
    lake_root: str = field(default_factory=lambda: (PROJECT_ROOT / "lake").as_uri())
    # Where raw drops land; empty means <lake_root>/landing.
    landing_root: str = ""
    # Spark master URL: local[*], spark://host:7077, yarn, k8s://https://...
    spark_master: str = "local[*]"
    # Folder holding the Delta JARs fetched by `make setup`.
    jars_dir: Path = PROJECT_ROOT / "jars"
    spark_driver_memory: str = "2g"
    # Extra JVM flags for the Spark driver (and executors). The default suits the embedded
    # setup's many short jobs over small data: C1-only JIT and the serial GC halve a short
    # job's CPU. For hours of 1M+ events (clusters) set `-XX:+TieredCompilation`
    # (full JIT; an empty env value keeps the default); benchmarks pass "" directly.
    spark_jvm_options: str = QUICK_START_JVM_OPTIONS
    # Compile Catalyst expressions and whole stages to JVM bytecode. Off by default: over the
    # embedded setup's small hours, compiling costs more CPU than it saves (a short job's CPU
    # drops by about a third without it). Turn on for hours of 1M+ events; benchmarks do.
    spark_codegen: bool = False
    # Small by default: the embedded lake holds hours, not years, of data.
    spark_shuffle_partitions: int = 8
    # Events whose arrival hour is at most this many hours after their event hour are folded
    # into that hour's features; later ones stay in bronze, flagged, and are excluded.
    allowed_lateness_hours: int = 2
    # Actions within this many minutes after an impression label it.
    attribution_window_minutes: int = 30
    # Events further than this in the future (relative to their landing hour) are quarantined.
    max_future_skew_minutes: int = 10
    # The ingest handles this many arrival hours per pass (one bronze and one quarantine
    # commit each); a pass keeps its parsed lines cached, so this bounds memory.
    ingest_chunk_hours: int = 24
    # Long sample builds run in chunks of this many hours (one window computation and one
    # commit each) to bound memory; a month at a time suits the embedded setup.
    samples_chunk_hours: int = 24 * 31
    # Object store of an s3a:// lake. Endpoint of an S3-compatible server (http://host:port);
    # empty means AWS S3 itself. Credentials are not settings (they would be printed with the
    # rest): see reclake.objectstore.Credentials.
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    # Path-style requests (http://endpoint/bucket/key): what most S3-compatible servers need.
    s3_path_style: bool = False
    # Airflow connection (login = access key id, password = secret key) a task reads when it
    # runs, when the credentials are not in the environment.
    s3_conn_id: str = ""
    # Reviewed Great Expectations suite files, one <table>.json each (see docs/quality.md).
    expectations_dir: Path = PROJECT_ROOT / "include" / "expectations"
    # A published snapshot expires this many days after publish unless pinned or `latest`.
    snapshot_retention_days: int = 30
    # Maintenance defaults for every table (per-table overrides: reclake.maintenance.policy).
    # OPTIMIZE target file size; 128 MiB suits a cluster, the embedded lake holds tiny tables.
    maintenance_target_file_bytes: int = 32 * 1024 * 1024
    # OPTIMIZE looks at commits no older than this when finding recently written partitions.
    maintenance_lookback_hours: int = 48
    # VACUUM keeps every file a version committed within this window needs.
    vacuum_retention_hours: int = 168
    # Minimum delta.logRetentionDuration, so Spark time travel to live snapshots keeps working.
    delta_log_retention_days: int = 60
    # Training reader's snapshot cache (docs/training.md "Snapshot cache"): SnapshotDataset
    # caches its converted form on first read unless this is off or it is given cache=False.
    # On by default: building costs epoch 1 about an eighth of its speed, every later epoch
    # then runs at 2-4x a Parquet scan; single passes (evaluation) turn it off.
    reader_cache: bool = True
    # A local folder (never the lake): memory maps want a fast local disk.
    reader_cache_dir: Path = field(default_factory=_user_cache_dir)
    # Least recently used entries are evicted to keep the cache within this size.
    reader_cache_max_bytes: int = 20 * 1024**3

    def __post_init__(self) -> None:
        # Counts, hours, minutes and sizes: negative never makes sense; these need one.
        for f in fields(self):
            if f.type not in ("int", int):
                continue
            value, least = getattr(self, f.name), 1 if f.name in _AT_LEAST_ONE else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SettingsError(
                    f"{ENV_PREFIX}{f.name.upper()}={value!r}: must be a whole number >= {least}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from RECLAKE_* environment variables over the embedded defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        for name in ("lake_root", "landing_root"):
            if name in values:
                values[name] = _lake_uri(str(values[name]))
        return cls(**values)

    @property
    def landing_uri(self) -> str:
        """URI of the landing area (raw drops and dimension files)."""
        return self.landing_root or f"{self.lake_root}/landing"

    def table_uri(self, relative: str) -> str:
        """URI of a table or folder inside the lake, e.g. table_uri('bronze/events')."""
        return f"{self.lake_root}/{relative.strip('/')}"


class SettingsError(ValueError):
    """A RECLAKE_* setting that does not parse as its type or is out of its range."""


_AT_LEAST_ONE = frozenset(
    {
        "spark_shuffle_partitions",
        "ingest_chunk_hours",
        "samples_chunk_hours",
        "maintenance_target_file_bytes",
        "reader_cache_max_bytes",
    }
)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse(name: str, annotation: object, raw: str) -> object:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "bool":
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid bool (true/false)")
    try:
        if kind == "int":
            return int(raw)
        if kind == "Path":
            return Path(raw).expanduser().resolve()
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def load_settings() -> Settings:
    """Settings for this process (environment over defaults)."""
    return Settings.from_env()
