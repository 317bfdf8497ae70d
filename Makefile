# SOLARIS-batch: `make demo` runs the main job, `make test` runs the tests. Each sets itself up.
SHELL := /bin/bash
PY ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS := solaris_batch.dag_defaults.DB_CONNECT_ARGS
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC := solaris_batch.dag_defaults.DB_CONNECT_ARGS
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast lint airflow-db airflow clean

setup: $(STAMP) $(AIRFLOW_HOME)/.migrated

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[all,dev]'
	touch $@

$(AIRFLOW_HOME)/.migrated: $(STAMP)
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow pools set solaris_fm 1 "FM inference slots: one per GPU" >> $(AIRFLOW_HOME)/db-migrate.log 2>&1
	touch $@

airflow-db: $(AIRFLOW_HOME)/.migrated

# The Airflow UI and scheduler on the embedded default (SQLite, LocalExecutor), with the project's DAGs.
airflow: setup
	@echo "Airflow UI: http://localhost:8080  (user admin; password printed below by 'airflow standalone'"
	@echo "  and kept in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated)"
	SOLARIS_DATA=$${SOLARIS_DATA:-$(CURDIR)/data} $(BIN)/airflow standalone

demo: setup
	$(BIN)/python -m solaris_batch.demo

test: setup
	$(BIN)/ruff check solaris_batch spark_jobs dags tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check solaris_batch spark_jobs dags tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf .airflow data demo-data .pytest_cache
