# The few commands a person types. Each one does its own set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
EMULATOR_DIR := tools/firestore-emulator

.PHONY: run demo test bench proto emulator provider-schema clean

# Python compiles a module's bytecode on its first import and keeps it (in the venv, and in
# __pycache__ here): pip does not compile every module of every package up front
# (--no-compile: a fresh set-up takes half the time), and PYTHONDONTWRITEBYTECODE, which
# would have every process compile its imports again, is unset for what make runs.
export PYTHONDONTWRITEBYTECODE :=

$(VENV)/.installed: pyproject.toml functions/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[dev]'
	touch $@

$(EMULATOR_DIR)/node_modules/.installed: $(EMULATOR_DIR)/package.json $(EMULATOR_DIR)/package-lock.json
	npm ci --prefix $(EMULATOR_DIR) --no-audit --no-fund --loglevel=error
	touch $@

emulator: $(EMULATOR_DIR)/node_modules/.installed

## run: the receiver under functions-framework on the embedded SQLite store (PORT, default 8080)
run: $(VENV)/.installed
	$(BIN)/gridhook run

## demo: 45 days of meter history, then a simulated day of curtailments on two sites (phx1, ams1) through gridhook in about a minute and a half; writes var/report.html
##       (into GRIDHOOK_STORE if set: sqlite:///PATH, or firestore://P/D with FIRESTORE_EMULATOR_HOST)
demo: $(VENV)/.installed
	$(PY) -m demo

## test: lint, types, unit, integration (Firestore emulator, simulator), e2e through the real
## server, in parallel (TEST_WORKERS pytest-xdist workers; TEST_WORKERS=0 runs everything in one process)
TEST_WORKERS ?= auto
test: $(VENV)/.installed emulator
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

## bench: speed, cold start, memory, store round trips, reports at 1M events; prints tables, writes bench-results.json
bench: $(VENV)/.installed emulator
	$(PY) -m tests.bench

## proto: regenerate functions/dpsapi/v1 from proto/dpsapi/v1
proto: $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -Iproto --python_out=functions --grpc_python_out=functions \
		--pyi_out=functions proto/dpsapi/v1/*.proto

## provider-schema: re-extract the Google provider schema the Terraform checks use (after a pin change)
provider-schema: $(VENV)/.installed
	npm ci --prefix tools/provider-schema --no-audit --no-fund --loglevel=error
	$(PY) tools/provider-schema/extract.py

clean:
	rm -rf $(VENV) $(EMULATOR_DIR)/node_modules .pytest_cache .ruff_cache
