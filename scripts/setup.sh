#!/usr/bin/env bash
# Idempotent set-up: virtualenv, pinned packages, the reclake package, and the Delta JARs.
# A second run with unchanged inputs is a fast no-op (stamp files record what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=.venv
JARS=jars

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

pip_inputs=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.reclake-stamp" 2>/dev/null)" != "$pip_inputs" ]; then
  echo "setup: installing Python packages (first run takes a few minutes)"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -r requirements.txt -r requirements-dev.txt -e ".[training]"
  "$VENV/bin/pip" check
  echo "$pip_inputs" > "$VENV/.reclake-stamp"
else
  echo "setup: Python packages up to date"
fi

# Headless Chromium (Debian package) for the browser test of the Airflow UI view
# (tests/e2e/test_airflow_server.py).
if ! command -v chromium > /dev/null 2>&1; then
  echo "setup: installing chromium with apt-get"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium > /dev/null
else
  echo "setup: chromium present"
fi

jar_inputs=$(sha256sum tools/jars/pom.xml | cut -c1-16)
if [ "$(cat "$JARS/.reclake-stamp" 2>/dev/null)" != "$jar_inputs" ]; then
  echo "setup: fetching Delta Lake JARs with Maven into $JARS/"
  rm -rf "$JARS"
  mvn -q -B -f tools/jars/pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$JARS"
  echo "$jar_inputs" > "$JARS/.reclake-stamp"
else
  echo "setup: Delta JARs up to date"
fi

# Hadoop's S3A connector and the AWS SDK modules it needs (tools/jars/s3a/pom.xml), plus
# reclake's Delta log store for S3 (tools/logstore/, compiled against Spark's and Delta's JARs),
# into jars/s3a/: jobs load them only when the lake is on an object store.
s3a_inputs=$( (cat tools/jars/s3a/pom.xml tools/logstore/src/reclake/delta/*.java; echo "$jar_inputs") \
  | sha256sum | cut -c1-16)
if [ "$(cat "$JARS/s3a/.reclake-stamp" 2>/dev/null)" != "$s3a_inputs" ]; then
  echo "setup: fetching the S3A connector with Maven into $JARS/s3a/, building the S3 log store"
  rm -rf "$JARS/s3a"
  mvn -q -B -f tools/jars/s3a/pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$JARS/s3a"
  classes=$(mktemp -d)
  spark_jars=$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars
  javac -d "$classes" --release 17 -cp "$spark_jars/*:$JARS/*" tools/logstore/src/reclake/delta/*.java
  jar cf "$JARS/s3a/reclake-logstore.jar" -C "$classes" .
  rm -rf "$classes"
  echo "$s3a_inputs" > "$JARS/s3a/.reclake-stamp"
else
  echo "setup: S3A JARs up to date"
fi

# PostgreSQL (Debian package) for the local cluster's Airflow metadata (scripts/cluster.sh).
if ! command -v pg_ctl > /dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1; then
  echo "setup: installing postgresql with apt-get"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql > /dev/null
else
  echo "setup: postgresql present"
fi

# A class-data-sharing archive of Spark's classes for local drivers (reclake.jvm_archive):
# about a fifth less CPU per short job. Rebuilt when the JVM, packages or JARs change.
cds_inputs=$( (echo "$pip_inputs $jar_inputs"; java -version 2>&1; cat include/reclake/jvm_archive.py) \
  | sha256sum | cut -c1-16)
if [ "$(cat "$JARS/.cds-stamp" 2>/dev/null)" != "$cds_inputs" ]; then
  echo "setup: building the Spark class archive (about a minute)"
  if PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/python" -m reclake.jvm_archive build; then
    echo "$cds_inputs" > "$JARS/.cds-stamp"
  else
    # Only speed depends on it: jobs run the same without the archive.
    echo "setup: WARNING: class archive not built; Spark jobs start slower" >&2
  fi
else
  echo "setup: Spark class archive up to date"
fi
