# stopcheck: two commands on a fresh machine with Python 3.11 and make.
#   make run   set up .venv from the lock file, generate the built-in sample if absent,
#              materialise every asset, print where the outputs are
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

test: setup
	.venv/bin/python -m pytest

dev: setup
	mkdir -p $(DAGSTER_HOME)
	.venv/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data/warehouse .dagster
