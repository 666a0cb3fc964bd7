# Two commands: `make demo` (set up + verify the bundled example on the embedded models)
# and `make test` (set up + run the test suite). Both start from nothing but Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# llama-cpp-python is built from source: a portable build, no -march=native surprises
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test lint typecheck check install-demo install-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU torch first: a bare torch requirement would pull a multi-GB CUDA build (see docs)
	$(PIP) install --quiet torch==2.13.0

$(VENV)/.demo-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[local,serve]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e '.[local,train,dev,serve,ray,onnx]'
	touch $@

install-demo: $(VENV)/.demo-installed
install-dev: $(VENV)/.dev-installed

demo: install-demo
	$(VENV)/bin/claimflow verify --example

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

typecheck: install-dev
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
