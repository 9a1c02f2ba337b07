# Every target creates the virtual environment first when it is missing (or pyproject.toml changed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast fast-strategies fast-others lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "barbus needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Backtest the metatrend strategy on the bundled real BTCUSDT sample (3 months of 1-minute bars).
demo: $(STAMP)
	$(BIN)/barbus replay --strategy metatrend --out out/demo

## The test suite (the command CI runs, after `make lint`).
test: $(STAMP)
	$(BIN)/python -m pytest

## The unit and property tests without the process-heavy ones (marker `process`), as two pytest
## runs side by side (one per core); fails if either fails or collects nothing (exit 5).
FAST := $(BIN)/python -m pytest -m "not process" -q
test-fast: $(STAMP)
	@$(MAKE) --no-print-directory -j2 -Otarget fast-strategies fast-others

fast-strategies:
	$(FAST) tests/unit/strategies

fast-others:
	$(FAST) tests --ignore=tests/unit/strategies --ignore=tests/integration --ignore=tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Every benchmark, one after the other, then a summary; fails if any missed its target.
## BENCH="--only bench_cache bench_replay" runs a subset.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all $(BENCH)

clean:
	rm -rf $(VENV) .venv-newest out .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
