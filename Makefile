# Everyday entry points. `make build` and `make test` are the two a newcomer needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install build test test-hostile test-docker standin-images lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Build the numpy + pandas layer for python3.12 on x86_64, without Docker or AWS.
build: install
	$(BIN)/layerbuild build numpy-pandas --runtime python3.12 --arch x86_64 --builder local

test: install
	$(BIN)/python -m pytest

# Only the tests that try to break layerbuild: bad input, faults, interruptions.
test-hostile: install
	$(BIN)/python -m pytest -m hostile

# The Debian stand-ins for the Amazon Linux images (built once, then reused).
standin-images:
	bash .ci/standin-images

test-docker: install standin-images
	$(BIN)/python -m pytest tests/docker -m docker

lint: install
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check layerbuild tests bench
	$(BIN)/ruff format --check layerbuild tests bench

# With the stand-in build image present, the container build is timed too.
bench: install
	$(BIN)/python bench/run.py
	if docker image inspect layerbuild-standin:bookworm-build >/dev/null 2>&1; then \
	  $(BIN)/python bench/run.py numpy-pandas:python3.11:x86_64 \
	    --docker-image layerbuild-standin:bookworm-build; fi

clean:
	rm -rf dist .pytest_cache
