# plait: `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.DEFAULT_GOAL := help
.PHONY: help install build demo test test-rust test-python lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

build: $(PY) ## compile the Rust engine and install plait (editable) with its dev extras into .venv
	$(BIN)/pip install -q 'maturin>=1.7,<2'
	$(BIN)/maturin develop --release -q -E dev

install: build demo ## build and install plait, then explore the bundled examples (finds a bug, replays it)

demo: ## explore the bundled examples: show each bug found and replay its token
	$(BIN)/plait demo examples

test: build test-rust test-python ## run every test: cargo and pytest

test-rust: ## cargo tests of the engine (dpor's differential test against brute force included)
	cargo test --workspace --release -q

test-python: ## pytest suite (tests/ and the examples)
	$(PY) -m pytest -q

lint: build ## rustfmt, clippy, ruff, mypy, and stubtest (the .pyi against the binary)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -q -- -D warnings
	$(BIN)/ruff check python tests examples benches
	$(BIN)/mypy
	$(PY) -m mypy.stubtest plait._native

bench: build ## run the benchmarks (they install the peers into benches/.venv-peers)
	$(PY) benches/run_all.py

clean: ## remove build products and the venv
	rm -rf target $(VENV) python/plait/*.so
