#!/usr/bin/env bash
# A local multi-process deployment of reclake (`make cluster` / `make cluster-stop`):
#   bash scripts/cluster.sh start|stop|status|env
# Every part is a real server process on this machine, listening on 127.0.0.1 only:
#   - an S3-compatible object store (moto's server, scripts/s3server.py) holding the lake
#     (s3a://reclake/lake) and the landing area (s3a://reclake/landing);
#   - a Spark standalone master and two workers (1 core each), from pyspark's own distribution;
#   - PostgreSQL for Airflow's metadata;
#   - Airflow (scripts/airflow.sh) with the LocalExecutor, spark_default -> spark://.
# The deployment keeps no state across stop and start: the object store holds the lake in
# memory, and stop removes the Postgres data. Run folder (pids, logs, env): RECLAKE_CLUSTER_DIR
# (default <repo>/.cluster). Ports: RECLAKE_CLUSTER_{S3,PG,SPARK,SPARK_UI,AIRFLOW}_PORT.
# `source <run folder>/env.sh` gives a shell the settings (and the generated credentials) to
# run jobs and the CLI against it by hand.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${RECLAKE_VENV:-$ROOT/.venv}
RUN=${RECLAKE_CLUSTER_DIR:-$ROOT/.cluster}
S3_PORT=${RECLAKE_CLUSTER_S3_PORT:-9400}
PG_PORT=${RECLAKE_CLUSTER_PG_PORT:-5440}
SPARK_PORT=${RECLAKE_CLUSTER_SPARK_PORT:-7077}
SPARK_UI_PORT=${RECLAKE_CLUSTER_SPARK_UI_PORT:-8091}
AIRFLOW_PORT=${RECLAKE_CLUSTER_AIRFLOW_PORT:-8095}
WORKERS=${RECLAKE_CLUSTER_WORKERS:-2}
WORKER_MEMORY=${RECLAKE_CLUSTER_WORKER_MEMORY:-3g}
START_TIMEOUT=${RECLAKE_CLUSTER_START_TIMEOUT:-600}
BUCKET=reclake
HOST=127.0.0.1
SPARK_HOME=$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
PIDS=$RUN/pids
LOGS=$RUN/logs

export SPARK_LOCAL_IP=$HOST SPARK_HOME
export PYSPARK_PYTHON=$VENV/bin/python
export PATH=$VENV/bin:$PATH

log() { echo "cluster: $*"; }

# PID of a component we started, if it still runs (a stale file or a reused PID does not count).
running_pid() {
  local file=$PIDS/$1.pid pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"; then
    echo "$pid"
  fi
}

# Start a server in its own session (process group), so stop can reap its children too.
launch() {
  local name=$1; shift
  setsid nohup "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

wait_until() {
  local what=$1 deadline=$((SECONDS + START_TIMEOUT)); shift
  until "$@" > /dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: $what not ready after ${START_TIMEOUT}s; logs in $LOGS" >&2
      return 1
    fi
    sleep 1
  done
}

pg_bin() {
  local dir
  dir=$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null \
    || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")")
  echo "$dir/$1"
}

# Postgres refuses to run as root: then it runs as the `postgres` user, with its data in a
# folder that user owns (the run folder may sit under a private temp folder).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_data() {
  cat "$RUN/postgres.path" 2>/dev/null || true
}

start_postgres() {
  local data
  data=$(mktemp -d "${TMPDIR:-/tmp}/reclake-postgres.XXXXXX")
  echo "$data" > "$RUN/postgres.path"
  [ "$(id -u)" -eq 0 ] && chown postgres "$data"
  as_pg "$(pg_bin initdb)" -D "$data" -U reclake --auth=trust -E UTF8 > "$LOGS/postgres-init.log"
  as_pg "$(pg_bin pg_ctl)" -D "$data" -l "$data/server.log" -w -t 120 \
    -o "-p $PG_PORT -k $data -c listen_addresses=$HOST -c max_connections=60" start \
    > /dev/null
  as_pg "$(pg_bin createdb)" -h "$HOST" -p "$PG_PORT" -U reclake airflow
  log "postgres on $HOST:$PG_PORT (data $data)"
}

