"""An s3a:// lake: how each engine reaches the object store, all derived from one Settings.

- Spark (Hadoop's S3A connector): `spark.hadoop.fs.s3a.*` properties, and the Delta log store
  that commits with S3 conditional writes (`reclake.delta.S3ConditionalLogStore`, built by
  `make setup` into jars/s3a/ beside the connector);
- delta-rs (the registry, the log readers): storage options;
- pyarrow (lakefs: landing drops, JSON documents, the training reader): an S3FileSystem.

Credentials are never settings, properties on a command line, or files in the lake: they come
from the environment when a process starts (RECLAKE_S3_ACCESS_KEY_ID /
RECLAKE_S3_SECRET_ACCESS_KEY, else AWS's own AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or
from an Airflow connection that orchestration reads when a task runs (Settings.s3_conn_id).
Without any, each engine falls back to its own default chain (instance profile, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from reclake.config import Settings

S3_SCHEMES = ("s3a://", "s3://")
# The Delta log store for s3a:// tables; its source is tools/logstore/.
LOG_STORE_CLASS = "reclake.delta.S3ConditionalLogStore"
ACCESS_KEY_ENV = ("RECLAKE_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENV = ("RECLAKE_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")


def is_s3(uri: str) -> bool:
    """True for an object-store URI (s3a:// as Spark names it, or s3://)."""
    return uri.startswith(S3_SCHEMES)


def uses_s3(settings: Settings) -> bool:
    """True when the lake or the landing area is on the object store."""
    return is_s3(settings.lake_root) or is_s3(settings.landing_uri)


@dataclass(frozen=True)
class Credentials:
    """An access key pair; its repr never shows the secret."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials | None:
        """The pair from RECLAKE_S3_* (else AWS_*) variables, or None when not set."""
        env = os.environ if env is None else env
        for key_var, secret_var in zip(ACCESS_KEY_ENV, SECRET_KEY_ENV, strict=True):
            if env.get(key_var) and env.get(secret_var):
                return cls(env[key_var], env[secret_var])
        return None

    @classmethod
    def resolve(
        cls, settings: Settings, env: Mapping[str, str] | None = None
    ) -> Credentials | None:
        """The pair from the environment, else (inside an Airflow task) from the connection
        settings.s3_conn_id names; None when neither is configured."""
        found = cls.from_env(env)
        if found is not None or not settings.s3_conn_id:
            return found
        try:
            from airflow.sdk import Connection
        except ImportError:  # the training side runs without Airflow: environment only
            return None
        # Airflow masks the password in every task log once it is read.
        conn = Connection.get(settings.s3_conn_id)
        if not conn.login or not conn.password:
            raise ValueError(f"connection {settings.s3_conn_id!r} has no login and password")
        return cls(conn.login, conn.password)

    def env(self) -> dict[str, str]:
        """The pair as the RECLAKE_S3_* variables a child process reads."""
        return {ACCESS_KEY_ENV[0]: self.access_key_id, SECRET_KEY_ENV[0]: self.secret_access_key}


def _endpoint(settings: Settings) -> tuple[str, str]:
    """(scheme, host:port) of the configured endpoint; ("", "") for AWS itself."""
    if not settings.s3_endpoint:
        return "", ""
    parts = urlsplit(settings.s3_endpoint)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"RECLAKE_S3_ENDPOINT={settings.s3_endpoint!r} is not an http(s) URL")
    return parts.scheme, parts.netloc


def hadoop_properties(settings: Settings) -> dict[str, str]:
    """Spark properties for S3A and Delta's s3a log store (no credentials: see spark_secrets)."""
    scheme, host = _endpoint(settings)
    props = {
        "spark.hadoop.fs.s3a.endpoint.region": settings.s3_region,
        "spark.hadoop.fs.s3a.path.style.access": str(settings.s3_path_style).lower(),
        # The log store's If-None-Match PUTs; on by default in Hadoop 3.4.2, said explicitly.
        "spark.hadoop.fs.s3a.create.conditional.enabled": "true",
        "spark.delta.logStore.s3a.impl": LOG_STORE_CLASS,
        "spark.delta.logStore.s3.impl": LOG_STORE_CLASS,
    }
    if host:
        props["spark.hadoop.fs.s3a.endpoint"] = f"{scheme}://{host}"
        props["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(scheme == "https").lower()
    return props


def spark_secrets(credentials: Credentials | None) -> dict[str, str]:
    """The credentials as S3A properties, set inside the driver only (never on a command
    line); Spark redacts these keys in its UI and event logs."""
    if credentials is None:
        return {}
    return {
        "spark.hadoop.fs.s3a.access.key": credentials.access_key_id,
        "spark.hadoop.fs.s3a.secret.key": credentials.secret_access_key,
    }


def delta_rs_options(settings: Settings, credentials: Credentials | None = None) -> dict[str, str]:
    """delta-rs storage options for the object store (credentials resolved when not given).
    delta-rs 1.x commits to S3 with conditional PUTs: no locking provider."""
    scheme, host = _endpoint(settings)
    credentials = credentials or Credentials.resolve(settings)
    options = {
        "AWS_REGION": settings.s3_region,
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": str(not settings.s3_path_style).lower(),
    }
    if host:
        options["AWS_ENDPOINT_URL"] = f"{scheme}://{host}"
        options["AWS_ALLOW_HTTP"] = str(scheme == "http").lower()
    if credentials is not None:
        options["AWS_ACCESS_KEY_ID"] = credentials.access_key_id
        options["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
    return options


def pyarrow_filesystem(settings: Settings, credentials: Credentials | None = None):
    """A pyarrow S3FileSystem for the configured store."""
    from pyarrow import fs as pafs

    scheme, host = _endpoint(settings)
    credentials = credentials or Credentials.resolve(settings)
    kwargs: dict[str, object] = {"region": settings.s3_region}
    if host:
        kwargs.update(endpoint_override=host, scheme=scheme)
    if credentials is not None:
        kwargs.update(
            access_key=credentials.access_key_id, secret_key=credentials.secret_access_key
        )
    # pyarrow sends path-style requests to an endpoint override unless told otherwise.
    kwargs["force_virtual_addressing"] = bool(host) and not settings.s3_path_style
    return pafs.S3FileSystem(**kwargs)


def bucket_key(uri: str) -> str:
    """'bucket/key' of an s3a:// or s3:// URI (pyarrow's path form)."""
    for prefix in S3_SCHEMES:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    raise ValueError(f"not an object-store URI: {uri}")


def child_env(settings: Settings) -> dict[str, str]:
    """Credentials a child process (spark-submit, a job run with plain Python) needs in its
    environment when this process read them from an Airflow connection; empty otherwise (a
    child inherits the environment's own)."""
    if not uses_s3(settings) or Credentials.from_env() is not None:
        return {}
    credentials = Credentials.resolve(settings)
    return credentials.env() if credentials is not None else {}
