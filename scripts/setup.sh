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
