# Two commands set everything up on a fresh machine:
#   make run    # venv + requirements + data cache + experiments/default.yaml on a GPU, experiments/cpu.yaml on a CPU
#   make test   # venv + requirements + the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CONFIG: the experiment of `make run`; unset: default.yaml where torch sees CUDA, else cpu.yaml (app/experiment.py)
CONFIG ?=
CACHE  ?= data/flowers.h5
# make test: pytest-xdist workers (one test module's tests stay on one worker: --dist loadscope)
TEST_WORKERS ?= 2
# The data folder: $OXFORD102_DIR, else data/oxford102 when it holds the official files (a finished download).
OXFORD102_DIR ?= $(if $(wildcard data/oxford102/jpg),data/oxford102,)
export OXFORD102_DIR

.PHONY: setup data run test quick benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

data: setup
	$(BIN)/python -m data_utils.prepare $(if $(OXFORD102_DIR),--source $(OXFORD102_DIR),--download) --out $(CACHE)

run: data
	$(BIN)/python run_experiment.py --config $(or $(CONFIG),$$($(BIN)/python -m app.experiment)) --data.cache=$(CACHE)

quick: CONFIG = experiments/quick.yaml
quick: run

test: setup
	$(BIN)/lint-imports  # reads .importlinter
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope

benchmark: data
	$(BIN)/python benchmarks/run.py --config $(or $(CONFIG),$$($(BIN)/python -m app.experiment)) --json runs/benchmark.json

clean:
	rm -rf runs/ .pytest_cache
