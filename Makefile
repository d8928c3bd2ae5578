# stopcheck: two commands on a fresh machine with Python 3.11 and make.
#   make run   set up .venv from the lock file, generate the built-in sample if absent,
#              check it, materialise every asset with progress, print a summary
#   make dev   the Dagster UI (code location "stopcheck") on the same DAGSTER_HOME
#   make test  set up .venv and run the whole test suite

PYTHON ?= python3.11
UV_VERSION := 0.9.30
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: setup run test dev clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

setup: .venv/.synced

run: setup
	.venv/bin/stopcheck run

# NOTE: two pytest-xdist workers, each test file on one worker (its module fixtures built once):
# many tests wait on single-threaded Dagster, GX and process start-up, so on the 2-core machine
# two at a time take 683 s where one at a time took 1,139 s (CI's limit is 20 minutes).
test: setup
	.venv/bin/python -m pytest -n 2 --dist loadfile

# NOTE: through the CLI, which creates DAGSTER_HOME with telemetry off, as `make run` does.
dev: setup
	.venv/bin/stopcheck dev

clean:
	rm -rf data/warehouse .dagster
