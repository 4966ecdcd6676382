# Two commands set everything up: `make demo` and `make test` (both create .venv on first use).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIIDA_PATH := $(CURDIR)/.aiida
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: install
	$(BIN)/python -m sus2_model.demo --out demo_output

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/speed.py --json

clean:
	rm -rf $(VENV) .aiida demo_output .pytest_cache
