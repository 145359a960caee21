# Every target bootstraps .venv on a fresh clone: nothing but Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# `make run PORT=8012` (or GATEWAY_PORT/PORT in the environment): the port to listen on.
PORT_ARG = $(if $(PORT),--port $(PORT))

run: $(STAMP)
	@mkdir -p var
	$(BIN)/gateway serve --integrations integrations.d $(PORT_ARG)

demo: $(STAMP)
	$(BIN)/gateway demo --integrations integrations.d $(PORT_ARG)

test: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy
	$(BIN)/gateway lint integrations.d
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/gateway lint integrations.d

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
