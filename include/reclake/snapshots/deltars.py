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


def open_table(uri: str, version: int | None = None) -> DeltaTable:
    """A delta-rs handle on the table (as of `version` when given)."""
    from deltalake import DeltaTable

    return DeltaTable(rs_uri(uri), version=version)
