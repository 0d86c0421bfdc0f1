# YOLO Edge Optimizer. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The torch pair this machine has on disk (pip takes it from there); override elsewhere,
# e.g. make TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`, whole test files each (each
# worker's torch gets cores/workers threads: tests/conftest.py). Most of the suite is
# single-threaded Python (imports, ZenML, Great Expectations, subprocesses), so 2 workers on 2
# cores took 11m36s against 18m50s for one process (docs/results.md); 0: one process.
# `make test-fast` stays one process: two workers took 3m00s there, as one did (its time is
# the session model's training, which the second worker waits for)
TEST_WORKERS ?= 2
STACK  ?= local

.DEFAULT_GOAL := help
.PHONY: help install run train data benchmark serve test test-fast lint format clean stack-up stack-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev,team]' -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps onnx-neural-compressor==1.0
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## the main job: data -> train -> prune -> ONNX -> INT8 -> select -> report -> bundle
	$(BIN)/python run.py --pipeline optimize stack=$(STACK)

stack-up: $(STAMP) ## start the local team stack (ZenML server, S3, MLflow + Optuna on PostgreSQL)
	$(BIN)/python -m yeo.stack up

stack-down: ## stop the local team stack
	$(BIN)/python -m yeo.stack down

train: $(STAMP) ## data -> train -> evaluate -> register only
	$(BIN)/python run.py --pipeline train

data: $(STAMP) ## only the data pipeline
	$(BIN)/python run.py --pipeline data

benchmark: $(STAMP) ## every variant of the latest optimize run + peers, side by side
	$(BIN)/python run.py --pipeline benchmark

serve: $(STAMP) ## FastAPI over the newest edge bundle on 127.0.0.1:8000
	$(BIN)/python run.py --pipeline serve

test: $(STAMP) ## the test suite (offline, tiny configs)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP) ## the fast tier for iteration: unit and light integration tests (no pipeline runs)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix + format
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean: ## remove generated output (keeps .venv and DVC-tracked data)
	rm -rf outputs .state/zenml .state/mlflow .pytest_cache .ruff_cache data/.staging
