# Two commands do all set-up from a clean clone: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPARK_STAMP := $(VENV)/.spark-stamp
export NUDGE_HOME ?= $(CURDIR)/workspace
export NUDGE_CONTENT ?= $(CURDIR)/content
export DAGSTER_HOME ?= $(NUDGE_HOME)/dagster
PYTEST_ARGS ?=
# The newest Python the machine has (pyenv's 3.13 here): `make test` also runs the fast suite on it.
# (pyenv's shim for a version that is not the global one fails, so ask pyenv for its prefix first.)
NEWEST_PYTHON ?= $(shell p=$$(pyenv prefix 3.13 2>/dev/null) && echo $$p/bin/python3.13 || command -v python3.13)
NEWEST_VENV := .venv-newest
NEWEST_STAMP := $(NEWEST_VENV)/.installed-stamp

.PHONY: install browser demo test test-fast test-warehouses test-spark-others test-newest-python ui bench lint clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The spark extra (pyspark and dbt-spark, about 400 MB) for the tests that build on Spark.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

# Debian's chromium, for the browser tests of the web pages (as root, like CI).
browser:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

demo: install
	$(BIN)/nudge demo --yes

# Lint, the whole suite on two workers (every scenario file on DuckDB and on PostgreSQL, one
# seg_* file of each family on Spark too: test-spark-others mirrors the rest, and .ci/run runs it
# after this when time allows), then the fast suite on the newest Python. The seg_*
# files' DuckDB runs are those of their side-by-side run with Postgres and Spark
# (tests/test_warehouse_parity.py), not a second one alone. `make test-fast` skips the slow
# end-to-end tests. The 30 slowest tests are listed at the end: what to look at when CI nears
# its time limit.
test: lint browser $(SPARK_STAMP)
	NUDGE_TEST_SPARK=families $(BIN)/python -m pytest -n 2 --dist worksteal -m "not duckdb_side_by_side" --durations=30 \
		$(PYTEST_ARGS)
	$(MAKE) test-newest-python

$(NEWEST_STAMP): pyproject.toml setup.py
	test -x "$(NEWEST_PYTHON)" || { echo "no Python 3.13 found (python3.13 or pyenv's 3.13); set NEWEST_PYTHON"; exit 1; }
	test -x $(NEWEST_VENV)/bin/python || "$(NEWEST_PYTHON)" -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(NEWEST_STAMP)

# The fast suite on the newest supported Python (3.13), in its own virtualenv, without the
# scenario files: they are most of the fast suite's time and run dbt and SQL, not code that
# differs between Python versions; every one of them runs on 3.11 above, and the Dagster, CLI,
# collector and sender tests that run here build the dbt project too.
NEWEST_PYTHON_SKIPS := --ignore=tests/test_scenarios.py --ignore=tests/test_scenarios_postgres.py \
	--ignore=tests/test_warehouse_parity.py
test-newest-python: $(NEWEST_STAMP)
	$(NEWEST_VENV)/bin/python -m pytest -n 2 --dist worksteal -m "not slow" -p no:cacheprovider \
		$(NEWEST_PYTHON_SKIPS) $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow" $(PYTEST_ARGS)

# The seg_* files make test does not mirror on Spark (it mirrors one of each family), run on
# DuckDB and mirrored on Spark, without Postgres (make test ran them there): about half of make
# test's time (21 minutes where make test took 48). .ci/run runs it after make test when time
# allows.
test-spark-others: $(SPARK_STAMP)
	NUDGE_TEST_SPARK=others $(BIN)/python -m pytest -n 2 --dist worksteal --durations=10 $(PYTEST_ARGS) \
		tests/test_warehouse_parity.py::test_spark_mirrors_duckdb

# Every scenario file on PostgreSQL (the machine's server) and every seg_* file on Spark, alone
# (make test mirrors one seg_* file of each family on Spark: every file would add about 20
# minutes to it).
test-warehouses: $(SPARK_STAMP)
	NUDGE_TEST_SPARK=1 $(BIN)/python -m pytest -n 2 --dist worksteal $(PYTEST_ARGS) \
		tests/test_scenarios_postgres.py tests/test_warehouse_parity.py

# Every stage timed against its floor on generated data (BENCHMARKS.md). BENCH_SCALE=small|medium|large;
# large (1M users, 10M events) takes tens of minutes on 2 cores. Writes bench/results.json.
# BENCH_WAREHOUSE=postgres runs it in a database of its own on NUDGE_POSTGRES_URL's server.
BENCH_SCALE ?= large
BENCH_WAREHOUSE ?= duckdb
bench: install
	$(BIN)/nudge bench --scale $(BENCH_SCALE) --warehouse $(BENCH_WAREHOUSE)

ui: install
	$(BIN)/nudge validate
	exec $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Style, and the layers of docs/architecture.md (import-linter contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf workspace .pytest_cache .ruff_cache $(NEWEST_VENV)
