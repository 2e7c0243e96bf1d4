"""delta-rs access for the registry: URIs delta-rs understands, and opening a table version."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltalake import DeltaTable


def rs_uri(uri: str) -> str:
    """The URI delta-rs expects: s3a:// (Hadoop's name, used by Spark) becomes s3://."""
    if uri.startswith("s3a://"):
        return "s3://" + uri[len("s3a://") :]
    return uri


def storage_options(uri: str) -> dict[str, str] | None:
    """delta-rs storage options for a lake URI: the object store's (RECLAKE_S3_* settings and
    credentials from the environment) for s3a:// and s3://, none for a local lake."""
    from reclake.config import load_settings
    from reclake.objectstore import delta_rs_options, is_s3

    return delta_rs_options(load_settings()) if is_s3(uri) else None


def open_table(uri: str, version: int | None = None) -> DeltaTable:
    """A delta-rs handle on the table (as of `version` when given); a damaged or unreadable
    log is a StorageError naming the table (delta-rs's own error names no file)."""
    from deltalake import DeltaTable

    from reclake.storagefault import guarded

    with guarded(uri):
        return DeltaTable(rs_uri(uri), version=version, storage_options=storage_options(uri))
