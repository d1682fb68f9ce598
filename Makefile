# brandlens — everything a fresh machine needs is installed from this repo's files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Label Studio (the self-hosted labelling tool) lives in its own virtual environment,
# so its dependencies never constrain the services'. Pinned in constraints-labelstudio.txt.
LS_VENV  := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed-stamp

# checkov (the infra/ policy scanner) too: its dependency tree conflicts with the
# services' pins. Pinned in constraints-checkov.txt.
CK_VENV  := .venv-checkov
CK_STAMP := $(CK_VENV)/.installed-stamp

.PHONY: images install labelstudio checkov lock run test test-unit test-integration chaos lint format bench clean

install: $(STAMP)

labelstudio: $(LS_STAMP)

$(LS_STAMP): constraints-labelstudio.txt
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-labelstudio.txt label-studio
	touch $(LS_STAMP)

checkov: $(CK_STAMP)

$(CK_STAMP): constraints-checkov.txt
	test -x $(CK_VENV)/bin/python || $(PYTHON) -m venv $(CK_VENV)
	$(CK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-checkov.txt checkov
	touch $(CK_STAMP)

# The virtual environment is rebuilt when pyproject.toml changes.
# Versions are pinned in constraints.txt (reviewed, reproducible); `make lock` refreshes it.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "brandlens needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lock: install labelstudio checkov
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^brandlens' > constraints.txt
	$(LS_VENV)/bin/python -m pip freeze --exclude-editable > constraints-labelstudio.txt
	$(CK_VENV)/bin/python -m pip freeze --exclude-editable > constraints-checkov.txt

## make run: the whole product locally: train a detector on sample media, analyse a video, report
run: install
	$(BIN)/brandlens demo

## make test: unit and integration tests (a moto server on loopback, started by the tests)
test: install labelstudio checkov
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install labelstudio checkov
	$(BIN)/pytest tests/integration

## make chaos: the chaos run alone (services SIGKILLed while jobs run; also part of make test)
chaos: install
	$(BIN)/pytest tests/chaos -m chaos

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r services

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: measurements against baselines taken in the same run; results in bench/results/
bench: install
	$(BIN)/python bench/worker_runtime.py
	$(BIN)/python bench/framer.py
	$(BIN)/python bench/detector.py
	$(BIN)/python bench/detector_server.py
	$(BIN)/python bench/inferer.py
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/persistence.py

## make images: build every service image (needs a Docker engine), tagged brandlens-<service>:$(TAG)
TAG      ?= dev
SERVICES := ingest framer labeler trainer model-manager inferer model-server
images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine answers (docker info failed); build where one runs" >&2; exit 1; }
	@for s in $(SERVICES); do \
	  echo "building brandlens-$$s:$(TAG)"; \
	  docker build -f docker/$$s.Dockerfile -t brandlens-$$s:$(TAG) . || exit 1; \
	done

clean:
	rm -rf $(VENV) $(LS_VENV) $(CK_VENV) .mypy_cache .ruff_cache .pytest_cache tests/artifacts .brandlens
