# brandlens — everything a fresh machine needs is installed from this repo's files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lock run test test-unit test-integration lint format bench clean

install: $(STAMP)

# The virtual environment is rebuilt when pyproject.toml changes.
# Versions are pinned in constraints.txt (reviewed, reproducible); `make lock` refreshes it.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "brandlens needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^brandlens' > constraints.txt

## make run: start the embedded stack (moto server + services), submit sample media, show the jobs
run: install
	$(BIN)/brandlens demo

## make test: unit and integration tests (a moto server on loopback, started by the tests)
test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: measurements against baselines taken in the same run; results in bench/results/
bench: install
	$(BIN)/python bench/worker_runtime.py
	$(BIN)/python bench/framer.py
	$(BIN)/python bench/detector.py
	$(BIN)/python bench/detector_server.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache tests/artifacts .brandlens
