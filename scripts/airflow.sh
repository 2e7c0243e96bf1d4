#!/usr/bin/env bash
# Local Airflow for reclake (`make airflow` / `make airflow-stop`):
#   bash scripts/airflow.sh start|stop|status
# AIRFLOW_HOME defaults to <repo>/.airflow (git-ignored); AIRFLOW_PORT (default 8080) picks the
# API / UI port. `airflow standalone` runs scheduler, dag-processor, triggerer and api-server
# as its children; stop terminates those first and then the parent, so nothing is orphaned.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${RECLAKE_VENV:-$ROOT/.venv}
PORT=${AIRFLOW_PORT:-8080}
START_TIMEOUT=${AIRFLOW_START_TIMEOUT:-300}
STOP_TIMEOUT=${AIRFLOW_STOP_TIMEOUT:-45}

export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.airflow}
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
# standalone otherwise starts 32 worker slots; 2 cores here.
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-4}
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
# user:role pairs, e.g. admin:admin,viewer:viewer; passwords are generated at first start.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW__API__PORT=$PORT
# Local only by default; set AIRFLOW__API__HOST=0.0.0.0 to expose it (e.g. in a container).
export AIRFLOW__API__HOST=${AIRFLOW__API__HOST:-127.0.0.1}
export AIRFLOW__API__BASE_URL=${AIRFLOW__API__BASE_URL:-http://localhost:$PORT}
# standalone launches its components as `airflow ...` from PATH; spark-submit comes from the venv.
export PATH=$VENV/bin:$PATH
export PYTHONPATH=$ROOT/include${PYTHONPATH:+:$PYTHONPATH}
export SPARK_LOCAL_IP=127.0.0.1
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$VENV/bin/python}

PID_FILE=$AIRFLOW_HOME/standalone.pid
LOG_FILE=$AIRFLOW_HOME/standalone.log
PASSWORDS=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
HEALTH_URL=http://localhost:$PORT/api/v2/monitor/health

# PID of our running standalone, or nothing (a stale PID file or a reused PID does not count).
running_pid() {
  [ -f "$PID_FILE" ] || return 0
  local pid
  pid=$(cat "$PID_FILE")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "airflow standalone"; then
    echo "$pid"
  fi
}

# Wait until none of the given PIDs is alive; returns 1 on timeout.
wait_gone() {
  local deadline=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $deadline ]; do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && return 0
    sleep 0.5
  done
  return 1
}

start() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    echo "airflow: already running (pid $pid) at http://localhost:$PORT"
    credentials
    return 0
  fi
  mkdir -p "$AIRFLOW_HOME"
  echo "airflow: AIRFLOW_HOME=$AIRFLOW_HOME"
  echo "airflow: migrating the metadata database"
  airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 \
    || { tail -20 "$AIRFLOW_HOME/db-migrate.log"; exit 1; }
  echo "airflow: applying airflow_settings.yaml"
  python -m reclake.airflow_settings apply --file "$ROOT/airflow_settings.yaml" 2>/dev/null
  # Own session (process group), so a leftover child can always be found and reaped by stop.
  setsid nohup airflow standalone > "$LOG_FILE" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  pid=$!
  echo "airflow: standalone started (pid $pid), log $LOG_FILE; waiting for $HEALTH_URL"
  local deadline=$((SECONDS + START_TIMEOUT))
  until curl -fsS -o /dev/null "$HEALTH_URL" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "airflow: standalone exited during start; last log lines:" >&2
      tail -30 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "airflow: API not healthy after ${START_TIMEOUT}s; stopping. Log: $LOG_FILE" >&2
      stop
      exit 1
    fi
    sleep 1
  done
  echo "airflow: ready at http://localhost:$PORT"
  credentials
}

credentials() {
  local deadline=$((SECONDS + 30))
  while [ ! -s "$PASSWORDS" ] && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  if [ -s "$PASSWORDS" ]; then
    python - "$PASSWORDS" <<'PY'
import json, sys
for user, password in json.load(open(sys.argv[1])).items():
    print(f"airflow: login {user} / {password}  (from {sys.argv[1]})")
PY
  else
    echo "airflow: no generated password file at $PASSWORDS yet" >&2
  fi
}

stop() {
  local pid
  pid=$(running_pid)
  if [ -z "$pid" ]; then
    echo "airflow: not running"
    rm -f "$PID_FILE"
    return 0
  fi
  # The children are the components: api-server, scheduler, triggerer, dag-processor.
  local children
  children=$(pgrep -P "$pid" || true)
  if [ -n "$children" ]; then
    echo "airflow: stopping components (pids $(echo $children))"
    # shellcheck disable=SC2086
    kill -TERM $children 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone "$STOP_TIMEOUT" $children || echo "airflow: components slow to stop" >&2
  fi
  echo "airflow: stopping standalone (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$STOP_TIMEOUT" "$pid" || true
  # Last resort for anything left in the standalone's process group (e.g. task processes).
  local left
  left=$(pgrep -g "$pid" || true)
  if [ -n "$left" ]; then
    echo "airflow: killing leftover processes $(echo $left)" >&2
    kill -KILL -- "-$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 10 $left || true
  fi
  rm -f "$PID_FILE"
  echo "airflow: stopped"
}

status() {
  local pid
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    echo "airflow: running (pid $pid) at http://localhost:$PORT"
  else
    echo "airflow: not running"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
