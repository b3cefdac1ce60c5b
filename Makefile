# Two commands for a newcomer: `make demo` and `make test`. Both set themselves up:
# a project .venv from the pinned requirements, a project-local AIRFLOW_HOME with its
# metadata database migrated, and (for tests) PostgreSQL binaries when missing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS := False
export GX_ANALYTICS_ENABLED := False
export PATH := $(BIN):$(PATH)

.PHONY: demo test reliability bench airflow lock clean setup

setup: $(VENV)/.installed $(AIRFLOW_HOME)/.migrated

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(AIRFLOW_HOME)/.migrated: $(VENV)/.installed
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

demo: setup
	$(BIN)/dealer-feed demo

TEST_WORKERS ?= 2

test: setup
	bash scripts/ensure-test-services.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The reliability suite (issue 14) alone, with its one report table (also written to reliability-report.md).
reliability: setup
	bash scripts/ensure-test-services.sh
	DEALER_FEED_RELIABILITY_REPORT=$(CURDIR)/reliability-report.md $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m reliability; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: setup
	bash scripts/ensure-test-services.sh
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

airflow: setup
	$(BIN)/dealer-feed airflow

lock:
	rm -rf $(CURDIR)/.lockvenv && $(PYTHON) -m venv $(CURDIR)/.lockvenv
	$(CURDIR)/.lockvenv/bin/pip install --quiet -r requirements.in
	$(CURDIR)/.lockvenv/bin/pip freeze | LC_ALL=C sort > .lock.runtime
	$(CURDIR)/.lockvenv/bin/pip install --quiet -r requirements-test.in
	$(CURDIR)/.lockvenv/bin/pip freeze | LC_ALL=C sort > .lock.all
	{ echo "# Runtime lock: every package pinned, resolved together on Python 3.11 from requirements.in"; \
	  echo "# (regenerate with \`make lock\`). Installed by \`make\` into .venv."; cat .lock.runtime; } > requirements.txt
	{ echo "# Test lock: test-only packages pinned on top of requirements.txt (regenerate with \`make lock\`)."; \
	  echo "-c requirements.txt"; LC_ALL=C comm -13 .lock.runtime .lock.all; } > requirements-test.txt
	rm -rf $(CURDIR)/.lockvenv .lock.runtime .lock.all

clean:
	rm -rf $(AIRFLOW_HOME) data .pytest_cache
