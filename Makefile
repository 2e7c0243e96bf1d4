# The README's commands. `make demo` sets up and runs the main job; `make test` sets up and tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYTHONPATH := $(CURDIR)/include:$(PYTHONPATH)

.PHONY: setup demo test test-slow test-all test-fast lint format bench-ingest bench-features bench-maintenance \
        bench-reader bench-backfill soak chaos airflow airflow-stop cluster cluster-stop clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m reclake.demo

# Four workers on 2 cores, a test file each at a time, files in collection order (the
# Airflow and cluster files first, see tests/conftest.py). The run is CPU-bound (README).
# Tests marked slow (exhaustive variants: every hour re-run, crash points, ...) are left out;
# `make test-slow` runs them, `make test-all` runs everything.
test: setup
	$(VENV)/bin/pytest -n 4 --dist loadfile --no-loadscope-reorder --durations=30 -m "not slow"

test-slow: setup
	$(VENV)/bin/pytest -n 2 --dist loadfile --durations=30 -m slow

test-all: setup
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --durations=30

# Unit tests only: no Spark, no Airflow.
test-fast: setup
	$(VENV)/bin/pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-ingest: setup
	$(PY) bench/bench_ingest.py

bench-features: setup
	$(PY) bench/bench_features.py

bench-maintenance: setup
	$(PY) bench/bench_maintenance.py

bench-reader: setup
	$(PY) bench/bench_reader.py

bench-backfill: setup
	$(PY) bench/bench_backfill.py

# Kill every job (its whole process tree) at random moments, re-run it, compare the lake with a
# run never killed (docs/reliability.md, "Crashes"). `make chaos TRIALS=3 JOBS=ingest,vacuum`.
chaos: setup
	$(PY) bench/chaos.py $(if $(TRIALS),--trials $(TRIALS)) $(if $(JOBS),--jobs $(JOBS)) \
		$(if $(SEED),--seed $(SEED)) $(if $(MINUTES),--minutes $(MINUTES)) \
		$(if $(PARALLEL),--parallel $(PARALLEL))

# The concurrency soak (docs/reliability.md): the hourly writers, publish, optimize, vacuum,
# snapshot expire and a training reader at once on one lake, each its own process, for
# MINUTES minutes; prints commits, retries, failures, rows lost and failed live reads.
# Not in `make test` (a half-minute sample of it is: tests/soak/test_soak.py). The default
# is the soak's own (target-specific: `make chaos` reads MINUTES too).
soak: MINUTES ?= 10
soak: setup
	$(PY) tests/soak/soak.py --minutes $(MINUTES)

airflow: setup
	@bash scripts/airflow.sh start

airflow-stop:
	@bash scripts/airflow.sh stop

# The local multi-process deployment: object store, Spark master + 2 workers, Postgres, Airflow
# (docs/deploy.md). `source .cluster/env.sh` points a shell at it.
cluster: setup
	@bash scripts/cluster.sh start

cluster-stop:
	@bash scripts/cluster.sh stop

clean:
	rm -rf lake .airflow .cluster .chaos spark-warehouse metastore_db derby.log
