# Two commands do everything on a fresh machine:
#   make demo   - set up, then run the whole SeaPO pipeline on the embedded model, offline
#   make test   - set up, then run the test suite
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo

.PHONY: setup demo test test-slow test-all lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/seapo run --out $(RUN)

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench

bench: setup
	$(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_llm_injector.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_truthfulqa.py
	$(BIN)/python bench/bench_judge.py

clean:
	rm -rf $(VENV) runs .pytest_cache
