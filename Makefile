# cgt-gateway: `make demo` and `make test` set everything up on a fresh machine, then run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The AsyncAPI CLI that validates docs/asyncapi.yaml in the tests, pinned by its lock file.
ASYNCAPI_CLI := tools/asyncapi-cli
ASYNCAPI_STAMP := $(ASYNCAPI_CLI)/node_modules/.installed-stamp

.PHONY: setup system-deps demo test lint typecheck unit bench soak fuzz clean

setup: system-deps $(STAMP)

system-deps:
	@tools/system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Exactly the lock file's packages; no install scripts (tools/asyncapi-cli/.npmrc says why).
$(ASYNCAPI_STAMP): $(ASYNCAPI_CLI)/package.json $(ASYNCAPI_CLI)/package-lock.json | system-deps
	cd $(ASYNCAPI_CLI) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $(ASYNCAPI_STAMP)

demo: setup
	$(BIN)/gateway demo --data-dir var/demo $(DEMO_ARGS)

# Every test: the fast tier and the integration tier (servers the tests start themselves).
test: setup $(ASYNCAPI_STAMP) lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The fast tier: no server started (tests/conftest.py marks the tiers; a guard fails a test
# that starts a server without the `integration` mark). About two minutes on 2 cores.
unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

bench: setup
	@tools/system-deps.sh --bench
	$(BIN)/python -m bench

# The soak (docs/operations.md, "Soak"): 200 terminals, gateway SIGKILLs, a broker restart.
SOAK_DURATION ?= 600
SOAK_ARGS ?=

soak: setup
	$(BIN)/python tools/soak.py --duration $(SOAK_DURATION) $(SOAK_ARGS)

# Coverage-guided fuzzing (docs/security.md, "Fuzzing"): every parser's atheris target for
# FUZZ_SECONDS each, one at a time; FUZZ_TARGETS names some. Fails on a finding.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

fuzz: setup
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis $(ASYNCAPI_CLI)/node_modules
