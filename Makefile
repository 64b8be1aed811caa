# cgt-gateway: `make demo` and `make test` set everything up on a fresh machine, then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps demo test lint typecheck unit bench soak clean

setup: system-deps $(STAMP)

system-deps:
	@tools/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/gateway demo --data-dir var/demo

test: setup lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

bench: setup
	@tools/system-deps.sh --bench
	$(BIN)/python -m bench

# The soak (docs/operations.md, "Soak"): 200 terminals, gateway SIGKILLs, a broker restart.
SOAK_DURATION ?= 600
SOAK_ARGS ?=

soak: setup
	$(BIN)/python tools/soak.py --duration $(SOAK_DURATION) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