stop_postgres() {
  local data
  data=$(pg_data)
  [ -n "$data" ] || return 0
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$(pg_bin pg_ctl)" -D "$data" -m fast -w -t 60 stop > /dev/null || true
    cp "$data/server.log" "$LOGS/postgres.log" 2>/dev/null || true
  fi
  rm -rf "$data" "$RUN/postgres.path"
  log "postgres stopped"
}

write_env() {
  # Credentials for the object store, new for each start; moto accepts any pair, a real store
  # would take them from its own user management. Kept out of logs, the lake and the repo.
  umask 077
  {
    echo "export RECLAKE_S3_ACCESS_KEY_ID=reclake-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "export RECLAKE_S3_SECRET_ACCESS_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
  } > "$RUN/credentials"
  cat > "$RUN/env.sh" <<EOF
# reclake's local cluster (scripts/cluster.sh): source this to run jobs and the CLI against it.
export RECLAKE_LAKE_ROOT=s3a://$BUCKET/lake
export RECLAKE_LANDING_ROOT=s3a://$BUCKET/landing
export RECLAKE_S3_ENDPOINT=http://$HOST:$S3_PORT
export RECLAKE_S3_PATH_STYLE=true
export RECLAKE_SPARK_MASTER=spark://$HOST:$SPARK_PORT
export SPARK_LOCAL_IP=$HOST
export PYSPARK_PYTHON=$VENV/bin/python
export PYTHONPATH=$ROOT/include\${PYTHONPATH:+:\$PYTHONPATH}
. "$RUN/credentials"
EOF
  umask 022
}

# True once the master counts all workers alive.
workers_alive() {
  curl -fsS "http://$HOST:$SPARK_UI_PORT/json/" | "$VENV/bin/python" -c \
    'import json,sys; sys.exit(json.load(sys.stdin)["aliveworkers"] != int(sys.argv[1]))' \
    "$WORKERS"
}

# A start that fails half-way stops what it started.
fail() {
  echo "cluster: start failed; stopping what was started" >&2
  stop > /dev/null 2>&1 || true
  exit 1
}

