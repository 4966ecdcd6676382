# Two commands set everything up: `make demo` and `make test` (both create .venv on first use).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIIDA_PATH := $(CURDIR)/.aiida
export OMP_NUM_THREADS ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)  # the AiiDA daemon starts `verdi`

.PHONY: install demo test test-fast bench clean system

install: $(STAMP) system

# From Debian, where missing (needs root and apt; otherwise what needs them says so clearly): Quantum ESPRESSO for
# DFT labels, Graphviz's dot for `sus2 aiida graph` pictures
system:
	@missing=""; command -v pw.x >/dev/null 2>&1 || missing="quantum-espresso quantum-espresso-data"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: not installed: $$missing (DFT labelling and rendered provenance graphs say so when asked)"; fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: install
	$(BIN)/sus2 campaign run workflows/quickstart.yaml --folder demo_output

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/speed.py --json

clean:
	rm -rf $(VENV) .aiida demo_output .pytest_cache
