# Every target creates the virtual environment first when it is missing (or pyproject.toml changed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The compiled kernel (setup.py): rebuilt in place when a source under daemon/core or strategies
# changes (until then those edits run as pure Python, with a warning). BARBUS_PURE_PYTHON=1, or no
# C compiler, builds nothing: the pure-Python kernel runs.
COMPILED := $(VENV)/.compiled
KERNEL_SOURCES := $(wildcard daemon/core/*.py strategies/*.py strategies/indicators/*.py) setup.py

.PHONY: venv build demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "barbus needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP) $(COMPILED)

$(COMPILED): $(STAMP) $(KERNEL_SOURCES)
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(COMPILED)

venv: $(STAMP)

## Compile the kernel again after editing it (demo, test and bench do this themselves).
build: $(COMPILED)

## Backtest the metatrend strategy on the bundled real BTCUSDT sample (3 months of 1-minute bars).
demo: $(COMPILED)
	$(BIN)/barbus replay --strategy metatrend --out out/demo

## The test suite (the command CI runs, after `make lint`).
test: $(COMPILED)
	$(BIN)/python -m pytest

## The unit and property tests without the process-heavy ones (marker `process`) and the long
## real-data indicator comparisons (marker `slow`), over every
## core (pytest-xdist) and with fewer hypothesis examples (profile `fast`): a check in about a
## minute while editing. `make test` is the whole suite, as CI runs it.
test-fast: $(COMPILED)
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -m "not process and not slow" -q -n auto -p no:cacheprovider \
		--ignore=tests/integration --ignore=tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Every benchmark, one after the other, then a summary; fails if any missed its target.
## BENCH="--only bench_cache bench_replay" runs a subset.
bench: $(COMPILED)
	$(BIN)/python -m benchmarks.run_all $(BENCH)

clean:
	rm -rf $(VENV) .venv-newest out .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
