# Set-up and everyday commands. Each target creates the virtual environment when missing.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test test-slow bench clean

$(BIN)/audit: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/audit

demo: $(BIN)/audit  ## build the demo folder and scan it
	$(BIN)/audit demo --dir demo

test: $(BIN)/audit  ## lint and format check, then the default (fast) test run, as CI runs it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

test-slow: $(BIN)/audit  ## the slow tests only
	$(BIN)/python -m pytest -q -m slow

bench: $(BIN)/audit  ## scan throughput against decode-only
	$(BIN)/python benchmarks/scan_throughput.py

clean:
	rm -rf demo audit-out .pytest_cache
