"""An s3a:// lake's settings reach Spark, delta-rs and pyarrow the same way, and the
credentials only where a process needs them."""

from __future__ import annotations

import pytest

from reclake.config import Settings
from reclake.objectstore import (
    LOG_STORE_CLASS,
    Credentials,
    delta_rs_options,
    hadoop_properties,
    spark_secrets,
    uses_s3,
)
from reclake.spark import spark_conf

ENV = {
    "RECLAKE_LAKE_ROOT": "s3a://reclake/lake",
    "RECLAKE_S3_ENDPOINT": "http://127.0.0.1:9400",
    "RECLAKE_S3_REGION": "eu-west-3",
    "RECLAKE_S3_PATH_STYLE": "true",
}
PAIR = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-secret")


def test_one_endpoint_for_every_engine():
    settings = Settings.from_env(ENV)
    assert uses_s3(settings) and not uses_s3(Settings())
    props = hadoop_properties(settings)
    assert props["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9400"
    assert props["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert props["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert props["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-3"
    assert props["spark.delta.logStore.s3a.impl"] == LOG_STORE_CLASS
    options = delta_rs_options(settings, PAIR)
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9400"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_REGION"] == "eu-west-3"
    assert options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"
    assert options["AWS_SECRET_ACCESS_KEY"] == PAIR.secret_access_key


def test_spark_conf_carries_s3a_but_never_credentials():
    local = spark_conf(Settings())
    assert not any(k.startswith("spark.hadoop.fs.s3a") for k in local)
    conf = spark_conf(Settings.from_env({**ENV, "RECLAKE_S3_SECRET_ACCESS_KEY": "x" * 20}))
    assert conf["spark.delta.logStore.s3a.impl"] == LOG_STORE_CLASS
    assert not any("key" in k for k in conf), "credentials must not reach spark-submit"
    assert spark_secrets(PAIR)["spark.hadoop.fs.s3a.secret.key"] == PAIR.secret_access_key


def test_credentials_come_from_the_environment_and_hide_their_secret():
    assert Credentials.from_env({}) is None
    aws = Credentials.from_env({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert aws == Credentials("a", "b")
    ours = Credentials.from_env(
        {
            "AWS_ACCESS_KEY_ID": "a",
            "AWS_SECRET_ACCESS_KEY": "b",
            **PAIR.env(),
        }
    )
    assert ours == PAIR
    assert PAIR.secret_access_key not in repr(PAIR)
    assert "secret" not in repr(Settings.from_env(ENV)).lower()


def test_a_bad_endpoint_fails_clearly():
    with pytest.raises(ValueError, match="RECLAKE_S3_ENDPOINT"):
        hadoop_properties(Settings.from_env({**ENV, "RECLAKE_S3_ENDPOINT": "127.0.0.1:9400"}))