start() {
  if [ -n "$(running_pid master org.apache.spark.deploy.master.Master)" ]; then
    log "already running (run folder $RUN)"
    status
    return 0
  fi
  mkdir -p "$PIDS" "$LOGS"
  write_env
  start_postgres || fail

  launch s3 "$VENV/bin/python" "$ROOT/scripts/s3server.py" --host "$HOST" --port "$S3_PORT" \
    --bucket "$BUCKET"
  wait_until "object store" curl -fsS -o /dev/null "http://$HOST:$S3_PORT/$BUCKET" || fail
  log "object store (moto) on http://$HOST:$S3_PORT, bucket $BUCKET"

  launch master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host "$HOST" --port "$SPARK_PORT" --webui-port "$SPARK_UI_PORT"
  wait_until "spark master" curl -fsS -o /dev/null "http://$HOST:$SPARK_UI_PORT/json/" || fail
  local i
  for i in $(seq 1 "$WORKERS"); do
    mkdir -p "$RUN/spark/worker-$i"
    launch "worker-$i" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores 1 --memory "$WORKER_MEMORY" --webui-port 0 \
      --work-dir "$RUN/spark/worker-$i" "spark://$HOST:$SPARK_PORT"
  done
  wait_until "$WORKERS spark workers" workers_alive || fail
  log "spark master spark://$HOST:$SPARK_PORT (UI http://$HOST:$SPARK_UI_PORT), $WORKERS workers"

  # Airflow over Postgres with the LocalExecutor; its spark_default points at the master (an
  # AIRFLOW_CONN_ variable wins over the connection airflow_settings.yaml puts in the DB).
  # shellcheck disable=SC1091
  (
    . "$RUN/env.sh"
    export AIRFLOW_HOME=$RUN/airflow AIRFLOW_PORT=$AIRFLOW_PORT
    # psycopg 3 serves both the sync and the async engine Airflow 3 opens.
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg://reclake@$HOST:$PG_PORT/airflow
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    export AIRFLOW__CORE__EXECUTOR=LocalExecutor
    export AIRFLOW_CONN_SPARK_DEFAULT="{\"conn_type\": \"spark\", \"host\": \"spark://$HOST\", \"port\": $SPARK_PORT, \"extra\": {\"deploy-mode\": \"client\", \"spark-binary\": \"spark-submit\"}}"
    # Airflow reads the object store's credentials from a connection (as a deployment with a
    # secrets backend would), not from its environment: tasks and the jobs they start get them
    # when a task runs (reclake.objectstore.Credentials.resolve), masked in the task logs.
    export AIRFLOW_CONN_RECLAKE_S3="{\"conn_type\": \"generic\", \"login\": \"$RECLAKE_S3_ACCESS_KEY_ID\", \"password\": \"$RECLAKE_S3_SECRET_ACCESS_KEY\"}"
    export RECLAKE_S3_CONN_ID=reclake_s3
    unset RECLAKE_S3_ACCESS_KEY_ID RECLAKE_S3_SECRET_ACCESS_KEY
    export AIRFLOW_START_TIMEOUT=$START_TIMEOUT
    bash "$ROOT/scripts/airflow.sh" start
  ) > "$LOGS/airflow-start.log" 2>&1 || { tail -20 "$LOGS/airflow-start.log" >&2; fail; }
  grep -v "login" "$LOGS/airflow-start.log" | sed 's/^/  /'
  log "ready; airflow logins in $RUN/airflow/simple_auth_manager_passwords.json.generated"
  log "use it from a shell: source $RUN/env.sh"
}

# Stop one component: TERM its process group, then KILL whatever is left.
stop_component() {
  local name=$1 pattern=$2 pid left
  pid=$(running_pid "$name" "$pattern")
  rm -f "$PIDS/$name.pid"
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    [ -z "$(pgrep -g "$pid" 2>/dev/null)" ] && break
    sleep 0.5
  done
  left=$(pgrep -g "$pid" 2>/dev/null || true)
  if [ -n "$left" ]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  log "$name stopped"
}

stop() {
  mkdir -p "$PIDS" "$LOGS"
  if [ -d "$RUN/airflow" ]; then
    AIRFLOW_HOME=$RUN/airflow AIRFLOW_PORT=$AIRFLOW_PORT bash "$ROOT/scripts/airflow.sh" stop \
      | sed 's/^/  /' || true
  fi
  local i
  for i in $(seq 1 "$WORKERS"); do
    stop_component "worker-$i" org.apache.spark.deploy.worker.Worker
  done
  stop_component master org.apache.spark.deploy.master.Master
  stop_component s3 s3server.py
  stop_postgres
  rm -f "$RUN/credentials"
}

status() {
  local code=0 pid name
  for name in s3:s3server.py master:deploy.master.Master \
    $(for i in $(seq 1 "$WORKERS"); do echo "worker-$i:deploy.worker.Worker"; done); do
    pid=$(running_pid "${name%%:*}" "${name#*:}")
    if [ -n "$pid" ]; then echo "cluster: ${name%%:*} running (pid $pid)"; else
      echo "cluster: ${name%%:*} not running"; code=3; fi
  done
  if [ -n "$(pg_data)" ] && as_pg "$(pg_bin pg_ctl)" -D "$(pg_data)" status > /dev/null 2>&1; then
    echo "cluster: postgres running on $HOST:$PG_PORT"
  else
    echo "cluster: postgres not running"; code=3
  fi
  AIRFLOW_HOME=$RUN/airflow AIRFLOW_PORT=$AIRFLOW_PORT bash "$ROOT/scripts/airflow.sh" status \
    || code=3
  return $code
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) cat "$RUN/env.sh" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
